package audit

import (
	"context"
	"time"

	"github.com/custos/custos/internal/tenancy"
)

// TenantRetention reads a tenant's own audit retention;
// *tenants.Service implements it.
type TenantRetention interface {
	// AuditRetention is how long the tenant's entries are kept: 0 when the
	// tenant sets no retention of its own or no longer exists.
	AuditRetention(ctx context.Context, tenant string) (time.Duration, error)
}

// Retention is the audit retention policy: a chain's entries are kept for
// Default (audit.retention), unless the chain is a tenant's and the tenant
// sets its own (audit_retention_days). A deleted tenant's chain is kept for
// Default, as long as any.
type Retention struct {
	Default time.Duration
	// Tenants reads tenants' own retention (nil: every chain keeps
	// Default).
	Tenants TenantRetention
}

// For is how long chain's entries are kept (0: for ever). Its method value
// is a [RunConfig.Retention].
func (p Retention) For(ctx context.Context, chain string) (time.Duration, error) {
	tenant, ok := tenancy.TenantOfChain(chain)
	if !ok || p.Tenants == nil {
		return p.Default, nil
	}
	keep, err := p.Tenants.AuditRetention(ctx, tenant)
	if err != nil {
		return 0, err
	}
	if keep > 0 {
		return keep, nil
	}
	return p.Default, nil
}
