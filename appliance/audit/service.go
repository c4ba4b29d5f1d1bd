package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/raftstore"
)

// Record is the chain append of e: put it in the transaction of the change
// it describes, so that the change happens only if the entry is written.
func Record(chain string, e Entry) (raftstore.Append, error) {
	b, err := e.Encode()
	if err != nil {
		return raftstore.Append{}, err
	}
	return raftstore.Append{Chain: []byte(chain), Data: b}, nil
}

// MustRecord is Record for entries built from constants and validated
// ids: an error is a programming mistake.
func MustRecord(chain string, e Entry) raftstore.Append {
	a, err := Record(chain, e)
	if err != nil {
		panic(err)
	}
	return a
}

// Store is the replicated store; *raftstore.Store implements it.
type Store interface {
	Apply(ctx context.Context, t *raftstore.Txn) (raftstore.Result, error)
	View(ctx context.Context, c raftstore.Consistency, fn func(*raftstore.ReadTx) error) error
}

// Records below ["sys", "audit"].
var (
	sysAudit       = raftstore.Path("sys", "audit")
	keyVerifier    = []byte("verifier_key")
	keySigner      = []byte("signing_key") // age-encrypted to the seal recipients
	bucketLatest   = raftstore.Path("sys", "audit", "latest")
	bucketCPPrefix = "cp:" // ["sys","audit","cp:<chain>"]: size (be8) -> signed checkpoint
)

func checkpointsPath(chain string) [][]byte {
	return raftstore.Path("sys", "audit", bucketCPPrefix+chain)
}

// BootstrapOps record the cluster's checkpoint keys: the verifier key in
// the clear, the signing key encrypted (by the caller) to the seal
// recipients, so that only unsealed nodes can sign.
func BootstrapOps(vkey string, encryptedSKey []byte) []raftstore.Op {
	return []raftstore.Op{
		{Kind: raftstore.OpPut, Bucket: sysAudit, Key: keyVerifier, Value: []byte(vkey)},
		{Kind: raftstore.OpPut, Bucket: sysAudit, Key: keySigner, Value: encryptedSKey},
	}
}

// Service reads, proves, checkpoints, exports and self-checks the chains.
type Service struct {
	store Store
	ids   []age.Identity
	now   func() time.Time

	mu       sync.Mutex
	verifier note.Verifier
	vkey     string
	signer   note.Signer
}

// New makes the service; ids unseal the signing key (nil: this node
// cannot sign).
func New(store Store, ids []age.Identity, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, ids: ids, now: now}
}

// keys loads the verifier (and, when unsealed, the signer) once.
func (s *Service) keys(ctx context.Context) (note.Verifier, note.Signer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.verifier != nil {
		return s.verifier, s.signer, nil
	}
	var vkey, enc []byte
	err := s.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		vkey, _, _ = r.Get(sysAudit, keyVerifier)
		enc, _, _ = r.Get(sysAudit, keySigner)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("audit: read keys: %w", err)
	}
	if vkey == nil {
		return nil, nil, ErrNoKeys
	}
	v, err := Verifier(vkey)
	if err != nil {
		return nil, nil, err
	}
	if s.ids != nil && enc != nil {
		dr, err := age.Decrypt(bytes.NewReader(enc), s.ids...)
		if err != nil {
			return nil, nil, fmt.Errorf("audit: the seal identity does not open the signing key: %w", err)
		}
		skey, err := io.ReadAll(io.LimitReader(dr, 4<<10))
		if err != nil {
			return nil, nil, fmt.Errorf("audit: signing key: %w", err)
		}
		if s.signer, err = note.NewSigner(string(skey)); err != nil {
			return nil, nil, fmt.Errorf("audit: signing key: %w", err)
		}
	}
	s.verifier, s.vkey = v, string(vkey)
	return s.verifier, s.signer, nil
}

// VerifierKey is the cluster's public checkpoint key, in note's format:
// what `custos audit verify --key` takes.
func (s *Service) VerifierKey(ctx context.Context) (string, error) {
	if _, _, err := s.keys(ctx); err != nil {
		return "", err
	}
	return s.vkey, nil
}

func (s *Service) origin(ctx context.Context, chain string) (string, error) {
	v, _, err := s.keys(ctx)
	if err != nil {
		return "", err
	}
	return Origin(v.Name(), chain), nil
}

// Item is an entry with its position and its canonical encoding: Entry is
// for reading, Raw the signed bytes a verifier hashes (its JSON form is
// base64), so nobody has to rebuild the encoding from the parsed fields.
type Item struct {
	Seq   uint64 `json:"seq"`
	Entry Entry  `json:"entry"`
	Raw   []byte `json:"raw"`
}

