package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/raftstore"
)

// ChainCheck is the self-check result of one chain.
type ChainCheck struct {
	Chain   string `json:"chain"`
	Size    uint64 `json:"size"`
	Checked uint64 `json:"checked"` // entries re-hashed (the retained ones)
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"` // names the place: "entry 17: ..."
}

// CheckReport is one self-check of every chain on this node.
type CheckReport struct {
	Time     time.Time     `json:"time"`
	OK       bool          `json:"ok"`
	Chains   []ChainCheck  `json:"chains"`
	Duration time.Duration `json:"duration_nanos"`
}

// Witness is what a node remembers, outside the state file, of the latest
// checkpoint it verified per chain: a state file rolled back to an older
// copy, or replaced by a forked history, no longer matches it.
type Witness struct {
	path string
}

// NewWitness keeps the witness in path (a file in the node's data
// directory, next to — not inside — the state file).
func NewWitness(path string) *Witness { return &Witness{path: path} }

func (w *Witness) load() (map[string][]byte, error) {
	out := map[string][]byte{}
	if w == nil {
		return out, nil
	}
	b, err := os.ReadFile(w.path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("witness %s: %w", w.path, err)
	}
	return out, nil
}

func (w *Witness) save(m map[string][]byte) error {
	if w == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return raftstore.WriteFileAtomic(w.path, b)
}

