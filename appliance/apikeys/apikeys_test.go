package apikeys_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
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

// A key is created with a built-in tenant role or with permissions, not
// both and not neither; its effective role is the built-in role, or for
// an old key the role its permissions map onto.
func TestRoles(t *testing.T) {
	b := tenancy.New(storetest.Start(t))
	svc := apikeys.New(b, time.Now)
	ctx := context.Background()
	op := audit.Principal{Kind: audit.ActorOperator, ID: "operator"}
	if _, err := tenants.New(b, storetest.Region).Create(ctx, op, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	if got := apikeys.Roles(); len(got) != 10 || slices.Contains(got, "operator") || got[0] != "owner" {
		t.Fatalf("Roles() = %v: want the ten tenant roles", got)
	}
	for _, name := range apikeys.Roles() {
		k, token, err := svc.Create(ctx, op, "acme", apikeys.CreateInput{Name: name, Role: str(name)})
		if err != nil || k.Role != name || k.Permissions != nil {
			t.Fatalf("create a %s key: %+v %v", name, k, err)
		}
		got, err := svc.Authenticate(ctx, token)
		if err != nil || got.Role != name {
			t.Fatalf("authenticate a %s key: %+v %v", name, got, err)
		}
		r, err := got.EffectiveRole()
		want, _ := roles.Builtin(name)
		if err != nil || r.Name() != name || r.Permissions() != want.Permissions() {
			t.Errorf("a %s key's effective role: %v %v", name, r.Name(), err)
		}
	}
	old, token, err := svc.Create(ctx, op, "acme", apikeys.CreateInput{Name: "old", Permissions: []string{"read", "write"}})
	if err != nil || old.Role != "" {
		t.Fatalf("an old key: %+v %v", old, err)
	}
	got, _ := svc.Authenticate(ctx, token)
	r, err := got.EffectiveRole()
	want, _ := roles.FromAPIKey([]string{"read", "write"})
	if err != nil || r.Permissions() != want.Permissions() {
		t.Errorf("an old key's effective role: %v %v", r.Permissions().List(), err)
	}
	for _, c := range []struct {
		name  string
		in    apikeys.CreateInput
		field string
	}{
		{"unknown role", apikeys.CreateInput{Name: "x", Role: str("superuser")}, "role"},
		{"the operator's role", apikeys.CreateInput{Name: "x", Role: str("operator")}, "role"},
		{"empty role", apikeys.CreateInput{Name: "x", Role: str("")}, "role"},
		{"both", apikeys.CreateInput{Name: "x", Role: str("qa"), Permissions: []string{"read"}}, "role"},
		{"both, no permission", apikeys.CreateInput{Name: "x", Role: str("qa"), Permissions: []string{}}, "role"},
		{"neither", apikeys.CreateInput{Name: "x"}, "permissions"},
	} {
		_, _, err := svc.Create(ctx, op, "acme", c.in)
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: want a FieldError naming %s, got %v", c.name, c.field, err)
		}
	}
	// A stored key that names no tenant role authorizes nothing.
	for _, k := range []apikeys.Key{{ID: "x", Role: "operator"}, {ID: "x", Role: "superuser"}} {
		if _, err := k.EffectiveRole(); !errors.Is(err, apikeys.ErrUnknownRole) {
			t.Errorf("a key of role %q: %v", k.Role, err)
		}
	}
	if _, err := (&apikeys.Key{ID: "x", Permissions: []string{"root"}}).EffectiveRole(); !errors.Is(err, roles.ErrUnknownAPIKeyPermission) {
		t.Errorf("a key of permission root: %v", err)
	}
}

// A key bound to a role may carry attribute scopes: stored (values
// sorted), listed, given back by Authenticate for the principal; refused
// on an old key and when malformed.
func TestScopes(t *testing.T) {
	b := tenancy.New(storetest.Start(t))
	svc := apikeys.New(b, time.Now)
	ctx := context.Background()
	op := audit.Principal{Kind: audit.ActorOperator, ID: "operator"}
	if _, err := tenants.New(b, storetest.Region).Create(ctx, op, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	role := "concierge"
	given := map[string][]string{"property": {"villa-c", "villa-a"}}
	k, token, err := svc.Create(ctx, op, "acme", apikeys.CreateInput{Name: "villa a", Role: &role, Scopes: given})
	want := map[string][]string{"property": {"villa-a", "villa-c"}}
	if err != nil || !reflect.DeepEqual(k.Scopes, want) || given["property"][0] != "villa-c" {
		t.Fatalf("create: %+v %v (given %v)", k, err, given)
	}
	got, err := svc.Authenticate(ctx, token)
	if err != nil || !reflect.DeepEqual(got.Scopes, want) {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	if l, err := svc.List(ctx, "acme"); err != nil || len(l) != 1 || !reflect.DeepEqual(l[0].Scopes, want) {
		t.Fatalf("list: %+v %v", l, err)
	}
	if k, _, err := svc.Create(ctx, op, "acme", apikeys.CreateInput{Name: "open", Role: &role, Scopes: map[string][]string{}}); err != nil || k.Scopes != nil {
		t.Fatalf("empty scopes: %+v %v", k, err)
	}
	for _, c := range []struct {
		name   string
		scopes map[string][]string
		perms  []string
		field  string
	}{
		{"old key", map[string][]string{"property": {"villa-a"}}, []string{"read"}, "scopes"},
		{"no values", map[string][]string{"property": {}}, nil, "scopes.property"},
		{"empty value", map[string][]string{"property": {""}}, nil, "scopes.property"},
		{"bad name", map[string][]string{"Property": {"a"}}, nil, "scopes.Property"},
	} {
		in := apikeys.CreateInput{Name: "x", Scopes: c.scopes, Permissions: c.perms}
		if c.perms == nil {
			in.Role = &role
		}
		_, _, err := svc.Create(ctx, op, "acme", in)
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want a refusal of %s", c.name, err, c.field)
		}
	}
}

func TestAdmitsClientCert(t *testing.T) {
	bound, free := apikeys.Key{ClientCertCN: "billing-app"}, apikeys.Key{}
	for _, tt := range []struct {
		name     string
		key      apikeys.Key
		verified bool
		cn       string
		ok       bool
	}{
		{"unbound, no certificate", free, false, "", true},
		{"unbound, a certificate", free, true, "x", true},
		{"bound, its certificate", bound, true, "billing-app", true},
		{"bound, no certificate", bound, false, "", false},
		{"bound, another name", bound, true, "reports-app", false},
		{"bound, its name unverified", bound, false, "billing-app", false},
	} {
		err := tt.key.AdmitsClientCert(tt.verified, tt.cn)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, apikeys.ErrClientCertRequired)) {
			t.Errorf("%s: %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
