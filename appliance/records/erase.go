package records

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// # Bulk removal (erasure, retention)
//
// RemoveOps and RemovePieces build — they do not apply — the writes that
// remove records with everything that names them: the envelope, the
// blind-index entries, the subject entry and the record's entries in the
// reverse ref index (refs/<target collection>/<target id>). The caller (the
// erasure service, the retention sweeper) applies them through the
// tenant's tenancy.Scope in transactions of its own, with its own audit
// entry, so that a removal of thousands of records is a few transactions
// rather than thousands. Each removed record carries a condition on the
// version read: a record changed between the read and the transaction
// fails the transaction (Result.Applied false, nothing removed) and the
// caller reads again. Records already gone are skipped, so a removal run
// again after a crash finishes what the first run left.
//
// Index entries are named by the envelope, which lists them (field and
// token, as the index keys hold them in the clear), so a removal opens
// nothing and needs no key. A record written before envelopes listed
// them has its entries computed from its values, which the subject's
// data key opens; one whose values do not open — its key was shredded,
// or it was altered — has its entries found by one scan of the
// collection's index buckets for all such records together (as Delete
// does for one, within maxIndexScan keys).
//
// Incoming refs (other records naming a removed record) are not touched:
// the erasure follows them first (Referrers, DetachPieces); for any other
// removal they are left dangling, as a deleted record leaves them.

// Piece is one transaction's worth of a removal or a detachment: its
// writes and conditions (paths relative to the tenant's bucket), and the
// number of records it removes or rewrites.
type Piece struct {
	Ops   []raftstore.Op
	Conds []raftstore.Cond
	N     int
}

// Items is the number of transaction items the piece takes.
func (p Piece) Items() int { return len(p.Ops) + len(p.Conds) }

// one is the removal (or rewrite) of one record: its writes and its
// version condition.
type one struct {
	ops  []raftstore.Op
	cond raftstore.Cond
}

// RemoveOps returns the writes removing the records items names that
// exist (n of them), and the conditions that they are still as read. For
// a handful of records; RemovePieces cuts any number into transactions.
func (s *Service) RemoveOps(ctx context.Context, tenant string, items []Held) (ops []raftstore.Op, conds []raftstore.Cond, n int, err error) {
	rs, err := s.removals(ctx, tenant, items)
	if err != nil {
		return nil, nil, 0, err
	}
	for _, r := range rs {
		ops = append(ops, r.ops...)
		conds = append(conds, r.cond)
	}
	return ops, conds, len(rs), nil
}

// RemovePieces is RemoveOps cut into pieces of at most room items each
// (conditions and ops; room below what one record needs still holds that
// record): leave in room what the caller's transaction adds (its audit
// entries, its own ops) below raftstore.MaxTxnItems.
func (s *Service) RemovePieces(ctx context.Context, tenant string, items []Held, room int) ([]Piece, error) {
	rs, err := s.removals(ctx, tenant, items)
	if err != nil {
		return nil, err
	}
	return pack(rs, room), nil
}

// pack groups removals into pieces of at most room items.
func pack(rs []one, room int) []Piece {
	var out []Piece
	var cur Piece
	for _, r := range rs {
		if cur.N > 0 && cur.Items()+len(r.ops)+1 > room {
			out = append(out, cur)
			cur = Piece{}
		}
		cur.Ops = append(cur.Ops, r.ops...)
		cur.Conds = append(cur.Conds, r.cond)
		cur.N++
	}
	if cur.N > 0 {
		out = append(out, cur)
	}
	return out
}

// found is a stored record read for a removal or a rewrite.
type found struct {
	col, id string
	sc      *collections.Schema // nil: the collection has no schema any more
	env     envelope
	broken  bool
	version uint64
}

