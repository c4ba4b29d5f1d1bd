package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
)

// tenantDays is a TenantRetention of fixed answers (0 for a tenant not
// listed: none of its own, or deleted).
type tenantDays map[string]time.Duration

func (m tenantDays) AuditRetention(_ context.Context, tenant string) (time.Duration, error) {
	if tenant == "broken" {
		return 0, errBroken
	}
	return m[tenant], nil
}

var errBroken = errors.New("tenant registry unreadable")

func TestRetentionPolicy(t *testing.T) {
	const def = 5 * 365 * 24 * time.Hour
	p := audit.Retention{Default: def, Tenants: tenantDays{"acme": 10 * 24 * time.Hour}}
	ctx := context.Background()
	for _, tc := range []struct {
		chain string
		want  time.Duration
	}{
		{tenancy.SystemChain, def},
		{tenancy.ChainOf("acme"), 10 * 24 * time.Hour},
		{tenancy.ChainOf("plain"), def}, // no retention of its own
		{tenancy.ChainOf("gone"), def},  // deleted: kept as long as any
	} {
		if got, err := p.For(ctx, tc.chain); err != nil || got != tc.want {
			t.Errorf("For(%q) = %v, %v; want %v", tc.chain, got, err, tc.want)
		}
	}
	if _, err := p.For(ctx, tenancy.ChainOf("broken")); !errors.Is(err, errBroken) {
		t.Errorf("a failed lookup: %v, want it passed on", err)
	}
	if got, err := (audit.Retention{Default: def}).For(ctx, tenancy.ChainOf("acme")); err != nil || got != def {
		t.Errorf("without tenants: %v, %v; want %v", got, err, def)
	}
}
