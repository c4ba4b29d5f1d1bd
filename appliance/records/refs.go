package records

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// # Refs
//
// A ref field (collections.TypeRef) holds the id of a record of the
// collection the schema names. Its value is sealed like any other; the
// envelope also lists the record's refs in the clear (field, collection,
// id: ids, which are not classified), and every write keeps a reverse
// index of them:
//
//	refs/<target collection>/<target id>   <collection> 0x00 <id> 0x00 <field> -> ""
//
// so that the erasure of a record finds the records that refer to it
// without scanning (Referrers). The envelope's list is what a removal
// deletes the entries by, without opening a value. A ref need not point
// at an existing record: the target may be written later, or erased.

// storedRef is one ref of a record, in its envelope.
type storedRef struct {
	Field      string `json:"f"`
	Collection string `json:"c"`
	ID         string `json:"id"`
}

func refsPath(collection, id string) [][]byte { return raftstore.Path("refs", collection, id) }

func refKey(collection, id, field string) []byte {
	return []byte(collection + "\x00" + id + "\x00" + field)
}

// refsOf lists the refs of values (validated against sc), by field.
func refsOf(sc *collections.Schema, values map[string]checked) []storedRef {
	var out []storedRef
	for _, f := range sc.Fields {
		if v, ok := values[f.Name]; ok && f.Type == collections.TypeRef {
			out = append(out, storedRef{Field: f.Name, Collection: f.Collection, ID: string(v.indexed)})
		}
	}
	return out
}

// refDeletes are the deletes of the reverse-index entries of the record
// collection/id whose refs are refs.
func refDeletes(collection, id string, refs []storedRef) []raftstore.Op {
	var ops []raftstore.Op
	for _, r := range refs {
		if validID(r.ID) && collections.ValidName(r.Collection) {
			ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: refsPath(r.Collection, r.ID), Key: refKey(collection, id, r.Field)})
		}
	}
	return ops
}

// refPuts are the puts of those entries.
func refPuts(collection, id string, refs []storedRef) []raftstore.Op {
	ops := make([]raftstore.Op, 0, len(refs))
	for _, r := range refs {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: refsPath(r.Collection, r.ID), Key: refKey(collection, id, r.Field), Value: []byte{}})
	}
	return ops
}

// Referrer is a record's field that refers to another record (Target),
// and what the erasure of that record does to it (collections.OnErase*).
type Referrer struct {
	Collection string `json:"collection"`
	ID         string `json:"id"`
	Field      string `json:"field"`
	OnErase    string `json:"on_erase"`
	Target     Held   `json:"target"`
}

// maxReferrers bounds what one Referrers call answers.
const maxReferrers = 1 << 20

// Referrers lists the record fields that refer to any of the records
// targets names (one linearizable read of the reverse index and the
// referrers' schemas; no attribute scope: the erasure acts for the
// tenant), with the on_erase of each field's current schema (detach
// when the field is gone from it).
func (s *Service) Referrers(ctx context.Context, tenant string, targets []Held) ([]Referrer, error) {
	var out []Referrer
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		schemas := map[string]*collections.Schema{}
		var ferr error
		for _, t := range targets {
			if !validID(t.ID) || !collections.ValidName(t.Collection) {
				continue
			}
			r.Scan(refsPath(t.Collection, t.ID), nil, 0, func(k, _ []byte, _ uint64) bool {
				parts := bytes.Split(k, []byte{0})
				if len(parts) != 3 {
					return true
				}
				ref := Referrer{Collection: string(parts[0]), ID: string(parts[1]), Field: string(parts[2]), OnErase: collections.OnEraseDetach, Target: t}
				sc, ok := schemas[ref.Collection]
				if !ok {
					b, key := s.schemas.CurrentKey(ref.Collection)
					if raw, ver, found := r.Get(b, key); found {
						if sc, ferr = s.schemaOf(tenant, ref.Collection, raw, ver); ferr != nil {
							return false
						}
					}
					schemas[ref.Collection] = sc
				}
				if sc != nil {
					if f := fieldOf(sc, ref.Field); f.OnErase != "" {
						ref.OnErase = f.OnErase
					}
				}
				out = append(out, ref)
				return len(out) < maxReferrers
			})
			if ferr != nil || len(out) >= maxReferrers {
				break
			}
		}
		if ferr == nil && len(out) >= maxReferrers {
			ferr = fmt.Errorf("more than %d referrers", maxReferrers)
		}
		return ferr
	})
	if err != nil {
		return nil, fmt.Errorf("records: referrers: %w", err)
	}
	return out, nil
}

