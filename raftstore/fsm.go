package raftstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/mod/sumdb/tlog"
)

// Reserved top-level buckets; user buckets may not start with 0x00.
var (
	bucketMeta   = []byte("\x00meta")
	bucketChains = []byte("\x00chains")
	bucketHeads  = []byte("\x00heads")

	keyAppliedIndex = []byte("applied_index")
	keyAppliedTerm  = []byte("applied_term")
	keyRevision     = []byte("revision")
)

// Compile-time interface checks.
var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// ChainPos is where an append landed: its sequence number (from 1) and the
// entry's link hash (ChainHash), the genesis previous link being 32 zero
// bytes.
type ChainPos struct {
	Chain string
	Seq   uint64
	Hash  [32]byte
}

// Result is the outcome of one transaction.
type Result struct {
	// Applied is true when every condition held and all writes were made.
	Applied bool
	// FailedCond is the index of the first condition that did not hold, or
	// -1.
	FailedCond int
	// Err is a business error (wrapping ErrConflict or ErrChainUnwritable)
	// that aborted the transaction without writing anything.
	Err error
	// Revision is the store revision the transaction wrote at; every key it
	// put carries this version.
	Revision uint64
	// Chains lists where each append landed, in order.
	Chains []ChainPos
}

// FSM applies committed log entries to one bbolt file.
//
// Applying and committing are decoupled, as in etcd's backend: ApplyBatch
// applies entries into an open bbolt write transaction and returns their
// results at once; the transaction — entries plus the last applied
// index/term — is committed (fsync'd) shortly after, by size, by a short
// timer, or at once when a reader needs it. Acknowledging before the state
// commit is safe because the entries are already durable in a majority of
// raft logs: after a crash the state file is at some earlier commit, raft
// re-delivers the committed tail, and the FSM re-applies exactly the entries
// above the file's index (deterministically, so with the same results).
// Readers only ever see committed state.
type FSM struct {
	path   string
	logger *slog.Logger
	fatal  func(error)
	// chainFault, when set, is asked before every append (Config.ChainFault).
	chainFault func(chain, data []byte) error

	mu      sync.RWMutex // guards db against Restore swapping it
	db      *bolt.DB
	closing sync.WaitGroup // state files replaced by Restore, closing once unused

	// wmu guards the open write transaction and what it holds.
	wmu        sync.Mutex
	tx         *bolt.Tx
	pending    []appliedBatch // batches applied in tx, for replay after a business error
	pendingOps int            // ops and appends in pending: the commit-by-size trigger
	failed     map[txnID]error

	applied   atomic.Uint64 // last index applied (maybe not yet committed)
	committed atomic.Uint64 // last index in the committed state file
	batches   atomic.Uint64 // state commits
	nanos     atomic.Uint64 // time spent committing
	skipped   atomic.Uint64 // entries at or below the applied index, not re-applied
	restores  atomic.Uint64 // snapshots restored

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced each time committed advances

	dirty, now chan struct{} // wake the committer: soon / at once
	done       chan struct{}
	loopDone   chan struct{}
	closeOnce  sync.Once
}

// appliedBatch is one ApplyBatch call's entries, decoded.
type appliedBatch struct {
	logs    []*raft.Log
	decoded [][]*Txn
}

// Commit policy: at most commitDelay after the first uncommitted apply, or
// once this many entries are pending.
const (
	commitDelay      = 5 * time.Millisecond
	maxPendingLogs   = 2048
	maxPendingTxnOps = 64 << 10
)

func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout:         2e9, // 2s waiting for the file lock
		InitialMmapSize: 1 << 30,
		FreelistType:    bolt.FreelistMapType,
	}
}