// readMany reads the records items names (once each; absent ones left
// out) with their collections' current schemas, in one linearizable read
// of the whole tenant (no attribute scope: the callers act for the
// tenant).
func (s *Service) readMany(ctx context.Context, tenant string, items []Held) ([]found, error) {
	store := s.tenancy.Scope(tenant)
	seen := map[Held]bool{}
	raws := map[string][]byte{}
	vers := map[string]uint64{}
	var out []found
	err := store.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		for _, h := range items {
			if seen[h] || !validID(h.ID) || !collections.ValidName(h.Collection) {
				continue
			}
			seen[h] = true
			if _, ok := raws[h.Collection]; !ok {
				b, k := s.schemas.CurrentKey(h.Collection)
				raw, ver, _ := r.Get(b, k)
				raws[h.Collection], vers[h.Collection] = raw, ver
			}
			v, ver, ok := r.Get(recordsPath(h.Collection), []byte(h.ID))
			if !ok {
				continue
			}
			f := found{col: h.Collection, id: h.ID, version: ver}
			f.broken = json.Unmarshal(v, &f.env) != nil
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("records: read for removal: %w", err)
	}
	for i := range out {
		if raw := raws[out[i].col]; raw != nil {
			if out[i].sc, err = s.schemaOf(tenant, out[i].col, raw, vers[out[i].col]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// removals reads the records and builds the removal of each that exists.
func (s *Service) removals(ctx context.Context, tenant string, items []Held) ([]one, error) {
	recs, err := s.readMany(ctx, tenant, items)
	if err != nil {
		return nil, err
	}
	out := make([]one, len(recs))
	scan := map[string][]int{} // collection -> records whose index entries must be scanned for
	for i := range recs {
		f := &recs[i]
		ops, ok, err := s.indexOf(ctx, tenant, f)
		if err != nil {
			return nil, err
		}
		if !ok {
			scan[f.col] = append(scan[f.col], i)
		}
		ops = append(ops, refDeletes(f.col, f.id, f.env.Refs)...)
		if sub := f.env.Subject; sub != "" && validID(sub) {
			ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: subjectPath(sub), Key: subjectKey(f.col, f.id)})
		}
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: recordsPath(f.col), Key: []byte(f.id)})
		out[i] = one{ops: ops, cond: raftstore.Cond{Kind: raftstore.CondVersion, Bucket: recordsPath(f.col), Key: []byte(f.id), Version: f.version}}
	}
	for _, col := range sortedKeys(scan) {
		if err := s.scanMany(ctx, tenant, recs, scan[col], out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// indexOf is the deletes of f's index entries computed from its values;
// ok false when they do not open (or there is no schema to say which are
// indexed but the envelope holds values: then the scan decides).
func (s *Service) indexOf(ctx context.Context, tenant string, f *found) ([]raftstore.Op, bool, error) {
	if f.broken || f.sc == nil {
		return nil, f.sc == nil && !f.broken, nil
	}
	if !hasIndexed(f.sc, f.env) {
		return nil, true, nil
	}
	if len(f.env.Index) > 0 {
		return indexDeletesOf(f.col, f.id, f.env.Index), true, nil
	}
	key, err := s.keys.DataKey(ctx, tenant, f.env.Subject)
	if err != nil {
		return nil, false, err
	}
	rec, failed := openFields(tenant, f.col, f.id, f.env, key)
	if len(failed) > 0 {
		return nil, false, nil
	}
	ops, err := s.indexDeletes(ctx, tenant, f.col, f.id, f.sc, rec)
	return ops, err == nil, err
}

// hasIndexed reports whether env holds a value of an indexed field.
func hasIndexed(sc *collections.Schema, env envelope) bool {
	for _, fd := range sc.Fields {
		if _, ok := env.Sealed[fd.Name]; ok && fd.Index {
			return true
		}
	}
	return false
}

// scanMany finds the index entries of the records recs[idx] (all of one
// collection) with one pass over each of the collection's indexed
// buckets, and adds their deletes to out.
func (s *Service) scanMany(ctx context.Context, tenant string, recs []found, idx []int, out []one) error {
	sc := recs[idx[0]].sc
	if sc == nil {
		return nil
	}
	col := recs[idx[0]].col
	want := make(map[string]int, len(idx))
	for _, i := range idx {
		want[recs[i].id] = i
	}
	scanned, truncated := 0, false
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Stale, func(r tenancy.Read) error {
		for _, fd := range sc.Fields {
			if !fd.Index || truncated {
				continue
			}
			bucket := indexPath(col, fd.Name)
			r.Scan(bucket, nil, 0, func(k, _ []byte, _ uint64) bool {
				if scanned == maxIndexScan {
					truncated = true
					return false
				}
				scanned++
				if len(k) <= tokenLen {
					return true
				}
				if i, ok := want[string(k[tokenLen:])]; ok {
					out[i].ops = append(out[i].ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: bucket, Key: k})
				}
				return true
			})
		}
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("records: removal: scan the index of %s: %w", col, err)
	case truncated:
		return fmt.Errorf("records: removal: index entries of %d records of %s not found within %d index keys", len(idx), col, maxIndexScan)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// indexEntry is one blind-index entry of a record, as its envelope keeps
// it.
type indexEntry struct {
	Field string `json:"f"`
	Token []byte `json:"t"`
}

// indexOfPuts lists the index entries the index puts among ops write.
func indexOfPuts(ops []raftstore.Op) []indexEntry {
	var out []indexEntry
	for _, o := range ops {
		if o.Kind == raftstore.OpPut && len(o.Bucket) == 3 && string(o.Bucket[0]) == "index" && len(o.Key) > tokenLen {
			out = append(out, indexEntry{Field: string(o.Bucket[2]), Token: o.Key[:tokenLen:tokenLen]})
		}
	}
	return out
}

// indexDeletesOf are the deletes of the entries ix of record col/id.
func indexDeletesOf(col, id string, ix []indexEntry) []raftstore.Op {
	ops := make([]raftstore.Op, 0, len(ix))
	for _, e := range ix {
		if len(e.Token) == tokenLen && collections.ValidName(e.Field) {
			ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: indexPath(col, e.Field), Key: append(append([]byte(nil), e.Token...), id...)})
		}
	}
	return ops
}