// Holdings lists the records of subject, by collection and id (one
// linearizable read of its subject index; no attribute scope, no audit:
// for the erasure, which acts for the tenant and audits itself).
func (s *Service) Holdings(ctx context.Context, tenant, subject string) ([]Held, error) {
	var out []Held
	if !validID(subject) {
		return nil, nil
	}
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		r.Scan(subjectPath(subject), nil, 0, func(k, _ []byte, _ uint64) bool {
			if c, id, ok := bytes.Cut(k, []byte{0}); ok {
				out = append(out, Held{Collection: string(c), ID: string(id)})
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("records: holdings: %w", err)
	}
	return out, nil
}

// SubjectBucketOp is the delete of subject's (empty) subject-index
// bucket, whose name is the subject's id: the erasure's last transaction
// carries it.
func SubjectBucketOp(subject string) raftstore.Op {
	return raftstore.Op{Kind: raftstore.OpDeleteBucket, Bucket: raftstore.Path("subjects"), Key: []byte(subject)}
}

// RefsBucketOps are the deletes of the reverse-index buckets of the
// records items names (empty once their referrers are erased or
// detached): their names are record ids.
func RefsBucketOps(items []Held) []raftstore.Op {
	ops := make([]raftstore.Op, 0, len(items))
	for _, h := range items {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDeleteBucket, Bucket: raftstore.Path("refs", h.Collection), Key: []byte(h.ID)})
	}
	return ops
}

// DetachPieces rewrites each referrer's record without the ref fields
// refs names (one new version per record, however many of its fields
// are named), cut into pieces of at most room items as RemovePieces. A
// record that is gone, or no longer holds the field, is skipped. The
// rewrite seals every remaining value again under the record's key at
// the new version, so the record must open (ErrIntegrity otherwise).
func (s *Service) DetachPieces(ctx context.Context, tenant string, refs []Referrer, room int) ([]Piece, error) {
	fields := map[Held][]string{}
	var items []Held
	for _, r := range refs {
		h := Held{Collection: r.Collection, ID: r.ID}
		if _, ok := fields[h]; !ok {
			items = append(items, h)
		}
		fields[h] = append(fields[h], r.Field)
	}
	recs, err := s.readMany(ctx, tenant, items)
	if err != nil {
		return nil, err
	}
	var out []one
	for i := range recs {
		o, ok, err := s.detach(ctx, tenant, &recs[i], fields[Held{Collection: recs[i].col, ID: recs[i].id}])
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, o)
		}
	}
	return pack(out, room), nil
}

// detach is the rewrite of f without fields (ok false: it holds none of
// them).
func (s *Service) detach(ctx context.Context, tenant string, f *found, fields []string) (one, bool, error) {
	if f.broken || f.sc == nil {
		return one{}, false, fmt.Errorf("records: detach %s/%s: %w", f.col, f.id, ErrIntegrity)
	}
	holds := false
	for _, name := range fields {
		if _, ok := f.env.Sealed[name]; ok {
			holds = true
		}
	}
	if !holds {
		return one{}, false, nil
	}
	o, err := s.rewrite(ctx, tenant, f, func(fd collections.Field) bool { return !slices.Contains(fields, fd.Name) }, false)
	if err != nil {
		return one{}, false, fmt.Errorf("records: detach %s/%s: %w", f.col, f.id, err)
	}
	return o, true, nil
}

// validRefValue checks a ref field's value: a record id.
func validRefValue(s string) error {
	if !validID(s) {
		return errors.New("must be a record id: 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'")
	}
	return nil
}
