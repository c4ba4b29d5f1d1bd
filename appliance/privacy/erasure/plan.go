package erasure

import (
	"context"
	"fmt"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/raftstore"
)

// pieceRoom is the items (conditions and ops) a removal piece may take:
// one transaction holds raftstore.MaxTxnItems, and the tenancy boundary
// adds its condition and the piece its audit entry.
const pieceRoom = raftstore.MaxTxnItems - 16

// maxDepth bounds how far refs are followed (a chain of erase refs this
// long is a modelling error, not data).
const maxDepth = 64

// Kinds the counts (and the receipt) name.
const (
	KindRecords  = "records"        // the subject's records
	KindLinked   = "linked-records" // records erased because they refer to erased ones (on_erase erase)
	KindDetached = "detached-records"
	KindBlobs    = "blobs"
	KindConsent  = "consent-events" // ledger events reduced to their minimal proof
)

// kindBuckets marks the steps that delete emptied buckets (counted
// nowhere).
const kindBuckets = "emptied-buckets"

// step is one transaction of an erasure before the last: what it writes
// and what it counts.
type step struct {
	ops   []raftstore.Op
	conds []raftstore.Cond
	kind  string
	n     int
}

// plan is what an erasure of one subject removes, in the order it is
// applied.
type plan struct {
	steps []step
}

// plan reads what the tenant holds about subject and builds the removal.
func (s *Service) plan(ctx context.Context, tenant, subject string) (*plan, error) {
	p := &plan{}
	own, err := s.records.Holdings(ctx, tenant, subject)
	if err != nil {
		return nil, err
	}
	// Follow refs level by level: levels[0] the subject's own records,
	// levels[i] the records erased because they refer to levels[i-1].
	erased := map[records.Held]bool{}
	for _, h := range own {
		erased[h] = true
	}
	levels := [][]records.Held{own}
	var detach []records.Referrer
	referred := map[records.Held]bool{} // erased records that others refer to: their reverse-index buckets go
	for cur := own; len(cur) > 0; {
		if len(levels) > maxDepth {
			return nil, fmt.Errorf("%w: refs with on_erase erase deeper than %d records", ErrTooDeep, maxDepth)
		}
		refs, err := s.records.Referrers(ctx, tenant, cur)
		if err != nil {
			return nil, err
		}
		var next []records.Held
		for _, r := range refs {
			referred[r.Target] = true
			h := records.Held{Collection: r.Collection, ID: r.ID}
			switch {
			case erased[h]:
			case r.OnErase == collections.OnEraseErase:
				erased[h] = true
				next = append(next, h)
			default:
				detach = append(detach, r)
			}
		}
		if len(next) > 0 {
			levels = append(levels, next)
		}
		cur = next
	}
	// A record both detached from one erased record and erased through
	// another is only erased.
	kept := detach[:0]
	for _, r := range detach {
		if !erased[records.Held{Collection: r.Collection, ID: r.ID}] {
			kept = append(kept, r)
		}
	}
	if err := s.addPieces(p, KindDetached, func() ([]records.Piece, error) {
		return s.records.DetachPieces(ctx, tenant, kept, pieceRoom)
	}); err != nil {
		return nil, err
	}
	for i := len(levels) - 1; i >= 0; i-- {
		kind := KindLinked
		if i == 0 {
			kind = KindRecords
		}
		if err := s.addPieces(p, kind, func() ([]records.Piece, error) {
			return s.records.RemovePieces(ctx, tenant, levels[i], pieceRoom)
		}); err != nil {
			return nil, err
		}
	}
	// The reverse-index buckets of erased records, named by their ids,
	// are empty once their referrers are erased or detached.
	var buckets []records.Held
	for _, level := range levels {
		for _, h := range level {
			if referred[h] {
				buckets = append(buckets, h)
			}
		}
	}
	for ops := records.RefsBucketOps(buckets); len(ops) > 0; {
		k := min(len(ops), pieceRoom)
		p.steps = append(p.steps, step{ops: ops[:k], kind: kindBuckets, n: k})
		ops = ops[k:]
	}
	if err := s.planBlobs(ctx, p, tenant, subject); err != nil {
		return nil, err
	}
	ops, _, err := s.consent.EraseOps(ctx, tenant, subject)
	if err != nil {
		return nil, err
	}
	for len(ops) > 0 {
		k := min(len(ops), pieceRoom&^1) // an event's delete and put stay together
		p.steps = append(p.steps, step{ops: ops[:k], kind: KindConsent, n: k / 2})
		ops = ops[k:]
	}
	return p, nil
}

// addPieces adds the pieces build makes as steps counting kind.
func (s *Service) addPieces(p *plan, kind string, build func() ([]records.Piece, error)) error {
	pieces, err := build()
	if err != nil {
		return err
	}
	for _, pc := range pieces {
		p.steps = append(p.steps, step{ops: pc.Ops, conds: pc.Conds, kind: kind, n: pc.N})
	}
	return nil
}

// blobsPerStep bounds the blobs one step removes (four items each at
// most).
const blobsPerStep = pieceRoom / 4

func (s *Service) planBlobs(ctx context.Context, p *plan, tenant, subject string) error {
	ids, err := s.blobs.SubjectBlobs(ctx, tenant, subject)
	if err != nil {
		return err
	}
	for len(ids) > 0 {
		k := min(len(ids), blobsPerStep)
		ops, conds, n, err := s.blobs.RemoveOps(ctx, tenant, ids[:k])
		if err != nil {
			return err
		}
		if n > 0 {
			p.steps = append(p.steps, step{ops: ops, conds: conds, kind: KindBlobs, n: n})
		}
		ids = ids[k:]
	}
	return nil
}
