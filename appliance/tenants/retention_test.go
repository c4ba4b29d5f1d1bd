package tenants_test

import (
	"testing"
	"time"

	"github.com/custos/custos/appliance/tenants"
)

// A tenant's audit retention: its own, or 0 (the cluster's default) when
// it sets none or does not exist.
func TestAuditRetention(t *testing.T) {
	svc, store := newService(t)
	mustCreate(t, svc, "acme", "Acme")
	mustCreate(t, svc, "other", "Other")
	days := 3650
	if _, err := svc.Update(ctx(t), operator, "acme", tenants.Patch{AuditRetentionDays: &days}); err != nil {
		t.Fatal(err)
	}
	// AuditRetention reads the local state: make it current.
	if err := store.Barrier(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]time.Duration{"acme": 3650 * 24 * time.Hour, "other": 0, "gone": 0} {
		got, err := svc.AuditRetention(ctx(t), id)
		if err != nil || got != want {
			t.Errorf("AuditRetention(%q) = %v, %v; want %v", id, got, err, want)
		}
	}
}
