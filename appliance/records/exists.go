package records

import (
	"context"
	"fmt"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// Attributes reports whether the record exists for the caller — within
// its attribute scope — and its attributes (a linearizable read of its
// envelope; no field is opened, nothing is audited). Blobs use it to link
// an upload to a record, whose attributes an upload without its own
// inherits. A record whose envelope does not decode exists without
// attributes.
func (s *Service) Attributes(ctx context.Context, caller audit.Principal, tenant, collection, id string) (attrs map[string]string, ok bool, err error) {
	if !validID(id) {
		return nil, false, nil
	}
	var raw []byte
	if err := s.scope(caller, tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		raw, _, ok = r.Get(recordsPath(collection), []byte(id))
		return nil
	}); err != nil {
		return nil, false, fmt.Errorf("records: exists: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	attrs, _ = envelopeAttributes(raw)
	return attrs, true, nil
}

// HasSubject reports whether the tenant holds a record of the subject
// within the caller's attribute scope (a linearizable read of the
// subject index; nothing is opened or audited). Consent asks it before
// it records a subject's choice: consent is recorded for a subject the
// tenant knows.
func (s *Service) HasSubject(ctx context.Context, caller audit.Principal, tenant, subject string) (bool, error) {
	if !validID(subject) {
		return false, nil
	}
	found := false
	err := s.scope(caller, tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		found = r.Any(subjectPath(subject))
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("records: subject exists: %w", err)
	}
	return found, nil
}