// Filter selects entries; zero fields match everything. From and To are
// both inclusive: an entry at exactly To matches.
type Filter struct {
	From, To time.Time
	Actor    string // actor id
	Action   string // exact, or a prefix ending in "." ("tenant.")
	Target   string
}

func (f Filter) match(e *Entry) bool {
	switch {
	case !f.From.IsZero() && e.Time.Before(f.From):
	case !f.To.IsZero() && e.Time.After(f.To):
	case f.Actor != "" && e.Actor.ID != f.Actor:
	case f.Action != "" && e.Action != f.Action && !(strings.HasSuffix(f.Action, ".") && strings.HasPrefix(e.Action, f.Action)):
	case f.Target != "" && e.Target != f.Target:
	default:
		return true
	}
	return false
}

// maxScan bounds the entries one List call examines, so that a filter
// matching nothing cannot scan a whole chain in one request.
const maxScan = 10000

// List returns up to limit entries of chain after seq after that match f,
// and the seq to continue after (0: the chain is exhausted).
func (s *Service) List(ctx context.Context, c raftstore.Consistency, chain string, f Filter, after uint64, limit int) ([]Item, uint64, error) {
	return s.list(ctx, c, chain, f, limit, func(r *raftstore.ReadTx, l *lister) {
		size, _ := r.ChainHead([]byte(chain))
		r.ChainEntries([]byte(chain), after+1, func(seq uint64, _ [32]byte, data []byte) bool {
			return l.visit(seq, data, seq < size)
		})
	})
}

// ListBefore is List newest first: up to limit entries of chain below seq
// before (0: from the last entry) that match f, newest first, and the seq
// to continue before (0: the first retained entry was examined).
func (s *Service) ListBefore(ctx context.Context, c raftstore.Consistency, chain string, f Filter, before uint64, limit int) ([]Item, uint64, error) {
	return s.list(ctx, c, chain, f, limit, func(r *raftstore.ReadTx, l *lister) {
		first, _ := r.ChainPruned([]byte(chain))
		r.ChainEntriesBefore([]byte(chain), before, func(seq uint64, _ [32]byte, data []byte) bool {
			return l.visit(seq, data, seq > first)
		})
	})
}

// lister collects the entries a List call examines: at most limit
// matches and maxScan entries.
type lister struct {
	chain   string
	f       Filter
	limit   int
	needles [][]byte // what a matching entry's bytes hold (Filter.needles)
	items   []Item
	next    uint64
	scanned int
	err     error
}

// visit examines entry seq; more: entries follow it in the walk. It
// reports whether to go on.
func (l *lister) visit(seq uint64, data []byte, more bool) bool {
	l.scanned++
	if !containsAll(data, l.needles) {
		// Cannot match: skip the decoding (an export lists a subject's
		// few entries out of a long chain; the cluster page a few
		// membership changes out of thousands of tenant creations).
		if l.scanned == maxScan && more {
			l.next = seq
			return false
		}
		return true
	}
	e, err := Decode(data)
	if err != nil {
		l.err = fmt.Errorf("audit: %s entry %d: %w", l.chain, seq, err)
		return false
	}
	if l.f.match(&e) {
		l.items = append(l.items, Item{Seq: seq, Entry: e, Raw: bytes.Clone(data)})
	}
	if (len(l.items) == l.limit || l.scanned == maxScan) && more {
		l.next = seq
		return false
	}
	return true
}

func (s *Service) list(ctx context.Context, c raftstore.Consistency, chain string, f Filter, limit int, walk func(*raftstore.ReadTx, *lister)) ([]Item, uint64, error) {
	l := &lister{chain: chain, f: f, limit: limit, needles: f.needles()}
	err := s.store.View(ctx, c, func(r *raftstore.ReadTx) error {
		l.items, l.next, l.scanned, l.err = []Item{}, 0, 0, nil
		walk(r, l)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("audit: list %s: %w", chain, err)
	}
	return l.items, l.next, l.err
}

// needles are byte strings every entry f matches holds in its canonical
// encoding, so that List decodes only the entries that may match: a
// target, and an action (exact: closed by its quote; a prefix ending in
// "." open), written by the encoding as they are when they hold only
// characters it never escapes. Inside a string value the encoding
// escapes every quote, so a needle never occurs in an entry that does
// not match; an entry that holds one is still decoded and matched.
func (f Filter) needles() [][]byte {
	var out [][]byte
	if f.Target != "" && plainText(f.Target) {
		out = append(out, []byte(`"target":"`+f.Target+`"`))
	}
	if f.Action != "" && plainText(f.Action) {
		n := `"action":"` + f.Action
		if !strings.HasSuffix(f.Action, ".") {
			n += `"`
		}
		out = append(out, []byte(n))
	}
	return out
}

// containsAll reports whether data holds every needle.
func containsAll(data []byte, needles [][]byte) bool {
	for _, n := range needles {
		if !bytes.Contains(data, n) {
			return false
		}
	}
	return true
}

// plainText reports whether s holds only characters the canonical
// encoding writes as they are.
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(":_-./", c) >= 0) {
			return false
		}
	}
	return true
}

