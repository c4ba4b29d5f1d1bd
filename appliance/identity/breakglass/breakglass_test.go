package breakglass_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/breakglass"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
)

// setup is a tenant acme and a service on a clock the test moves.
func setup(t *testing.T) (*breakglass.Service, func(time.Duration)) {
	t.Helper()
	store := storetest.Start(t)
	if _, err := tenants.New(tenancy.New(store), storetest.Region).Create(context.Background(), audit.System(), tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	return breakglass.New(tenancy.New(store), now), func(d time.Duration) { skew.Add(int64(d)) }
}

var (
	op    = audit.Principal{Kind: audit.ActorOperator, ID: "operator"}
	other = audit.Principal{Kind: audit.ActorOperator, ID: "op_other"}
	owner = audit.Principal{Kind: audit.ActorAPIKey, ID: "k1", Tenant: "acme", Role: "owner"}
)

// A grant serves only the operator that asked, from approval to its end;
// a request lapses unapproved; an ended grant is neither approved nor
// revoked; the expiry is recorded once.
func TestGrantLifecycle(t *testing.T) {
	ctx := context.Background()
	s, advance := setup(t)
	if _, err := s.Request(ctx, owner, "acme", breakglass.RequestInput{Reason: "x"}); err == nil {
		t.Fatal("a tenant's principal requested break-glass")
	}
	for _, reason := range []string{"", "   ", "a\nb"} {
		if _, err := s.Request(ctx, op, "acme", breakglass.RequestInput{Reason: reason}); err == nil {
			t.Errorf("reason %q accepted", reason)
		}
	}
	if _, err := s.Request(ctx, op, "acme", breakglass.RequestInput{Reason: "x", Duration: 5 * time.Hour}); err == nil {
		t.Error("a grant beyond the default policy's 4 h accepted")
	}
	if _, err := s.Request(ctx, op, "nobody", breakglass.RequestInput{Reason: "x"}); !errors.Is(err, breakglass.ErrNoTenant) {
		t.Errorf("a request on a missing tenant: %v", err)
	}
	g, err := s.Request(ctx, op, "acme", breakglass.RequestInput{Reason: "ticket 1"})
	if err != nil || g.State != breakglass.Pending || g.DurationSeconds != 3600 {
		t.Fatalf("request: %+v %v", g, err)
	}
	if ok, _ := s.Granted(ctx, "acme", op); ok {
		t.Fatal("a pending grant serves")
	}
	advance(time.Hour) // the duration runs from the approval
	g, err = s.Approve(ctx, owner, "acme", g.ID)
	if err != nil || g.State != breakglass.Active {
		t.Fatalf("approve: %+v %v", g, err)
	}
	if ok, _ := s.Granted(ctx, "acme", op); !ok {
		t.Fatal("an active grant does not serve")
	}
	if ok, _ := s.Granted(ctx, "acme", other); ok {
		t.Fatal("another operator reads under the grant")
	}
	if _, ok, err := s.Use(ctx, op, "acme", "records:read"); !ok || err != nil {
		t.Fatalf("use: %v %v", ok, err)
	}
	advance(time.Hour)
	if ok, _ := s.Granted(ctx, "acme", op); ok {
		t.Fatal("an expired grant serves")
	}
	if _, err := s.Revoke(ctx, owner, "acme", g.ID); !errors.Is(err, breakglass.ErrState) {
		t.Errorf("revoking an expired grant: %v", err)
	}
	for range 2 {
		gs, err := s.List(ctx, "acme")
		if err != nil || len(gs) != 1 || gs[0].State != breakglass.Expired || gs[0].EndedBy != "expiry" {
			t.Fatalf("list: %+v %v", gs, err)
		}
	}
	lapsed, _ := s.Request(ctx, op, "acme", breakglass.RequestInput{Reason: "ticket 2"})
	advance(breakglass.PendingTTL)
	if _, err := s.Approve(ctx, owner, "acme", lapsed.ID); !errors.Is(err, breakglass.ErrState) {
		t.Errorf("approving a lapsed request: %v", err)
	}
	if _, err := s.Approve(ctx, owner, "acme", "aaaaaaaaaaaaaaaa"); !errors.Is(err, breakglass.ErrNotFound) {
		t.Errorf("approving a missing grant: %v", err)
	}
}

// A policy bounds durations and may approve at once.
func TestPolicy(t *testing.T) {
	ctx := context.Background()
	s, _ := setup(t)
	if p, err := s.Policy(ctx, "acme"); err != nil || p != breakglass.DefaultPolicy() {
		t.Fatalf("default policy: %+v %v", p, err)
	}
	for _, bad := range []int64{0, 59, 86401} {
		if _, err := s.SetPolicy(ctx, owner, "acme", breakglass.Policy{MaxDurationSeconds: bad}); err == nil {
			t.Errorf("max %d accepted", bad)
		}
	}
	if _, err := s.SetPolicy(ctx, owner, "acme", breakglass.Policy{AutoApprove: true, MaxDurationSeconds: 600}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Request(ctx, op, "acme", breakglass.RequestInput{Reason: "x", Duration: time.Hour}); err == nil {
		t.Error("a request beyond the policy accepted")
	}
	g, err := s.Request(ctx, op, "acme", breakglass.RequestInput{Reason: "x", Duration: 10 * time.Minute})
	if err != nil || g.State != breakglass.Active || g.ApprovedBy != "policy" {
		t.Fatalf("auto-approved request: %+v %v", g, err)
	}
	if g, err = s.Revoke(ctx, owner, "acme", g.ID); err != nil || g.State != breakglass.Revoked {
		t.Fatalf("revoke: %+v %v", g, err)
	}
	if ok, _ := s.Granted(ctx, "acme", op); ok {
		t.Fatal("a revoked grant serves")
	}
}
