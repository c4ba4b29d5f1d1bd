package records

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// Held is one thing a tenant holds about a subject.
type Held struct {
	Collection string `json:"collection"`
	ID         string `json:"id"`
}

// Subject lists the records of subject (the basis of data-subject
// requests) that the caller's scope admits, by collection and id. The
// lookup is audited (subject.read, the subject pseudonymised), found or
// not, and answered once its entry is committed.
func (s *Service) Subject(ctx context.Context, caller audit.Principal, tenant, subject string) ([]Held, error) {
	if !validID(subject) {
		return nil, ErrNotFound
	}
	out := []Held{}
	store := s.scope(caller, tenant)
	err := store.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		r.Scan(subjectPath(subject), nil, 0, func(k, _ []byte, _ uint64) bool {
			if c, id, ok := bytes.Cut(k, []byte{0}); ok {
				out = append(out, Held{Collection: string(c), ID: string(id)})
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("records: subject: %w", err)
	}
	akey, err := s.keys.AuditKey(ctx, tenant)
	if err != nil {
		return nil, err
	}
	e := caller.Entry(s.now().UTC(), "subject.read", audit.Pseudonym(akey, "subject", subject), audit.OutcomeSuccess,
		map[string]string{"records": strconv.Itoa(len(out))})
	if err := s.auditRead(ctx, store, e, nil); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// listScan bounds the records one List call examines.
const listScan = 10000

// List returns the ids of the collection's records that the caller's
// scope admits after id after, at most limit, keeping those whose
// attribute attr equals value when attr is set (attributes are stored in
// the clear: they are for access decisions, not personal data). next is
// where to continue ("" at the end).
func (s *Service) List(ctx context.Context, caller audit.Principal, tenant, collection, attr, value, after string, limit int) ([]string, string, error) {
	limit, err := validation.PageLimit(limit, validation.MaxPage)
	if err != nil {
		return nil, "", err
	}
	st, err := s.read(ctx, raftstore.Linearizable, caller, tenant, collection, "")
	if err != nil {
		return nil, "", err
	}
	ids := []string{}
	next := ""
	var start []byte
	if after != "" {
		start = []byte(after)
	}
	// The schema read above was linearizable: a local read suffices now.
	err = st.store.View(ctx, raftstore.Stale, func(r tenancy.Read) error {
		scanned := 0
		r.Scan(recordsPath(collection), start, 0, func(k, v []byte, _ uint64) bool {
			scanned++
			if len(ids) == limit || scanned > listScan {
				next = string(k)
				if len(ids) > 0 && len(ids) == limit {
					next = ids[len(ids)-1]
				}
				return false
			}
			if attr != "" {
				var env struct {
					Attributes map[string]string `json:"attributes"`
				}
				if json.Unmarshal(v, &env) != nil || env.Attributes[attr] != value {
					return true
				}
			}
			ids = append(ids, string(k))
			return true
		})
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("records: list: %w", err)
	}
	return ids, next, nil
}