// OpenFSM opens (creating if needed) the state file at path. fatal is called
// on any I/O error or undecodable entry; it must not return normally into the
// FSM's caller (it should stop the process), and defaults to a panic.
func OpenFSM(path string, logger *slog.Logger, fatal func(error)) (*FSM, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if fatal == nil {
		fatal = func(err error) { panic(err) }
	}
	f := &FSM{
		path: path, logger: logger, fatal: fatal, notify: make(chan struct{}),
		dirty: make(chan struct{}, 1), now: make(chan struct{}, 1),
		done: make(chan struct{}), loopDone: make(chan struct{}),
	}
	if err := f.open(); err != nil {
		return nil, err
	}
	go f.commitLoop()
	return f, nil
}

func (f *FSM) open() error {
	db, err := bolt.Open(f.path, 0o600, boltOptions())
	if err != nil {
		return fmt.Errorf("raftstore: open state %s: %w", f.path, err)
	}
	var applied uint64
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketChains, bucketHeads, bucketTlog, bucketPruned} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		applied = getUint(tx.Bucket(bucketMeta), keyAppliedIndex)
		return nil
	})
	if err != nil {
		db.Close()
		return fmt.Errorf("raftstore: init state %s: %w", f.path, err)
	}
	f.db = db
	f.applied.Store(applied)
	f.setCommitted(applied)
	return nil
}

// Close commits what is pending and closes the state file.
func (f *FSM) Close() error {
	f.closeOnce.Do(func() {
		close(f.done)
		<-f.loopDone
	})
	f.flush()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closing.Wait() // files replaced by Restore
	if f.db == nil {
		return nil
	}
	err := f.db.Close()
	f.db = nil
	return err
}

// AppliedIndex is the last log index in the committed state file: what
// readers see.
func (f *FSM) AppliedIndex() uint64 { return f.committed.Load() }

func (f *FSM) setCommitted(i uint64) {
	f.notifyMu.Lock()
	f.committed.Store(i)
	close(f.notify)
	f.notify = make(chan struct{})
	f.notifyMu.Unlock()
}

// appliedWait returns the committed index and a channel closed when it next
// advances. A waiter that needs an index already applied but not yet
// committed asks for the commit at once.
func (f *FSM) appliedWait(want uint64) (uint64, <-chan struct{}) {
	f.notifyMu.Lock()
	c, ch := f.committed.Load(), f.notify
	f.notifyMu.Unlock()
	if c < want && f.applied.Load() >= want {
		select {
		case f.now <- struct{}{}:
		default:
		}
	}
	return c, ch
}

// commitLoop commits the open transaction commitDelay after it was first
// written, or at once when asked.
func (f *FSM) commitLoop() {
	defer close(f.loopDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-f.dirty:
			timer.Reset(commitDelay)
			select {
			case <-timer.C:
			case <-f.now:
				timer.Stop()
			case <-f.done:
				return
			}
		case <-f.now:
		case <-f.done:
			return
		}
		f.flush()
	}
}

// flush commits the open write transaction, if any.
func (f *FSM) flush() {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.commitLocked()
}

func (f *FSM) commitLocked() {
	if f.tx == nil {
		return
	}
	start := time.Now()
	err := f.tx.Commit()
	f.mu.RUnlock() // taken when the transaction began
	f.tx = nil
	if err != nil {
		f.fatal(&FatalError{Op: "commit state", Err: err})
		return
	}
	f.pending, f.pendingOps, f.failed = nil, 0, nil
	f.batches.Add(1)
	f.nanos.Add(uint64(time.Since(start)))
	f.setCommitted(f.applied.Load())
}

// Apply applies one log entry and commits it. raft uses ApplyBatch; Apply
// exists for the raft.FSM interface and for tests.
func (f *FSM) Apply(l *raft.Log) interface{} {
	r := f.ApplyBatch([]*raft.Log{l})[0]
	f.flush()
	return r
}

// txnFailure aborts a bbolt transaction because one raft transaction hit a
// business error; ApplyBatch then re-runs with it marked failed.
type txnFailure struct {
	id  txnID
	err error
}

func (e *txnFailure) Error() string { return e.err.Error() }