// Latest returns the chain's latest signed checkpoint (nil: none yet).
func (s *Service) Latest(ctx context.Context, c raftstore.Consistency, chain string) ([]byte, error) {
	var msg []byte
	err := s.store.View(ctx, c, func(r *raftstore.ReadTx) error {
		msg, _, _ = r.Get(bucketLatest, []byte(chain))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint of %s: %w", chain, err)
	}
	return msg, nil
}

// SignNow signs the chain's current tree head if it grew since the last
// checkpoint, stores it, and returns the latest checkpoint.
func (s *Service) SignNow(ctx context.Context, chain string) ([]byte, error) {
	_, signer, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	origin, err := s.origin(ctx, chain)
	if err != nil {
		return nil, err
	}
	var (
		latest []byte
		ver    uint64
		c      = Checkpoint{Origin: origin}
	)
	err = s.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		latest, ver, _ = r.Get(bucketLatest, []byte(chain))
		var err error
		c.Size, c.Link = r.ChainHead([]byte(chain))
		if c.Size > 0 {
			c.Root, err = r.ChainTreeHash([]byte(chain), c.Size)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint %s: %w", chain, err)
	}
	if latest != nil {
		prev, err := ParseCheckpoint(noteText(latest))
		if err != nil {
			return nil, fmt.Errorf("audit: stored checkpoint of %s: %w", chain, err)
		}
		if prev.Size >= c.Size {
			return latest, nil
		}
	}
	if signer == nil {
		return nil, ErrCannotSign
	}
	c.Time = s.now().UTC()
	msg, err := Sign(c, signer)
	if err != nil {
		return nil, err
	}
	cond := raftstore.Cond{Kind: raftstore.CondVersion, Bucket: bucketLatest, Key: []byte(chain), Version: ver}
	res, err := s.store.Apply(ctx, &raftstore.Txn{
		Conds: []raftstore.Cond{cond},
		Ops: []raftstore.Op{
			{Kind: raftstore.OpPut, Bucket: checkpointsPath(chain), Key: be8(c.Size), Value: msg},
			{Kind: raftstore.OpPut, Bucket: bucketLatest, Key: []byte(chain), Value: msg},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("audit: store checkpoint of %s: %w", chain, err)
	}
	if !res.Applied {
		// Another node signed meanwhile: theirs is as good.
		return s.Latest(ctx, raftstore.Linearizable, chain)
	}
	return msg, nil
}

func be8(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// Proof is an inclusion or consistency proof with the tree it is against.
type Proof struct {
	Index      uint64      `json:"index,omitempty"`
	Old        uint64      `json:"old,omitempty"`
	Size       uint64      `json:"size"`
	Root       tlog.Hash   `json:"root"`
	Entry      []byte      `json:"entry,omitempty"` // the canonical entry (inclusion)
	Proof      []tlog.Hash `json:"proof"`
	Checkpoint []byte      `json:"checkpoint,omitempty"` // the signed checkpoint at Size, when there is one
}

// sizeOrLatest resolves a size of 0 to the latest checkpoint's size (so
// proofs verify against a signed tree head), or the chain's size.
func (s *Service) sizeOrLatest(r *raftstore.ReadTx, chain string, size uint64) (uint64, []byte, error) {
	head, _ := r.ChainHead([]byte(chain))
	if size == 0 {
		if msg, _, ok := r.Get(bucketLatest, []byte(chain)); ok {
			c, err := ParseCheckpoint(noteText(msg))
			if err != nil {
				return 0, nil, err
			}
			return c.Size, msg, nil
		}
		size = head
	}
	if size == 0 || size > head {
		return 0, nil, fmt.Errorf("%w: size %d (the chain has %d entries)", ErrRange, size, head)
	}
	msg, _, _ := r.Get(checkpointsPath(chain), be8(size))
	return size, msg, nil
}

// ProveInclusion proves entry index (0-based, = seq-1) is in the tree of
// size (0: the latest checkpoint's).
func (s *Service) ProveInclusion(ctx context.Context, chain string, index, size uint64) (Proof, error) {
	var p Proof
	err := s.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		var err error
		if p.Size, p.Checkpoint, err = s.sizeOrLatest(r, chain, size); err != nil {
			return err
		}
		if index >= p.Size {
			return fmt.Errorf("%w: index %d in a tree of %d", ErrRange, index, p.Size)
		}
		data, _, ok := r.ChainEntry([]byte(chain), index+1)
		if !ok {
			return fmt.Errorf("%w: entry %d (pruned)", ErrNotFound, index+1)
		}
		p.Index, p.Entry = index, data
		if p.Root, err = r.ChainTreeHash([]byte(chain), p.Size); err != nil {
			return err
		}
		rp, err := r.ChainProveRecord([]byte(chain), p.Size, index)
		p.Proof = rp
		return err
	})
	if err != nil {
		return Proof{}, fmt.Errorf("audit: inclusion proof in %s: %w", chain, err)
	}
	return p, nil
}

// ProveConsistency proves the tree of size old is a prefix of the tree of
// size size (0: the latest checkpoint's).
func (s *Service) ProveConsistency(ctx context.Context, chain string, old, size uint64) (Proof, error) {
	var p Proof
	err := s.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		var err error
		if p.Size, p.Checkpoint, err = s.sizeOrLatest(r, chain, size); err != nil {
			return err
		}
		if old == 0 || old > p.Size {
			return fmt.Errorf("%w: old size %d with a tree of %d", ErrRange, old, p.Size)
		}
		p.Old = old
		if p.Root, err = r.ChainTreeHash([]byte(chain), p.Size); err != nil {
			return err
		}
		tp, err := r.ChainProveTree([]byte(chain), p.Size, old)
		p.Proof = tp
		return err
	})
	if err != nil {
		return Proof{}, fmt.Errorf("audit: consistency proof in %s: %w", chain, err)
	}
	return p, nil
}

