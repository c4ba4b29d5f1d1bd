package records

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// names are the failed fields that have the form of a field name, and
// the count of the others: a tampered envelope may carry any key, and
// what is logged or audited is names only.
func (e *integrityError) names() (named []string, others int) {
	for _, f := range e.fields {
		if collections.ValidName(f) {
			named = append(named, f)
		} else {
			others++
		}
	}
	return named, others
}

// maxDetail bounds an audit detail's value (audit allows 512 bytes).
const maxDetail = 500

// details are the audit details of the failure: key names what failed
// ("fields" or "envelope"); for fields, "fields" lists their names (never
// values; at most maxDetail bytes of them) and "fields_failed" counts
// them all.
func (e *integrityError) details(key string) map[string]string {
	if e.envelope {
		return map[string]string{key: "envelope"}
	}
	named, _ := e.names()
	var b strings.Builder
	for _, n := range named {
		if b.Len()+1+len(n) > maxDetail {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
	}
	return map[string]string{key: "fields", "fields": b.String(), "fields_failed": strconv.Itoa(len(e.fields))}
}

// failed is err, an error of a read of the record st at consistency c,
// as the operation returns it: errStale when this node's lagging state
// could have caused it (the read runs again linearizably); an integrity
// failure a linearizable read confirms is audited first, best effort (the
// read fails with ErrIntegrity whether or not its entry is written).
func (s *Service) failed(ctx context.Context, c raftstore.Consistency, caller audit.Principal, st *state, err error) error {
	if err = staleIf(c, err); errors.Is(err, errStale) {
		return err
	}
	var ie *integrityError
	if errors.As(err, &ie) {
		store := st.store
		e := caller.Entry(s.now().UTC(), "record.integrity_failure", "record:"+st.col+"/"+st.id, audit.OutcomeFailure, ie.details("failed"))
		if a, aerr := e.Encode(); aerr == nil {
			_, _ = store.Apply(ctx, &tenancy.Txn{Audit: [][]byte{a}})
		}
	}
	return err
}

// tokenLen is the length of a blind-index token (HMAC-SHA256), which the
// record id follows in an index key.
const tokenLen = sha256.Size

// maxIndexScan bounds the index keys one Delete of a record whose values
// do not open examines.
const maxIndexScan = 1 << 20

// deleteIndex returns the deletes of the index entries of the record st
// read, and the details its delete's audit entry adds. When its values
// open, each entry is computed from its value. When they do not (nor the
// envelope decodes), the entries are found by scanning the index buckets
// of the collection's indexed fields for keys ending in the record id
// (token || id): the envelope is known altered, so none of its values is
// trusted to name an entry, and the scan runs only on this path, once a
// linearizable read has confirmed the failure, within maxIndexScan keys.
func (s *Service) deleteIndex(ctx context.Context, c raftstore.Consistency, st *state) ([]raftstore.Op, map[string]string, error) {
	var ie *integrityError
	if st.broken {
		ie = st.brokenErr()
	} else {
		key, err := s.keys.DataKey(ctx, st.tenant, st.env.Subject)
		if err != nil {
			return nil, nil, err
		}
		rec, failed := openFields(st.tenant, st.col, st.id, st.env, key)
		if len(failed) == 0 {
			ops, err := s.indexDeletes(ctx, st.tenant, st.col, st.id, st.sc, rec)
			return ops, nil, err
		}
		ie = &integrityError{collection: st.col, id: st.id, fields: failed}
	}
	if c == raftstore.Stale {
		return nil, nil, errStale // confirmed by a linearizable read first
	}
	ops, err := s.scanIndex(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	return ops, ie.details("integrity_failure"), nil
}

// scanIndex finds the index entries of the record st read by scanning.
// The scan reads the local state, which follows the linearizable read
// that found the record; it requires the record at the version read, so
// its entries are those of that version (every transaction that writes a
// record's index entries writes the record too), and the delete's
// condition on that version keeps them so until it applies.
func (s *Service) scanIndex(ctx context.Context, st *state) ([]raftstore.Op, error) {
	var ops []raftstore.Op
	same, scanned, truncated := false, 0, false
	err := st.store.View(ctx, raftstore.Stale, func(r tenancy.Read) error {
		_, v, ok := r.Get(recordsPath(st.col), []byte(st.id))
		if same = ok && v == st.version; !same {
			return nil
		}
		for _, f := range st.sc.Fields {
			if !f.Index || truncated {
				continue
			}
			bucket := indexPath(st.col, f.Name)
			r.Scan(bucket, nil, 0, func(k, _ []byte, _ uint64) bool {
				if scanned == maxIndexScan {
					truncated = true
					return false
				}
				scanned++
				if len(k) == tokenLen+len(st.id) && string(k[tokenLen:]) == st.id {
					ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: bucket, Key: k})
				}
				return true
			})
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("records: delete: scan the index: %w", err)
	case !same:
		return nil, ErrVersion // the record changed since the linearizable read
	case truncated:
		return nil, fmt.Errorf("records: delete %s/%s: its values do not open and its index entries were not found within %d index keys", st.col, st.id, maxIndexScan)
	}
	return ops, nil
}