// txnID names a transaction by its log index and position in the entry.
type txnID struct {
	index uint64
	txn   int
}

// ApplyBatch applies committed entries into the open write transaction.
// Each command entry's response is a []Result, one per transaction it
// carried.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	resp := make([]interface{}, len(logs))
	decoded := make([][]*Txn, len(logs))
	applied := f.applied.Load()
	last := -1
	for i, l := range logs {
		if l.Index <= applied {
			f.skipped.Add(1)
			continue // already in the state file: never apply twice
		}
		last = i
		if l.Type != raft.LogCommand {
			continue
		}
		txns, ignorable, err := decodeCommand(l.Data)
		if err != nil {
			f.fatal(&FatalError{Op: fmt.Sprintf("decode log entry %d", l.Index), Err: err})
			return resp
		}
		if ignorable {
			f.logger.Warn("skipping ignorable command of a newer version", "index", l.Index, "type", l.Data[0])
		}
		decoded[i] = txns
	}
	if last < 0 {
		return resp
	}
	b := appliedBatch{logs: logs[:last+1], decoded: decoded[:last+1]}

	f.wmu.Lock()
	defer f.wmu.Unlock()
	for {
		if f.tx == nil {
			f.mu.RLock() // released by commitLocked or the rollback below
			tx, err := f.db.Begin(true)
			if err != nil {
				f.mu.RUnlock()
				f.fatal(&FatalError{Op: "begin state transaction", Err: err})
				return resp
			}
			f.tx = tx
		}
		results, err := f.applyBatchTx(b)
		var tf *txnFailure
		if errors.As(err, &tf) {
			// Undo everything uncommitted and replay it with the failing
			// transaction marked; earlier batches replay identically.
			_ = f.tx.Rollback()
			f.tx = nil
			f.mu.RUnlock()
			if f.failed == nil {
				f.failed = map[txnID]error{}
			}
			f.failed[tf.id] = tf.err
			if err := f.replayLocked(); err != nil {
				f.fatal(&FatalError{Op: "replay state transaction", Err: err})
				return resp
			}
			continue
		}
		if err != nil {
			f.fatal(&FatalError{Op: "write state", Err: err})
			return resp
		}
		for i := range b.logs {
			if b.decoded[i] != nil {
				resp[i] = results[i]
			}
		}
		f.pending = append(f.pending, b)
		f.pendingOps += b.ops()
		f.applied.Store(logs[last].Index)
		break
	}
	if len(f.pending) >= maxPendingLogs || f.pendingOps >= maxPendingTxnOps {
		f.commitLocked()
	} else {
		select {
		case f.dirty <- struct{}{}:
		default:
		}
	}
	return resp
}

// ops counts the writes and appends of a batch.
func (b appliedBatch) ops() int {
	n := 0
	for _, txns := range b.decoded {
		for _, t := range txns {
			n += len(t.Ops) + len(t.Appends)
		}
	}
	return n
}

// replayLocked re-applies the pending batches into a fresh transaction.
func (f *FSM) replayLocked() error {
	f.mu.RLock()
	tx, err := f.db.Begin(true)
	if err != nil {
		f.mu.RUnlock()
		return err
	}
	f.tx = tx
	for _, b := range f.pending {
		if _, err := f.applyBatchTx(b); err != nil {
			return err // cannot happen: it applied before, deterministically
		}
	}
	return nil
}