// Append writes e to chain in a transaction of its own: for changes that
// are not transactions of the store (membership), written before the
// change, with outcome "requested" — if it cannot be written, the change
// is not made.
func (s *Service) Append(ctx context.Context, chain string, e Entry) error {
	return Append(ctx, s.store, chain, e)
}

// Append is Service.Append for callers that hold only the store (the
// node's membership hooks run before the service exists).
func Append(ctx context.Context, store Store, chain string, e Entry) error {
	a, err := Record(chain, e)
	if err != nil {
		return err
	}
	res, err := store.Apply(ctx, &raftstore.Txn{Appends: []raftstore.Append{a}})
	if err != nil {
		return fmt.Errorf("audit: append to %s: %w", chain, err)
	}
	if res.Err != nil {
		return fmt.Errorf("audit: append to %s: %w", chain, res.Err)
	}
	return nil
}

// PruneBefore drops chain's entries older than cutoff (never the newest),
// with an audit.prune entry in the same transaction. The tree keeps every
// hash: roots, proofs of the retained entries and consistency proofs do not
// change, and exports start at the first retained entry.
func (s *Service) PruneBefore(ctx context.Context, chain string, cutoff time.Time) error {
	var first, before uint64
	var scanErr error
	err := s.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		first, _ = r.ChainPruned([]byte(chain))
		before = first
		scanned := 0
		r.ChainEntries([]byte(chain), first, func(seq uint64, _ [32]byte, data []byte) bool {
			e, err := Decode(data)
			if err != nil {
				scanErr = fmt.Errorf("entry %d: %w", seq, err)
				return false
			}
			if !e.Time.Before(cutoff) {
				return false
			}
			before = seq + 1
			scanned++
			return scanned < 100000
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: prune %s: %w", chain, err)
	}
	if scanErr != nil {
		return fmt.Errorf("audit: prune %s: %w", chain, scanErr)
	}
	if before <= first {
		return nil
	}
	a, err := Record(chain, System().Entry(s.now().UTC(), "audit.prune", "chain:"+chain, OutcomeSuccess,
		map[string]string{"before_seq": strconv.FormatUint(before, 10), "cutoff": cutoff.UTC().Format(time.RFC3339)}))
	if err != nil {
		return err
	}
	res, err := s.store.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{raftstore.PruneChain([]byte(chain), before)}, Appends: []raftstore.Append{a}})
	if err != nil {
		return fmt.Errorf("audit: prune %s: %w", chain, err)
	}
	if res.Err != nil {
		return fmt.Errorf("audit: prune %s: %w", chain, res.Err)
	}
	return nil
}
