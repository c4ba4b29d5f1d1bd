package visibility_test

import (
	"context"
	"errors"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/visibility"
)

// same reports whether s reads every classification as role does, and
// blob content iff the role does.
func same(s visibility.Sight, role roles.Role) bool {
	for _, c := range roles.Classifications() {
		if s.Of(c) != role.Visibility(c) {
			return false
		}
	}
	return s.BlobContent() == role.ReadsBlobContent()
}

func allClear(s visibility.Sight) bool {
	for _, c := range roles.Classifications() {
		if s.Of(c) != roles.Clear {
			return false
		}
	}
	return s.BlobContent()
}

func nothing(s visibility.Sight) bool {
	for _, c := range roles.Classifications() {
		if s.Of(c) != roles.None {
			return false
		}
	}
	return !s.BlobContent()
}

type grants struct {
	ok  bool
	err error
}

func (g grants) Granted(context.Context, string, audit.Principal) (bool, error) { return g.ok, g.err }

type customs map[string]roles.Role

func (c customs) CustomRole(_ context.Context, tenant, name string) (roles.Role, bool, error) {
	if tenant != "acme" {
		return roles.Role{}, false, nil
	}
	r, ok := c[name]
	return r, ok, nil
}

// Every built-in tenant role, through a key or a user bound to it, reads
// as the table says.
func TestBuiltinRoles(t *testing.T) {
	ctx := context.Background()
	r := visibility.New()
	for _, role := range roles.Builtins() {
		for _, kind := range []string{audit.ActorAPIKey, audit.ActorUser} {
			s, err := r.Sight(ctx, audit.Principal{Kind: kind, ID: "x", Tenant: "acme", Role: role.Name()}, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if role.ClusterWide() {
				if !nothing(s) {
					t.Errorf("a %s bound to the Operator role reads %+v", kind, s)
				}
				continue
			}
			if !same(s, role) {
				t.Errorf("%s %s reads %+v", kind, role.Name(), s)
			}
		}
	}
}

// Old keys read with roles.FromAPIKey's role: everything in clear, as
// they always did; blob bytes with read.
func TestOldKeys(t *testing.T) {
	ctx := context.Background()
	for _, perms := range [][]string{{"read"}, {"admin"}, {"read", "write"}, {"write"}} {
		role, err := roles.FromAPIKey(perms)
		if err != nil {
			t.Fatal(err)
		}
		s, err := visibility.New().Sight(ctx, audit.Principal{Kind: audit.ActorAPIKey, ID: "k", Tenant: "acme", Permissions: perms}, "acme")
		if err != nil || !same(s, role) {
			t.Errorf("old key %v reads %+v, %v", perms, s, err)
		}
		for _, c := range roles.Classifications() {
			if s.Of(c) != roles.Clear {
				t.Errorf("old key %v reads %s as %s", perms, c, s.Of(c))
			}
		}
	}
	s, _ := visibility.New().Sight(ctx, audit.Principal{Kind: audit.ActorAPIKey, ID: "k", Tenant: "acme", Permissions: []string{"root"}}, "acme")
	if !nothing(s) {
		t.Errorf("a key with an unknown permission reads %+v", s)
	}
}

func TestOperatorsAndSystem(t *testing.T) {
	ctx := context.Background()
	op := audit.Principal{Kind: audit.ActorOperator, ID: "operator"}
	if s, err := visibility.New(visibility.WithGrants(grants{})).Sight(ctx, op, "acme"); err != nil || !nothing(s) {
		t.Errorf("an operator without break-glass reads %+v, %v", s, err)
	}
	if s, err := visibility.New(visibility.WithGrants(grants{ok: true})).Sight(ctx, op, "acme"); err != nil || !allClear(s) {
		t.Errorf("an operator under break-glass reads %+v, %v", s, err)
	}
	boom := errors.New("store down")
	if _, err := visibility.New(visibility.WithGrants(grants{err: boom})).Sight(ctx, op, "acme"); !errors.Is(err, boom) {
		t.Errorf("a failed grant lookup: %v", err)
	}
	// Without a grants source, no grant: fail closed.
	if s, _ := visibility.New().Sight(ctx, op, "acme"); !nothing(s) {
		t.Errorf("an operator without a grants source reads %+v", s)
	}
	opUser := audit.Principal{Kind: audit.ActorOperator, ID: "op_x"}
	if s, _ := visibility.New(visibility.WithGrants(grants{})).Sight(ctx, opUser, "acme"); !nothing(s) {
		t.Errorf("an operator user without break-glass reads %+v", s)
	}
	if s, _ := visibility.New(visibility.WithGrants(grants{})).Sight(ctx, audit.System(), "acme"); !allClear(s) {
		t.Errorf("the system reads %+v", s)
	}
	if s, _ := visibility.New().Sight(ctx, audit.Principal{Kind: "robot", ID: "r"}, "acme"); !nothing(s) {
		t.Errorf("an unknown kind reads %+v", s)
	}
}

func TestCustomRoles(t *testing.T) {
	ctx := context.Background()
	night, err := roles.ParseCustom([]byte(`{"name":"night-desk","permissions":["records:read","blobs:read"],"visibility":{"pii":"clear","sensitive":"none","internal":"masked"}}`))
	if err != nil {
		t.Fatal(err)
	}
	user := audit.Principal{Kind: audit.ActorUser, ID: "u1", Tenant: "acme", Role: "night-desk"}
	if s, _ := visibility.New().Sight(ctx, user, "acme"); !nothing(s) {
		t.Errorf("a custom role without a lookup reads %+v", s)
	}
	r := visibility.New(visibility.WithCustomRoles(customs{"night-desk": night}))
	if s, err := r.Sight(ctx, user, "acme"); err != nil || !same(s, night) || !s.BlobContent() {
		t.Errorf("night-desk reads %+v, %v", s, err)
	}
	user.Role = "gone"
	if s, _ := r.Sight(ctx, user, "acme"); !nothing(s) {
		t.Errorf("a deleted custom role reads %+v", s)
	}
}

// A tenant's principal reads nothing of another tenant.
func TestOtherTenant(t *testing.T) {
	s, _ := visibility.New().Sight(context.Background(), audit.Principal{Kind: audit.ActorAPIKey, ID: "k", Tenant: "acme", Role: "owner"}, "globex")
	if !nothing(s) {
		t.Errorf("acme's owner key reads globex as %+v", s)
	}
}

// Masked masks pii and sensitive read in clear, and nothing else.
func TestMasked(t *testing.T) {
	for _, role := range roles.Builtins() {
		s := visibility.FromRole(role).Masked()
		for _, c := range roles.Classifications() {
			want := role.Visibility(c)
			if want == roles.Clear && c != roles.Internal {
				want = roles.Masked
			}
			if s.Of(c) != want {
				t.Errorf("%s masked reads %s as %s, want %s", role.Name(), c, s.Of(c), want)
			}
		}
	}
	if s := visibility.Clear(); s.Of("secret") != roles.None {
		t.Errorf("an unknown classification reads %s", s.Of("secret"))
	}
}

func TestString(t *testing.T) {
	marketing, _ := roles.Builtin("marketing")
	if got := visibility.FromRole(marketing).String(); got != "pii=masked,sensitive=none,internal=clear" {
		t.Errorf("marketing's sight reads %q", got)
	}
	if got := (visibility.Sight{}).String(); got != "pii=none,sensitive=none,internal=none" {
		t.Errorf("the zero sight reads %q", got)
	}
}
