package blobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// List returns the tenant's blobs (of subject, when set) after id after, at
// most limit; next is where to continue ("" at the end). A listing by
// subject reveals whether a person is known to the tenant, so it is
// audited, found or not — a blob.list entry naming the subject by its
// pseudonym and the number of blobs answered — and answered only once the
// entry is committed (a tenant whose key is unavailable cannot have it
// written: keyring.UnavailableError). A listing without subject names no
// person and is not audited.
func (s *Service) List(ctx context.Context, caller audit.Principal, tenant, subject, after string, limit int) ([]Blob, string, error) {
	if subject != "" && !ValidID(subject) {
		return nil, "", validation.Field("subject", "must be 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'")
	}
	limit, err := validation.PageLimit(limit, validation.MaxPage)
	if err != nil {
		return nil, "", err
	}
	return s.list(ctx, caller, tenant, subject, after, limit)
}

// list is List of a checked subject, up to limit (any size: Subject asks
// for more than a page), audited as List is.
func (s *Service) list(ctx context.Context, caller audit.Principal, tenant, subject, after string, limit int) ([]Blob, string, error) {
	var start []byte
	if after != "" {
		start = []byte(after)
	}
	v, err := s.sight(ctx, caller, tenant)
	if err != nil {
		return nil, "", err
	}
	out := []Blob{}
	next := ""
	store := s.scope(caller, tenant)
	err = store.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		add := func(raw []byte) error {
			var m stored
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("%w: metadata", ErrIntegrity)
			}
			out = append(out, shown(v, m.Blob))
			return nil
		}
		var ferr error
		if subject == "" {
			r.Scan(metaPath, start, limit+1, func(k, v []byte, _ uint64) bool {
				if len(out) == limit {
					next = out[len(out)-1].ID
					return false
				}
				ferr = add(v)
				return ferr == nil
			})
			return ferr
		}
		r.Scan(subjectPath(subject), start, limit+1, func(k, _ []byte, _ uint64) bool {
			if len(out) == limit {
				next = out[len(out)-1].ID
				return false
			}
			if v, _, ok := r.Get(metaPath, k); ok {
				ferr = add(v)
			}
			return ferr == nil
		})
		return ferr
	})
	if err != nil {
		return nil, "", fmt.Errorf("blobs: list: %w", err)
	}
	if subject != "" {
		if err := s.auditList(ctx, caller, store, subject, len(out)); err != nil {
			return nil, "", err
		}
	}
	return out, next, nil
}

// auditList writes the blob.list entry of a listing by subject (the
// subject's pseudonym, the number of blobs answered) and returns once it
// is committed: through the read-audit batcher when the service has one,
// as the records service writes its searches and subject lookups
// (audit.AppendRead).
func (s *Service) auditList(ctx context.Context, caller audit.Principal, store tenancy.Scope, subject string, results int) error {
	akey, err := s.keys.AuditKey(ctx, store.ID())
	if err != nil {
		return err
	}
	e := caller.Entry(s.now().UTC(), "blob.list", audit.Pseudonym(akey, "subject", subject), audit.OutcomeSuccess,
		map[string]string{"results": strconv.Itoa(results)})
	if err := audit.AppendRead(ctx, s.reads, store, e); err != nil {
		return fmt.Errorf("blobs: audit list: %w", err)
	}
	return nil
}

// Subject lists the blobs of subject (at most maxSubjectBlobs), for the
// subject's overview; audited as List is (blob.list).
func (s *Service) Subject(ctx context.Context, caller audit.Principal, tenant, subject string) ([]Blob, error) {
	b, _, err := s.list(ctx, caller, tenant, subject, "", maxSubjectBlobs)
	return b, err
}

// HasSubject reports whether the tenant holds a blob of the subject
// within the caller's attribute scope (nothing is opened or audited); see
// records.Service.HasSubject.
func (s *Service) HasSubject(ctx context.Context, caller audit.Principal, tenant, subject string) (bool, error) {
	if !ValidID(subject) {
		return false, nil
	}
	found := false
	err := s.scope(caller, tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		found = r.Any(subjectPath(subject))
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("blobs: subject exists: %w", err)
	}
	return found, nil
}
