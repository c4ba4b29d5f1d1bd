package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/raftstore"
)

// exportChunk is how many entries one read transaction of an export
// covers: entries never change once written, so an export reads them in
// short transactions instead of holding one open for minutes.
const exportChunk = 10000

// Export writes a bundle of chain (see Bundle) to w: the entries from the
// first one at or after from (zero: the oldest retained) to the last one
// at or before to (zero: the chain's last entry when the export starts),
// up to the first signed checkpoint that covers them — signed now when
// none does yet, so that a bundle never silently ends before what was
// asked for. It may hold a few entries after to (up to that checkpoint).
func (s *Service) Export(ctx context.Context, chain string, from, to time.Time, w io.Writer) error {
	origin, err := s.origin(ctx, chain)
	if err != nil {
		return err
	}
	var b *Bundle
	var upTo uint64 // after signing: the entry the bundle must reach
	for attempt := 0; ; attempt++ {
		var last uint64
		b, last, err = s.plan(ctx, chain, origin, from, to, upTo)
		if !errors.Is(err, errUncovered) || attempt == 1 {
			break
		}
		if err = s.cover(ctx, chain, last); err != nil {
			break
		}
		upTo = last
	}
	if err != nil {
		return fmt.Errorf("audit: export %s: %w", chain, err)
	}
	m := &b.Manifest
	// Two passes over the entries in short transactions: the length first
	// (tar needs it), then the data.
	each := func(fn func(seq uint64, entry []byte) error) error {
		for start := m.First; start <= m.Size; start += exportChunk {
			end := min(start+exportChunk-1, m.Size)
			var ferr error
			want := start
			err := s.store.View(ctx, raftstore.Stale, func(r *raftstore.ReadTx) error {
				r.ChainEntries([]byte(chain), start, func(seq uint64, _ [32]byte, data []byte) bool {
					if seq != want {
						ferr = fmt.Errorf("entry %d missing (pruned during the export?)", want)
						return false
					}
					want++
					if ferr = fn(seq, data); ferr != nil {
						return false
					}
					return seq < end
				})
				return nil
			})
			if err != nil {
				return err
			}
			if ferr != nil {
				return ferr
			}
			if want != end+1 {
				return fmt.Errorf("entries %d..%d missing on this node", want, end)
			}
		}
		return nil
	}
	err = each(func(seq uint64, entry []byte) error {
		b.EntriesLen += int64(len(EntryLine(seq, entry)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: export %s: %w", chain, err)
	}
	b.Entries = each
	return b.Write(w)
}

// errUncovered: no signed checkpoint covers the entries an export asks
// for yet (Export then signs one).
var errUncovered = fmt.Errorf("%w: no signed checkpoint covers the entries yet", ErrNotFound)

// plan reads what a bundle of chain holds, all but its entries: the range
// (entries at or after from; at or before to, or up to entry upTo when it
// is not zero), the checkpoints, the link and tree hashes before the
// range and the stored hashes in it. It returns errUncovered and the last
// entry asked for when no checkpoint covers that entry.
func (s *Service) plan(ctx context.Context, chain, origin string, from, to time.Time, upTo uint64) (*Bundle, uint64, error) {
	b := &Bundle{Manifest: Manifest{Format: BundleFormat, Origin: origin, Chain: chain}, ModTime: s.now().UTC()}
	m := &b.Manifest
	var last uint64
	err := s.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		head, _ := r.ChainHead([]byte(chain))
		if head == 0 {
			return fmt.Errorf("%w: the chain is empty", ErrNotFound)
		}
		prunedBefore, prunedLink := r.ChainPruned([]byte(chain))
		first := max(prunedBefore, 1)
		// The first entry at or after from, and the last at or before to.
		last = head
		if upTo != 0 {
			last = min(upTo, head)
		}
		if !from.IsZero() || (!to.IsZero() && upTo == 0) {
			found := false
			var scanErr error
			r.ChainEntries([]byte(chain), first, func(seq uint64, _ [32]byte, data []byte) bool {
				e, err := Decode(data)
				if err != nil {
					scanErr = fmt.Errorf("entry %d: %w", seq, err)
					return false
				}
				if !found && !from.IsZero() && e.Time.Before(from) {
					first = seq + 1
					return true
				}
				found = true
				if upTo == 0 && !to.IsZero() && e.Time.After(to) {
					last = seq - 1
					return false
				}
				return upTo == 0 && !to.IsZero() // past from: only to needs more
			})
			if scanErr != nil {
				return scanErr
			}
			if first > head {
				return fmt.Errorf("%w: no entry after %s", ErrNotFound, from.Format(time.RFC3339))
			}
		}
		// The bundle ends on the first checkpoint at or after last.
		size := uint64(0)
		r.Scan(checkpointsPath(chain), be8(max(last, first)-1), 0, func(k, v []byte, _ uint64) bool {
			n := binary.BigEndian.Uint64(k)
			if n < last {
				return true
			}
			if size == 0 {
				size = n
			}
			return false
		})
		if size == 0 {
			return errUncovered
		}
		m.First, m.Size = first, size
		a := int64(first - 1)
		switch {
		case first == 1:
			m.PrevLink = make([]byte, 32)
		case first == prunedBefore:
			m.PrevLink = prunedLink[:]
		default:
			_, link, ok := r.ChainEntry([]byte(chain), first-1)
			if !ok {
				return fmt.Errorf("%w: entry %d", ErrNotFound, first-1)
			}
			m.PrevLink = link[:]
		}
		m.HashStart = tlog.StoredHashIndex(0, a)
		idx := frontierIndexes(a)
		hs, err := r.ChainReadHashes([]byte(chain), idx)
		if err != nil {
			return err
		}
		for i, x := range idx {
			m.Frontier = append(m.Frontier, Stored{Index: x, Hash: hs[i][:]})
		}
		if b.Hashes, err = r.ChainStoredHashes([]byte(chain), m.HashStart, tlog.StoredHashCount(int64(size))); err != nil {
			return err
		}
		r.Scan(checkpointsPath(chain), nil, 0, func(k, v []byte, _ uint64) bool {
			n := binary.BigEndian.Uint64(k)
			if n+1 >= first && n <= size {
				b.Checkpoints = append(b.Checkpoints, v)
			}
			return n < size
		})
		return nil
	})
	if err != nil {
		return nil, last, err
	}
	return b, last, nil
}

// coverTries bounds the signing rounds of cover: a round falls short only
// when another node signed a smaller size at the same moment.
const coverTries = 3

// cover signs chain's current tree head unless a checkpoint already covers
// entry last, so that an export can end on one.
func (s *Service) cover(ctx context.Context, chain string, last uint64) error {
	for range coverTries {
		msg, err := s.SignNow(ctx, chain)
		if err != nil {
			return err
		}
		c, err := ParseCheckpoint(noteText(msg))
		if err != nil {
			return fmt.Errorf("stored checkpoint: %w", err)
		}
		if c.Size >= last {
			return nil
		}
	}
	return fmt.Errorf("%w: no signed checkpoint covers entry %d", ErrNotFound, last)
}
