package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/raftstore"
)

// # Anonymisation (a withdrawal's rule)
//
// A purpose whose on_withdraw rule is anonymise leaves, for the records
// it covers, what is no one's: AnonymiseOps rewrites each as a new
// version without its subject and without every value the schema does
// not classify internal (pii and sensitive values, and values of fields
// the schema no longer names), the remaining values sealed again under
// the tenant's data key — the subject's key no longer opens anything of
// it — with the dropped values' index and ref entries deleted and the
// subject entry gone. What the tenant classified internal is, by its own
// classification, not personal data; the record keeps its id and
// attributes (access decisions). A record that cannot be rewritten so —
// its collection requires a subject, or requires one of the dropped
// fields, or its values do not open — is returned as unable, for the
// caller to erase instead: a rule that asks for the subject's data to
// stop being theirs is not met by keeping it.

// AnonymiseOps returns the writes anonymising the records items names
// that exist and can be (n of them) and the conditions that they are
// still as read; unable are those that exist and cannot be (see above).
// One linearizable read of the whole tenant, no attribute scope (the
// caller acts for the tenant); like RemoveOps it builds, the caller
// applies with its own audit entry.
func (s *Service) AnonymiseOps(ctx context.Context, tenant string, items []Held) (ops []raftstore.Op, conds []raftstore.Cond, n int, unable []Held, err error) {
	recs, err := s.readMany(ctx, tenant, items)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	for i := range recs {
		f := &recs[i]
		if !anonymisable(f) {
			unable = append(unable, Held{Collection: f.col, ID: f.id})
			continue
		}
		o, err := s.rewrite(ctx, tenant, f, func(fd collections.Field) bool { return fd.Classification == collections.ClassInternal }, true)
		if err != nil {
			if !errors.Is(err, ErrIntegrity) {
				return nil, nil, 0, nil, fmt.Errorf("records: anonymise %s/%s: %w", f.col, f.id, err)
			}
			unable = append(unable, Held{Collection: f.col, ID: f.id})
			continue
		}
		ops = append(ops, o.ops...)
		conds = append(conds, o.cond)
		n++
	}
	return ops, conds, n, unable, nil
}

// anonymisable reports whether f's schema admits it without a subject
// and without the values anonymisation drops.
func anonymisable(f *found) bool {
	if f.broken || f.sc == nil || f.sc.SubjectRequired {
		return false
	}
	for _, fd := range f.sc.Fields {
		if fd.Required && fd.Classification != collections.ClassInternal {
			return false
		}
	}
	return true
}

// rewrite is the rewrite of f as its next version holding only the
// values keep admits (and the schema names): every index and ref entry
// of the old values deleted and those of the kept ones put again, the
// kept values sealed again at the new version — under the tenant's data
// key when anonymous, the record then belonging to no subject (its
// subject entry deleted), under the record's own key otherwise. The
// record must open (an integrity error otherwise).
func (s *Service) rewrite(ctx context.Context, tenant string, f *found, keep func(collections.Field) bool, anonymous bool) (one, error) {
	key, err := s.keys.DataKey(ctx, tenant, f.env.Subject)
	if err != nil {
		return one{}, err
	}
	rec, err := s.open(tenant, f.col, f.id, f.env, key)
	if err != nil {
		return one{}, err
	}
	ops, err := s.indexDeletes(ctx, tenant, f.col, f.id, f.sc, rec)
	if err != nil {
		return one{}, err
	}
	ops = append(ops, refDeletes(f.col, f.id, f.env.Refs)...)
	values := map[string]checked{}
	for _, fd := range f.sc.Fields {
		raw, ok := rec.Fields[fd.Name]
		if !ok || !keep(fd) {
			continue
		}
		c, err := checkValue(fd, raw)
		if err != nil {
			return one{}, fmt.Errorf("field %s: %w", fd.Name, err)
		}
		values[fd.Name] = c
	}
	next := f.env
	next.Version++
	next.SchemaVersion = f.sc.Version
	next.UpdatedAt = s.now().UTC()
	next.Refs = refsOf(f.sc, values)
	if anonymous && f.env.Subject != "" {
		if validID(f.env.Subject) {
			ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: subjectPath(f.env.Subject), Key: subjectKey(f.col, f.id)})
		}
		next.Subject = ""
		if key, err = s.keys.DataKey(ctx, tenant, ""); err != nil {
			return one{}, err
		}
	}
	sealed, puts, err := s.sealAll(ctx, tenant, f.col, f.id, next.Version, f.sc, values, key)
	if err != nil {
		return one{}, err
	}
	next.Sealed = sealed
	next.Index = indexOfPuts(puts)
	val, err := json.Marshal(next)
	if err != nil {
		return one{}, err
	}
	ops = append(ops, puts...)
	ops = append(ops, refPuts(f.col, f.id, next.Refs)...)
	ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: recordsPath(f.col), Key: []byte(f.id), Value: val})
	return one{ops: ops, cond: raftstore.Cond{Kind: raftstore.CondVersion, Bucket: recordsPath(f.col), Key: []byte(f.id), Version: f.version}}, nil
}
