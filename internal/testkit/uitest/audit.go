package uitest

import (
	"context"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
)

// AppendAudit appends entries to tenant's chain in one transaction,
// through the tenancy boundary as the services' audit batcher does:
// seeding a chain with entries of chosen times and actions (days past,
// for the charts).
func (n *Node) AppendAudit(t testing.TB, tenant string, entries ...audit.Entry) {
	t.Helper()
	b := tenancy.New(n.N.Store())
	sc := b.Scope(tenant)
	batch := make([]tenancy.BatchEntry, 0, len(entries))
	for _, e := range entries {
		data, err := e.Encode()
		if err != nil {
			t.Fatalf("uitest: audit entry %+v: %v", e, err)
		}
		batch = append(batch, tenancy.BatchEntry{Scope: sc, Data: data})
	}
	failed, res, err := b.AppendBatch(context.Background(), batch)
	if err == nil && res.Err != nil {
		err = res.Err
	}
	if err != nil || failed >= 0 || !res.Applied {
		t.Fatalf("uitest: append to %s's chain: failed=%d applied=%v: %v", tenant, failed, res.Applied, err)
	}
}
