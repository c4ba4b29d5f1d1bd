package records

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// token is the blind-index token of a normalized value.
func token(key []byte, collection, field string, normalized []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(collection))
	m.Write([]byte{0})
	m.Write([]byte(field))
	m.Write([]byte{0})
	m.Write(normalized)
	return m.Sum(nil)
}

// indexDeletes are the deletes of a stored record's index entries.
func (s *Service) indexDeletes(ctx context.Context, tenant, collection, id string, sc *collections.Schema, rec Record) ([]raftstore.Op, error) {
	var ops []raftstore.Op
	var ikey []byte
	for _, f := range sc.Fields {
		raw, ok := rec.Fields[f.Name]
		if !f.Index || !ok {
			continue
		}
		c, err := checkValue(f, raw)
		if err != nil || c.indexed == nil {
			continue
		}
		if ikey == nil {
			if ikey, err = s.keys.IndexKey(ctx, tenant); err != nil {
				return nil, err
			}
		}
		ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: indexPath(collection, f.Name), Key: append(token(ikey, collection, f.Name, c.indexed), []byte(id)...)})
	}
	return ops, nil
}

// Find lists the ids of records whose indexed field equals value, after
// id after, at most limit; next is the last id when more may follow. Only
// a caller that reads the field's classification in clear may search by
// it (ErrFindWithheld otherwise, before anything is looked up): a match
// confirms the searched value. The
// search is audited (record.search, the value pseudonymised as its index
// normalizes it) and answered once its entry is committed.
func (s *Service) Find(ctx context.Context, caller audit.Principal, tenant, collection, field string, value json.RawMessage, after string, limit int) ([]string, string, error) {
	limit, err := validation.PageLimit(limit, validation.MaxPage)
	if err != nil {
		return nil, "", err
	}
	st, err := s.read(ctx, raftstore.Linearizable, caller, tenant, collection, "")
	if err != nil {
		return nil, "", err
	}
	sc := st.sc
	var def *collections.Field
	for i := range sc.Fields {
		if sc.Fields[i].Name == field {
			def = &sc.Fields[i]
		}
	}
	if def == nil || !def.Index {
		return nil, "", validation.Field("field", "must be a field of the collection with a blind index")
	}
	if err := s.findable(ctx, caller, tenant, def); err != nil {
		return nil, "", err
	}
	c, err := checkValue(*def, value)
	if err != nil {
		return nil, "", validation.Field("value", err.Error())
	}
	ikey, err := s.keys.IndexKey(ctx, tenant)
	if err != nil {
		return nil, "", err
	}
	prefix := token(ikey, collection, field, c.indexed)
	start := append(bytes.Clone(prefix), []byte(after)...)
	ids := []string{}
	next := ""
	// The schema read above was linearizable: a local read suffices now.
	err = st.store.View(ctx, raftstore.Stale, func(r tenancy.Read) error {
		r.Scan(indexPath(collection, field), start, 0, func(k, _ []byte, _ uint64) bool {
			if !bytes.HasPrefix(k, prefix) {
				return false
			}
			if len(ids) == limit {
				next = ids[len(ids)-1]
				return false
			}
			ids = append(ids, string(k[len(prefix):]))
			return true
		})
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("records: find: %w", err)
	}
	akey, err := s.keys.AuditKey(ctx, tenant)
	if err != nil {
		return nil, "", err
	}
	e := caller.Entry(s.now().UTC(), "record.search", "collection:"+collection, audit.OutcomeSuccess, map[string]string{
		"field": field, "value": audit.Pseudonym(akey, "value", string(c.indexed)), "results": strconv.Itoa(len(ids))})
	if err := s.auditRead(ctx, st.store, e, nil); err != nil {
		return nil, "", err
	}
	return ids, next, nil
}
