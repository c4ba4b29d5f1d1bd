package accounts_test

import (
	"context"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/visibility"
)

// A user bound to a tenant's custom role reads with the role's
// visibility once the service is the resolver's custom-role source.
func TestCustomRoleVisibility(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := roles.Custom{Name: "night-desk", Permissions: []string{"records:read"},
		Visibility: map[roles.Classification]roles.Visibility{roles.PII: roles.Clear, roles.Sensitive: roles.None, roles.Internal: roles.Masked}}
	if _, err := e.svc.CreateRole(ctx, member(e), "acme", c); err != nil {
		t.Fatal(err)
	}
	r := visibility.New(visibility.WithCustomRoles(e.svc))
	user := audit.Principal{Kind: audit.ActorUser, ID: "u1", Tenant: "acme", Role: "night-desk"}
	s, err := r.Sight(ctx, user, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for cl, want := range c.Visibility {
		if s.Of(cl) != want {
			t.Errorf("night-desk reads %s as %s, want %s", cl, s.Of(cl), want)
		}
	}
	if s.BlobContent() {
		t.Error("night-desk (no blobs:read) reads blob content")
	}
	for _, name := range []string{"gone", "owner", "operator"} {
		if _, found, err := e.svc.CustomRole(ctx, "acme", name); found || err != nil {
			t.Errorf("custom role %q: found %v, %v", name, found, err)
		}
	}
}