// applyBatchTx applies one batch into f.tx and records its last index/term.
func (f *FSM) applyBatchTx(b appliedBatch) ([][]Result, error) {
	tx := f.tx
	meta := tx.Bucket(bucketMeta)
	rev := getUint(meta, keyRevision)
	chains := chainCache{} // valid for this call: tx does not change within it
	results := make([][]Result, len(b.logs))
	for i, txns := range b.decoded {
		results[i] = make([]Result, len(txns))
		for k, t := range txns {
			id := txnID{b.logs[i].Index, k}
			if ferr, ok := f.failed[id]; ok {
				results[i][k] = Result{FailedCond: -1, Err: ferr}
				continue
			}
			r, err := applyTxn(tx, t, &rev, f.chainFault, chains)
			if err != nil {
				if !errors.Is(err, ErrChainUnwritable) {
					err = fmt.Errorf("%w: %v", ErrConflict, err)
				}
				return nil, &txnFailure{id: id, err: err}
			}
			results[i][k] = r
		}
	}
	if err := chains.flush(tx, nil); err != nil {
		return nil, err
	}
	lastLog := b.logs[len(b.logs)-1]
	if err := putUint(meta, keyRevision, rev); err != nil {
		return nil, err
	}
	if err := putUint(meta, keyAppliedIndex, lastLog.Index); err != nil {
		return nil, err
	}
	return results, putUint(meta, keyAppliedTerm, lastLog.Term)
}

// applyTxn checks the conditions and, if they hold, applies the writes. A
// returned error is a business error; the caller aborts the bbolt
// transaction so that nothing of this raft transaction remains. fault, if
// set, is asked before each append (a test hook: Config.ChainFault).
func applyTxn(tx *bolt.Tx, t *Txn, rev *uint64, fault func(chain, data []byte) error, chains chainCache) (Result, error) {
	for i, c := range t.Conds {
		_, ver, ok := getVersioned(bucketAt(tx, c.Bucket), c.Key)
		hold := false
		switch c.Kind {
		case CondAbsent:
			hold = !ok
		case CondPresent:
			hold = ok
		case CondVersion:
			hold = (c.Version == 0 && !ok) || (ok && ver == c.Version)
		}
		if !hold {
			return Result{FailedCond: i}, nil
		}
	}
	*rev++
	res := Result{Applied: true, FailedCond: -1, Revision: *rev}
	var verBuf [8]byte
	binary.BigEndian.PutUint64(verBuf[:], *rev)
	for i, o := range t.Ops {
		switch o.Kind {
		case OpPut:
			b, err := createPath(tx, o.Bucket)
			if err != nil {
				return Result{}, fmt.Errorf("op %d: %v", i, err)
			}
			v := make([]byte, 0, 8+len(o.Value))
			v = append(append(v, verBuf[:]...), o.Value...)
			if err := b.Put(o.Key, v); err != nil {
				return Result{}, fmt.Errorf("op %d: put: %v", i, err)
			}
		case OpDelete:
			if b := bucketAt(tx, o.Bucket); b != nil {
				if err := b.Delete(o.Key); err != nil {
					return Result{}, fmt.Errorf("op %d: delete: %v", i, err)
				}
			}
		case OpDeleteBucket:
			var err error
			if len(o.Bucket) == 0 {
				err = tx.DeleteBucket(o.Key)
			} else if b := bucketAt(tx, o.Bucket); b != nil {
				err = b.DeleteBucket(o.Key)
			}
			if err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return Result{}, fmt.Errorf("op %d: delete bucket: %v", i, err)
			}
		case OpPruneChain:
			// Pruning reads the head and may rebuild the chain's hash
			// bucket: write the head, forget the cached state.
			if err := chains.flush(tx, o.Key); err != nil {
				return Result{}, err
			}
			delete(chains, string(o.Key))
			if err := pruneChain(tx, o.Key, pruneBefore(o)); err != nil {
				return Result{}, fmt.Errorf("op %d: %w", i, err)
			}
		}
	}
	for _, a := range t.Appends {
		pos, err := appendChain(tx, a.Chain, a.Data, fault, chains)
		if err != nil {
			return Result{}, err
		}
		res.Chains = append(res.Chains, pos)
	}
	return res, nil
}

// appendChain adds entry seq = head+1 to a chain: the hash-linked entry,
// the new head and the Merkle tree hashes it adds (record seq-1, over
// exactly data). Any failure refuses the whole transaction with
// ErrChainUnwritable.
// chainCache keeps, within one write transaction, where each chain stands
// and its open buckets, so that a batch of appends to one chain reads the
// head and finds the buckets once instead of per append.
type chainCache map[string]*chainState

