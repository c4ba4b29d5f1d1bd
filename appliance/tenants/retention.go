package tenants

import (
	"context"
	"errors"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

var _ audit.TenantRetention = (*Service)(nil)

// AuditRetention is how long the tenant's audit entries are kept: its
// audit_retention_days, or 0 when it sets none or no longer exists (its
// chain then keeps the cluster's default). It reads the local state
// (audit.TenantRetention).
func (s *Service) AuditRetention(ctx context.Context, id string) (time.Duration, error) {
	t, err := s.Get(ctx, raftstore.Stale, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	}
	return time.Duration(t.AuditRetentionDays) * 24 * time.Hour, nil
}

// RecordRetentionDays is how long, in days, the tenant keeps a subject's
// record of a collection that sets no retention of its own: its
// retention_days (DefaultRetentionDays when unset), or 0 when it no
// longer exists. It reads the local state, as the leader's retention
// sweeper does (appliance/privacy/retention).
func (s *Service) RecordRetentionDays(ctx context.Context, id string) (int, error) {
	t, err := s.Get(ctx, raftstore.Stale, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	}
	return t.RetentionDays, nil
}
