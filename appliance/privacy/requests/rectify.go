package requests

import (
	"context"
	"fmt"

	"github.com/custos/custos/appliance/audit"
)

// Rectify applies the patch a rectification request carries — through the
// records service, as caller, on a record that must be the subject's —
// and completes the request. The request must be verified (or under way):
// Begin takes it up, the record's patch is its own audited transaction,
// and Finish completes the request in another, its result naming the
// record and its new version. When the patch fails the request stays in
// progress, to be retried or rejected.
//
// Records keep no earlier versions: a patch replaces the values, so the
// old version is kept for as long as the tenant's history rule for
// rectifications says, and that rule is "none" (see the package doc).
func (s *Service) Rectify(ctx context.Context, caller audit.Principal, tenant, id string) (Request, error) {
	if s.rectifier == nil {
		return Request{}, ErrNoRectifier
	}
	r, err := s.Begin(ctx, caller, tenant, id, Rectification)
	if err != nil {
		return Request{}, err
	}
	p := r.Rectification
	if p == nil {
		return Request{}, fmt.Errorf("requests: rectification %s carries no patch", id)
	}
	version, err := s.rectifier.Rectify(ctx, caller, tenant, r.Subject, p.Collection, p.Record, p.Fields)
	if err != nil {
		return Request{}, fmt.Errorf("requests: rectify %s: %w", id, err)
	}
	return s.Finish(ctx, caller, tenant, id, Result{
		Counts: map[string]uint64{"records": 1},
		Note:   fmt.Sprintf("record %s/%s patched to version %d", p.Collection, p.Record, version),
	})
}
