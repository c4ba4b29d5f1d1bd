package raftstore

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// The FSM is split by responsibility: this file is the raft.FSM wrapper
// (open, close, Apply, reads, dump); ApplyBatch, the commit policy and
// rollback-and-replay are in commit.go; one transaction's apply in apply.go;
// chains in chain.go and their Merkle trees in tlog.go; Snapshot and Restore
// in snapshot.go; the log entry encoding in codec.go.

// The state file's top-level buckets are reserved: their names start with
// 0x00, which Txn.Validate refuses in user bucket paths. \x00meta is the
// FSM's own; the chains keep theirs in chain.go (bucketChains, bucketHeads,
// bucketPruned, bucketTally) and tlog.go (bucketTlog).
var (
	// \x00meta holds the applied index and term of the last entry in the
	// state file and the store revision (8 bytes big-endian each), committed
	// with the data they describe.
	bucketMeta = []byte("\x00meta")

	keyAppliedIndex = []byte("applied_index")
	keyAppliedTerm  = []byte("applied_term")
	keyRevision     = []byte("revision")
)

// Compile-time interface checks.
var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

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
	// chainTally, when set, names the count each append adds to
	// (Config.ChainTally).
	chainTally func(chain, data []byte) []byte

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

// boltOptions are the options of the state file and of the raft log file.
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

// open opens the state file at f.path, creating the reserved buckets, and
// loads its applied index.
func (f *FSM) open() error {
	db, err := bolt.Open(f.path, 0o600, boltOptions())
	if err != nil {
		return fmt.Errorf("raftstore: open state %s: %w", f.path, err)
	}
	var applied uint64
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketChains, bucketHeads, bucketTlog, bucketPruned, bucketTally} {
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

// Apply applies one log entry and commits it. raft uses ApplyBatch; Apply
// exists for the raft.FSM interface and for tests.
func (f *FSM) Apply(l *raft.Log) interface{} {
	r := f.ApplyBatch([]*raft.Log{l})[0]
	f.flush()
	return r
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

// dumpBucket renders one bucket and its nested buckets for dump.
func dumpBucket(w io.Writer, path [][]byte, b *bolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return dumpBucket(w, append(path[:len(path):len(path)], k), b.Bucket(k))
		}
		_, err := fmt.Fprintf(w, "%q %q = %x\n", bytes.Join(path, []byte("/")), k, v)
		return err
	})
}
