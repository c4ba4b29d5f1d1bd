package sso_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/identity/sso"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/oidcop"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// The client secret is stored sealed (its bytes appear nowhere in the
// store), never shown, kept by an update that gives none, and the
// settings go away with Delete; Test opens it and reads the provider's
// endpoints.
func TestSettingsStorage(t *testing.T) {
	e := newEnv(t, sso.Options{})
	ctx := context.Background()
	if _, err := e.svc.Get(ctx, tenant); !errors.Is(err, sso.ErrNotConfigured) {
		t.Fatalf("before: %v", err)
	}
	e.configure(e.settings())
	var found bool
	err := e.b.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		r.Scan(raftstore.Path("sso"), nil, 0, func(_, v []byte, _ uint64) bool {
			found = found || bytes.Contains(v, []byte(secret))
			return true
		})
		return nil
	})
	if err != nil || found {
		t.Fatalf("the secret is in the store in clear (%v)", err)
	}
	s := e.settings()
	s.ClientSecret = ""
	s.DefaultRole = "read-only"
	cfg := e.configure(s)
	if !cfg.SecretSet || cfg.DefaultRole != "read-only" {
		t.Fatalf("update without a secret: %+v", cfg)
	}
	got, err := e.svc.Get(ctx, tenant)
	if err != nil || got.ClientSecret != "" || !got.SecretSet || got.Issuer != e.op.Issuer {
		t.Fatalf("get: %+v %v", got, err)
	}
	res, err := e.svc.Test(ctx, owner, tenant)
	if err != nil || !res.OK || res.ClientSecret != "opens" || res.Issuer != e.op.Issuer || res.TokenEndpoint == "" || res.JWKSURI == "" {
		t.Fatalf("test: %+v %v", res, err)
	}
	// The kept secret still works: a whole sign-in.
	if _, err := e.callback(e.signIn("alice")); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, owner, tenant); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, owner, tenant); err != nil {
		t.Fatalf("second delete (nothing to remove): %v", err)
	}
	if _, err := e.svc.Start(ctx, tenant, ""); !errors.Is(err, sso.ErrNotConfigured) {
		t.Fatalf("start after delete: %v", err)
	}
	if _, err := e.svc.Start(ctx, "nobody", ""); !errors.Is(err, sso.ErrNotConfigured) {
		t.Fatalf("start of an unknown tenant: %v", err)
	}
	var actions []string
	for _, en := range e.entries() {
		if strings.HasPrefix(en.Action, "sso.") {
			actions = append(actions, en.Action+"/"+en.Details["client_secret"])
		}
	}
	if strings.Join(actions, " ") != "sso.configure/set sso.configure/kept sso.test/ sso.delete/" {
		t.Fatalf("entries %v", actions)
	}
}

// Settings are checked as a whole before anything is stored, and the
// presets fill what they know.
func TestSettingsValidation(t *testing.T) {
	e := newEnv(t, sso.Options{})
	ctx := context.Background()
	base := e.settings
	for _, c := range []struct {
		field string
		edit  func(*sso.Settings)
	}{
		{"issuer", func(s *sso.Settings) { s.Issuer = "http://idp.example.com" }},
		{"issuer", func(s *sso.Settings) { s.Issuer = "https://idp.example.com/?x=1" }},
		{"client_id", func(s *sso.Settings) { s.ClientID = "" }},
		{"redirect_url", func(s *sso.Settings) { s.RedirectURL = "ftp://x" }},
		{"mappings[0].role", func(s *sso.Settings) { s.Mappings[0].Role = "operator" }},
		{"mappings[0].claim", func(s *sso.Settings) { s.Mappings[0].Claim = "a b" }},
		{"mappings[1].scopes.Property", func(s *sso.Settings) { s.Mappings[1].Scopes = map[string][]string{"Property": {"x"}} }},
		{"mappings", func(s *sso.Settings) { s.Mappings = nil }},
		{"default_role", func(s *sso.Settings) { s.DefaultRole = "nobody" }},
		{"preset", func(s *sso.Settings) { s.Preset = "okta" }},
		{"issuer", func(s *sso.Settings) { s.Preset = sso.PresetGoogle }},
		{"entra_tenant", func(s *sso.Settings) { s.Preset, s.Issuer, s.EntraTenant = sso.PresetEntra, "", "../x" }},
		{"allowed_tenants", func(s *sso.Settings) {
			s.Issuer, s.DiscoveryURL = "https://login.example/{tenantid}/v2.0", "https://login.example/common/v2.0"
		}},
		{"issuer", func(s *sso.Settings) { s.Issuer = "https://{tenantid}.example/v2.0" }},
		{"allowed_tenants", func(s *sso.Settings) { s.AllowedTenants = []string{"t1"} }},
		{"scopes", func(s *sso.Settings) { s.Scopes = []string{"a b"} }},
	} {
		s := base()
		c.edit(&s)
		_, err := e.svc.Configure(ctx, owner, tenant, s)
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Fatalf("%s: %v", c.field, err)
		}
	}
	if _, err := e.svc.Get(ctx, tenant); !errors.Is(err, sso.ErrNotConfigured) {
		t.Fatalf("a refused configuration stored something: %v", err)
	}
	for _, c := range []struct {
		edit              func(*sso.Settings)
		issuer, discovery string
	}{
		{func(s *sso.Settings) { s.Preset, s.Issuer = sso.PresetGoogle, "" }, sso.GoogleIssuer, ""},
		{func(s *sso.Settings) {
			s.Preset, s.Issuer, s.EntraTenant = sso.PresetEntra, "", "9188040d-6c67-4c5b-b112-36a304b66dad"
		},
			"https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", ""},
		{func(s *sso.Settings) {
			s.Preset, s.Issuer, s.EntraTenant, s.AllowedTenants = sso.PresetEntra, "", "organizations", []string{"9188040d-6c67-4c5b-b112-36a304b66dad"}
		}, sso.EntraTemplate, "https://login.microsoftonline.com/organizations/v2.0"},
	} {
		s := base()
		c.edit(&s)
		cfg, err := e.svc.Configure(ctx, owner, tenant, s)
		if err != nil || cfg.Issuer != c.issuer || cfg.DiscoveryURL != c.discovery {
			t.Fatalf("preset %s: %+v %v", s.Preset, cfg, err)
		}
	}
}