// SelfCheck re-verifies every chain this node holds, from its own files:
// each retained entry's leaf hash and every stored tree hash (so the tree
// the node proves from is the tree of its entries), the hash-chain links,
// the latest signed checkpoint's signature, root and link, and the witness
// (a rollback or a fork since the last check). It reads in short
// transactions. The report names the first problem of each chain.
func (s *Service) SelfCheck(ctx context.Context, w *Witness) (*CheckReport, error) {
	start := time.Now()
	v, _, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	var chains []string
	// Linearizable once, so the check covers at least every acknowledged
	// write; the chunks after it read this node's state locally.
	if err := s.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.Chains(func(name []byte, _ uint64) bool {
			chains = append(chains, string(name))
			return true
		})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("audit: self-check: %w", err)
	}
	sort.Strings(chains)
	witnessed, err := w.load()
	if err != nil {
		return nil, fmt.Errorf("audit: self-check: %w", err)
	}
	rep := &CheckReport{Time: s.now().UTC(), OK: true}
	for _, chain := range chains {
		cc, latest := s.checkChain(ctx, chain, v, witnessed[chain])
		rep.Chains = append(rep.Chains, cc)
		if !cc.OK {
			rep.OK = false
		} else if latest != nil {
			witnessed[chain] = latest
		}
	}
	for chain := range witnessed {
		if !contains(chains, chain) {
			rep.OK = false
			rep.Chains = append(rep.Chains, ChainCheck{Chain: chain, Problem: "the chain is gone (this node verified a checkpoint of it before)"})
		}
	}
	if rep.OK {
		if err := w.save(witnessed); err != nil {
			return nil, fmt.Errorf("audit: self-check: save witness: %w", err)
		}
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (s *Service) checkChain(ctx context.Context, chain string, v note.Verifier, witness []byte) (ChainCheck, []byte) {
	cc := ChainCheck{Chain: chain}
	bad := func(format string, args ...any) (ChainCheck, []byte) {
		cc.Problem = fmt.Sprintf(format, args...)
		return cc, nil
	}
	var (
		size, prunedBefore uint64
		head, prunedLink   [32]byte
		latest             []byte
	)
	if err := s.store.View(ctx, raftstore.Stale, func(r *raftstore.ReadTx) error {
		size, head = r.ChainHead([]byte(chain))
		prunedBefore, prunedLink = r.ChainPruned([]byte(chain))
		latest, _, _ = r.Get(bucketLatest, []byte(chain))
		return nil
	}); err != nil {
		return bad("read: %v", err)
	}
	cc.Size = size
	first := max(prunedBefore, 1)
	link := prunedLink
	if first == 1 {
		link = [32]byte{}
	}
	for seq := first; seq <= size; {
		end := min(seq+exportChunk-1, size)
		var problem string
		err := s.store.View(ctx, raftstore.Stale, func(r *raftstore.ReadTx) error {
			reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return r.ChainReadHashes([]byte(chain), idx) })
			want := seq
			r.ChainEntries([]byte(chain), seq, func(n uint64, stored [32]byte, data []byte) bool {
				if n != want {
					problem = fmt.Sprintf("entry %d: missing (the next stored entry is %d)", want, n)
					return false
				}
				link = raftstore.ChainLink(link, tlog.RecordHash(data))
				if link != stored {
					problem = fmt.Sprintf("entry %d: hash-chain link differs (entry or link altered)", n)
					return false
				}
				hs, err := tlog.StoredHashes(int64(n-1), data, reader)
				if err != nil {
					problem = fmt.Sprintf("entry %d: %v", n, err)
					return false
				}
				have, err := r.ChainReadHashes([]byte(chain), storedRange(int64(n-1), len(hs)))
				if err != nil {
					problem = fmt.Sprintf("entry %d: %v", n, err)
					return false
				}
				for j := range hs {
					if hs[j] != have[j] {
						if j == 0 {
							problem = fmt.Sprintf("entry %d: does not match its stored leaf hash (entry or tree altered)", n)
						} else {
							problem = fmt.Sprintf("entry %d: stored tree hashes are inconsistent (tree altered)", n)
						}
						return false
					}
				}
				cc.Checked++
				want++
				return n < end
			})
			if problem == "" && want != end+1 {
				problem = fmt.Sprintf("entry %d: missing", want)
			}
			return nil
		})
		if err != nil {
			return bad("read: %v", err)
		}
		if problem != "" {
			return bad("%s", problem)
		}
		seq = end + 1
	}
	if size > 0 && link != head {
		return bad("head: the chain head does not match the last entry")
	}
	treeAt := func(n uint64) (tlog.Hash, [32]byte, error) {
		var root tlog.Hash
		var l [32]byte
		err := s.store.View(ctx, raftstore.Stale, func(r *raftstore.ReadTx) error {
			var err error
			if root, err = r.ChainTreeHash([]byte(chain), n); err != nil {
				return err
			}
			_, l, _ = r.ChainEntry([]byte(chain), n)
			if n+1 == prunedBefore {
				l = prunedLink
			}
			return nil
		})
		return root, l, err
	}
	check := func(msg []byte, what string) (Checkpoint, bool) {
		c, err := OpenCheckpoint(msg, v)
		if err != nil {
			bad("%s: %v", what, err)
			return c, false
		}
		if c.Size > size {
			bad("%s at size %d, but the chain has only %d entries (rolled back or truncated)", what, c.Size, size)
			return c, false
		}
		if c.Size == 0 {
			return c, true
		}
		root, l, err := treeAt(c.Size)
		if err != nil {
			bad("%s: %v", what, err)
			return c, false
		}
		if root != c.Root {
			bad("%s at size %d: Merkle root differs (history before entry %d altered or forked)", what, c.Size, c.Size)
			return c, false
		}
		if c.Size >= prunedBefore && l != c.Link {
			bad("%s at size %d: hash-chain link differs", what, c.Size)
			return c, false
		}
		return c, true
	}
	if latest != nil {
		if _, ok := check(latest, "latest checkpoint"); !ok {
			return cc, nil
		}
	}
	if witness != nil {
		wc, ok := check(witness, "checkpoint this node verified earlier")
		if !ok {
			return cc, nil
		}
		if latest == nil {
			return bad("the chain's checkpoints are gone (this node verified one at size %d)", wc.Size)
		}
	}
	cc.OK = true
	return cc, latest
}

// storedRange lists the stored-hash indexes that record n adds.
func storedRange(n int64, count int) []int64 {
	start := tlog.StoredHashIndex(0, n)
	out := make([]int64, count)
	for i := range out {
		out[i] = start + int64(i)
	}
	return out
}
