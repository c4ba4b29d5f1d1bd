package apikeys_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/internal/validation"
)

// A key works until it expires, and only for its tenant; deleting the
// tenant ends its keys.
func TestExpiryAndTenantDeletion(t *testing.T) {
	b := tenancy.New(storetest.Start(t))
	clock := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	svc := apikeys.New(b, func() time.Time { return clock })
	reg := tenants.New(b, storetest.Region)
	ctx := context.Background()
	op := audit.Principal{Kind: audit.ActorOperator, ID: "operator"}
	if _, err := reg.Create(ctx, op, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	exp := clock.Add(time.Hour)
	k, token, err := svc.Create(ctx, audit.System(), "acme", apikeys.CreateInput{Name: "ci", Permissions: []string{"write", "read"}, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if k.Permissions[0] != "read" || !k.Can("read") || k.Can("delete") {
		t.Fatalf("key %+v", k)
	}
	got, err := svc.Authenticate(ctx, token)
	if err != nil || got.Tenant != "acme" || got.ID != k.ID || got.TenantState != tenants.StateActive {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	// A suspended tenant's key still authenticates, and says its tenant is
	// suspended (the API refuses it on data routes); resuming shows at once.
	if _, err := reg.Suspend(ctx, op, "acme"); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.Authenticate(ctx, token); err != nil || got.TenantState != tenants.StateSuspended {
		t.Fatalf("a suspended tenant's key: %+v %v", got, err)
	}
	if _, err := reg.Resume(ctx, op, "acme"); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.Authenticate(ctx, token); err != nil || got.TenantState != tenants.StateActive {
		t.Fatalf("a resumed tenant's key: %+v %v", got, err)
	}
	clock = exp
	if _, err := svc.Authenticate(ctx, token); !errors.Is(err, apikeys.ErrInvalidToken) {
		t.Fatalf("an expired key: %v", err)
	}
	clock = exp.Add(-time.Minute)
	if _, err := svc.Authenticate(ctx, token); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	if err := reg.Delete(ctx, op, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, token); !errors.Is(err, apikeys.ErrInvalidToken) {
		t.Fatalf("a deleted tenant's key: %v", err)
	}
	if _, _, err := svc.Create(ctx, audit.System(), "acme", apikeys.CreateInput{Name: "x", Permissions: []string{"read"}}); !errors.Is(err, tenants.ErrNotFound) {
		t.Fatalf("a key for a deleted tenant: %v", err)
	}
}

// A key's name is 1 to 100 characters — characters, not bytes, as the
// API's description says (maxLength counts characters).
func TestNameLengthCountsCharacters(t *testing.T) {
	b := tenancy.New(storetest.Start(t))
	svc := apikeys.New(b, time.Now)
	ctx := context.Background()
	op := audit.Principal{Kind: audit.ActorOperator, ID: "operator"}
	if _, err := tenants.New(b, storetest.Region).Create(ctx, op, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ok   bool
	}{
		{strings.Repeat("é", 100), true}, // 200 bytes
		{strings.Repeat("a", 100), true},
		{strings.Repeat("é", 101), false},
		{strings.Repeat("a", 101), false},
		{"", false},
	}
	for _, c := range cases {
		_, _, err := svc.Create(ctx, op, "acme", apikeys.CreateInput{Name: c.name, Permissions: []string{"read"}})
		var fe *validation.FieldError
		switch {
		case c.ok && err != nil:
			t.Errorf("%d characters (%d bytes): %v", utf8.RuneCountInString(c.name), len(c.name), err)
		case !c.ok && (!errors.As(err, &fe) || fe.Field != "name"):
			t.Errorf("%d characters (%d bytes): want a FieldError naming name, got %v", utf8.RuneCountInString(c.name), len(c.name), err)
		}
	}
}