// A provider that cannot be reached is a test's result, not an error,
// and the test is recorded as failed.
func TestTestUnreachable(t *testing.T) {
	e := newEnv(t, sso.Options{})
	s := e.settings()
	s.Issuer = "http://127.0.0.1:1/nobody"
	e.configure(s)
	res, err := e.svc.Test(context.Background(), owner, tenant)
	if err != nil || res.OK || res.Error == "" || res.TokenEndpoint != "" {
		t.Fatalf("unreachable provider: %+v %v", res, err)
	}
	ents := e.entries()
	if last := ents[len(ents)-1]; last.Action != "sso.test" || last.Outcome != "failure" {
		t.Fatalf("last entry %+v", last)
	}
}

// Entra's multi-tenant issuer, against a provider whose issuer has the
// shape of Entra's ("<root>/<tid>/v2.0") and whose tokens carry tid: the
// token's issuer must be the template for its own tid, and the tid one
// the settings allow.
func TestTemplatedIssuer(t *testing.T) {
	e := newEnv(t, sso.Options{})
	ctx := context.Background()
	users := []oidcop.User{
		{ID: "erin", Username: "erin", Password: userPassword, Groups: []string{"custos-owners"}, Claims: map[string]any{"tid": "t1"}},
		{ID: "mallory", Username: "mallory", Password: userPassword, Groups: []string{"custos-owners"}, Claims: map[string]any{"tid": "t2"}},
		{ID: "nobody", Username: "nobody", Password: userPassword, Groups: []string{"custos-owners"}},
	}
	op := oidcop.Start(t, oidcop.Options{Users: users, Clients: clients, IssuerPath: "/t1/v2.0"})
	e.op = op
	s := e.settings()
	s.Issuer, s.DiscoveryURL, s.AllowedTenants = op.URL+"/{tenantid}/v2.0", op.Issuer, []string{"t1", "t2"}
	e.configure(s)
	if _, err := e.callback(e.signIn("erin")); err != nil {
		t.Fatalf("erin of t1: %v", err)
	}
	if got := e.accts.last(); got.Issuer != op.Issuer || got.Role != "owner" {
		t.Fatalf("identity %+v", got)
	}
	// tid t2 (allowed) on t1's issuer: the issuer is not t2's.
	if _, err := e.callback(e.signIn("mallory")); reason(err) != sso.ReasonIDToken {
		t.Fatalf("a token whose tid is not its issuer's: %v", err)
	}
	if _, err := e.callback(e.signIn("nobody")); reason(err) != sso.ReasonTenantID {
		t.Fatalf("a token without tid: %v", err)
	}
	// t1 no longer allowed: the provider's own discovery is refused.
	s.AllowedTenants = []string{"t2"}
	e2 := newEnv(t, sso.Options{})
	e2.configure(s)
	if _, err := e2.svc.Start(ctx, tenant, ""); !errors.Is(err, sso.ErrProvider) {
		t.Fatalf("a directory not allowed: %v", err)
	}
}