type chainState struct {
	seq    uint64
	link   [32]byte
	hashes hashStore
	cb     *bolt.Bucket
	dirty  bool // seq/link not yet written to the heads bucket
}

func appendChain(tx *bolt.Tx, name, data []byte, fault func(chain, data []byte) error, chains chainCache) (ChainPos, error) {
	if fault != nil {
		if err := fault(name, data); err != nil {
			return ChainPos{}, fmt.Errorf("chain %q: %w: %v", name, ErrChainUnwritable, err)
		}
	}
	st := chains[string(name)]
	if st == nil {
		seq, prev := chainHead(tx, name)
		hashes, err := writableHashes(tx, name, seq)
		if err != nil {
			return ChainPos{}, fmt.Errorf("%w: %v", ErrChainUnwritable, err)
		}
		cb, err := tx.Bucket(bucketChains).CreateBucketIfNotExists(name)
		if err != nil {
			return ChainPos{}, fmt.Errorf("chain %q: %v", name, err)
		}
		cb.FillPercent = 1 // keys only grow: fill pages, no half-empty splits
		st = &chainState{seq: seq, link: prev, hashes: hashes, cb: cb}
		chains[string(name)] = st
	}
	seq := st.seq + 1
	leaf := tlog.RecordHash(data) // once, for the tree and the link
	if err := storeLeafHashes(st.hashes, int64(seq-1), leaf); err != nil {
		return ChainPos{}, fmt.Errorf("%w: %v", ErrChainUnwritable, err)
	}
	hash := ChainLink(st.link, leaf)
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	entry := make([]byte, 0, 32+len(data))
	entry = append(append(entry, hash[:]...), data...)
	if err := st.cb.Put(k[:], entry); err != nil {
		return ChainPos{}, fmt.Errorf("chain %q: %v", name, err)
	}
	st.seq, st.link, st.dirty = seq, hash, true
	return ChainPos{Chain: string(name), Seq: seq, Hash: hash}, nil
}

// flush writes the heads of the chains appended to (once per chain, not per
// append). It runs before the batch's transaction ends and before anything
// reads a head in the same transaction (a prune).
func (c chainCache) flush(tx *bolt.Tx, only []byte) error {
	for name, st := range c {
		if !st.dirty || (only != nil && name != string(only)) {
			continue
		}
		head := make([]byte, 0, 40)
		head = append(binary.BigEndian.AppendUint64(head, st.seq), st.link[:]...)
		if err := tx.Bucket(bucketHeads).Put([]byte(name), head); err != nil {
			return fmt.Errorf("chain %q: %v", name, err)
		}
		st.dirty = false
	}
	return nil
}

// chainHash is the link of a chain entry: SHA-256(prev || leaf), where leaf
// is the entry's Merkle leaf hash, SHA-256(0x00 || data) (tlog.RecordHash).
// Linking the leaf rather than the data lets a verifier hash each entry's
// data once for both the hash chain and the tree.
func chainHash(prev [32]byte, data []byte) [32]byte {
	return ChainLink(prev, tlog.RecordHash(data))
}

// ChainHash exposes the chain hash function so that verifiers outside the
// store compute links the same way.
func ChainHash(prev [32]byte, data []byte) [32]byte { return chainHash(prev, data) }

// ChainLink is the link after prev of an entry whose leaf hash is leaf:
// SHA-256(prev || leaf).
func ChainLink(prev [32]byte, leaf tlog.Hash) [32]byte {
	var buf [64]byte
	copy(buf[:32], prev[:])
	copy(buf[32:], leaf[:])
	return sha256.Sum256(buf[:])
}

func bucketAt(tx *bolt.Tx, path [][]byte) *bolt.Bucket {
	if len(path) == 0 {
		return nil
	}
	b := tx.Bucket(path[0])
	for _, name := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(name)
	}
	return b
}

func createPath(tx *bolt.Tx, path [][]byte) (*bolt.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists(path[0])
	if err != nil {
		return nil, fmt.Errorf("bucket %q: %v", path[0], err)
	}
	for _, name := range path[1:] {
		if b, err = b.CreateBucketIfNotExists(name); err != nil {
			return nil, fmt.Errorf("bucket %q: %v", name, err)
		}
	}
	return b, nil
}

// getVersioned returns a key's value (aliasing bbolt memory: copy before the
// transaction ends) and version.
func getVersioned(b *bolt.Bucket, key []byte) ([]byte, uint64, bool) {
	if b == nil {
		return nil, 0, false
	}
	v := b.Get(key)
	if len(v) < 8 {
		return nil, 0, false // absent, or a nested bucket
	}
	return v[8:], binary.BigEndian.Uint64(v), true
}

func getUint(b *bolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, v))
}

// Snapshot captures a consistent read transaction; Persist streams it.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.flush() // the snapshot must hold everything applied so far
	f.mu.RLock()
	defer f.mu.RUnlock()
	tx, err := f.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshot: %w", err)
	}
	return &fsmSnapshot{tx: tx}, nil
}

type fsmSnapshot struct{ tx *bolt.Tx }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("raftstore: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { _ = s.tx.Rollback() }

// Restore replaces the state with a snapshot: it is written to a temporary
// file, synced and checked, then renamed over the state file and reopened.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.path + ".restore"
	if err := writeSynced(tmp, rc); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("raftstore: restore: %w", err)
	}
	check, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 2e9, ReadOnly: true})
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("raftstore: restore: snapshot is not a state file: %w", err)
	}
	check.Close()

	// Anything applied but uncommitted predates the snapshot: discard it.
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.tx != nil {
		_ = f.tx.Rollback()
		f.tx = nil
		f.mu.RUnlock()
		f.pending, f.pendingOps, f.failed = nil, 0, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The old file is closed only once its readers are done, in the
	// background: a snapshot raft is taking holds a read transaction on it,
	// and raft releases it only after its main loop answers — which waits
	// for this restore. Closing here would deadlock (it did, in tests).
	// Renaming over the open file is safe: it keeps its inode until closed.
	old := f.db
	if err := os.Rename(tmp, f.path); err != nil {
		f.fatal(&FatalError{Op: "rename restored state", Err: err})
		return err
	}
	if err := syncDir(filepath.Dir(f.path)); err != nil {
		f.fatal(&FatalError{Op: "sync state dir", Err: err})
		return err
	}
	if err := f.open(); err != nil {
		f.fatal(&FatalError{Op: "reopen restored state", Err: err})
		return err
	}
	f.closing.Add(1)
	go func() {
		defer f.closing.Done()
		if err := old.Close(); err != nil {
			f.logger.Warn("closing the state file replaced by a snapshot", "error", err)
		}
	}()
	f.restores.Add(1)
	return nil
}

func writeSynced(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// view runs fn in a read transaction on the local state.
func (f *FSM) view(fn func(*ReadTx) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return ErrClosed
	}
	return f.db.View(func(tx *bolt.Tx) error { return fn(&ReadTx{tx: tx}) })
}

// dump writes a canonical rendering of every bucket, key and value; two
// states are the same exactly when their dumps are equal.
func (f *FSM) dump(w io.Writer) error {
	return f.view(func(r *ReadTx) error {
		return r.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return dumpBucket(w, [][]byte{name}, b)
		})
	})
}

func dumpBucket(w io.Writer, path [][]byte, b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return dumpBucket(w, append(path[:len(path):len(path)], k), b.Bucket(k))
		}
		_, err := fmt.Fprintf(w, "%q %q = %x\n", bytes.Join(path, []byte("/")), k, v)
		return err
	})
}
