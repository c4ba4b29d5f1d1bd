package sso_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/appliance/identity/password"
	"github.com/custos/custos/appliance/identity/signing"
	"github.com/custos/custos/appliance/identity/sso"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// withAccounts replaces the test's accounts with the accounts service.
func (e *env) withAccounts(o sso.Options) *accounts.Service {
	e.t.Helper()
	ctx := context.Background()
	ops, err := keyring.BootstrapOps([]string{e.id.Recipient().String()})
	if err != nil {
		e.t.Fatal(err)
	}
	if res, err := e.store.Apply(ctx, &raftstore.Txn{Ops: ops}); err != nil || !res.Applied {
		e.t.Fatalf("bootstrap: %+v %v", res, err)
	}
	h, err := password.NewHasher(password.Options{Params: password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		e.t.Fatal(err)
	}
	sign, err := signing.Open(ctx, e.b, signing.Options{Issuer: "custos-test", Identities: []age.Identity{e.id}, Now: e.clock.now})
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := accounts.New(e.b, accounts.Options{Keys: e.keys, Hasher: h, Now: e.clock.now, Signer: sign})
	if err != nil {
		e.t.Fatal(err)
	}
	o.HTTPClient, o.Now = &http.Client{Transport: e.net, Timeout: 10 * time.Second}, e.clock.now
	e.svc = sso.New(e.b, e.keys, a, o)
	return a
}

// A sign-in through the accounts service: the user is created at its
// first sign-in with the mapped role and scopes, linked to the
// provider's identity (a second sign-in finds the same user), and its
// access token resolves to a principal of that role and those scopes
// whose MFA the provider did; the user has no password anyone knows.
// Without just-in-time creation an unknown identity is refused.
func TestWithAccounts(t *testing.T) {
	e := newEnv(t, sso.Options{})
	a := e.withAccounts(sso.Options{})
	ctx := context.Background()
	e.configure(e.settings())

	first, err := e.callback(e.signIn("alice"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.callback(e.signIn("alice"))
	if err != nil || again.UserID != first.UserID || !accounts.ValidUserID(first.UserID) {
		t.Fatalf("sign-ins %+v %+v %v: want one user", first, again, err)
	}
	res, err := a.Resolve(ctx, again.AccessToken)
	if err != nil || res.Principal.ID != first.UserID || res.Principal.Role != "owner" || res.EnrolmentOnly || first.MFAEnrolmentRequired {
		t.Fatalf("alice resolves to %+v %v: want an owner whose MFA the provider did", res, err)
	}
	// The session keeps what the provider did across refreshes.
	g, err := a.Refresh(ctx, anon, again.RefreshToken)
	if err != nil || g.EnrolmentOnly {
		t.Fatalf("refresh of alice's session: %+v %v", g, err)
	}
	if res, err := a.Resolve(ctx, g.AccessToken); err != nil || res.EnrolmentOnly || res.Principal.Role != "owner" {
		t.Fatalf("alice's refreshed session resolves to %+v %v", res, err)
	}
	u, err := a.GetUser(ctx, res.Principal, tenant, first.UserID)
	if err != nil || u.Username != "alice@example.org" {
		t.Fatalf("user %+v %v", u, err)
	}
	if _, err := a.Login(ctx, anon, accounts.LoginInput{Tenant: tenant, Username: "alice@example.org", Password: userPassword}); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Fatalf("a password login of an SSO user: %v", err)
	}
	bob, err := e.callback(e.signIn("bob"))
	if err != nil {
		t.Fatal(err)
	}
	res, err = a.Resolve(ctx, bob.AccessToken)
	if err != nil || res.Principal.Role != "concierge" || len(res.Principal.Scopes["property"]) != 1 || res.Principal.Scopes["property"][0] != "villa-a" {
		t.Fatalf("bob resolves to %+v %v: want a concierge of villa-a", res.Principal, err)
	}
	// The provider now puts bob in no mapped group: he signs in as what
	// the settings' default says, and the change is the user's.
	s := e.settings()
	s.Mappings, s.DefaultRole = s.Mappings[:1], "read-only"
	e.configure(s)
	bob2, err := e.callback(e.signIn("bob"))
	if err != nil || bob2.UserID != bob.UserID {
		t.Fatalf("bob again: %+v %v", bob2, err)
	}
	if res, err = a.Resolve(ctx, bob.AccessToken); err != nil || res.Principal.Role != "read-only" || res.Principal.Scopes != nil {
		t.Fatalf("bob's first session now resolves to %+v %v: want read-only, unscoped", res.Principal, err)
	}
	var creates, updates, logins int
	for _, en := range e.entries() {
		if en.Details["method"] != "sso" {
			continue
		}
		switch en.Action {
		case "user.create":
			creates++
		case "user.update":
			updates++
		case "session.login":
			logins++
			if en.Actor.Type != audit.ActorUser || en.Details["subject"] == "" || en.Details["mfa"] != accounts.SessionMFAIdP {
				t.Fatalf("login entry %+v", en)
			}
		}
	}
	if creates != 2 || updates != 1 || logins != 4 {
		t.Fatalf("entries: %d creates, %d updates, %d logins; want 2, 1, 4", creates, updates, logins)
	}

	s.JIT = false
	e.configure(s)
	if _, err := e.callback(e.signIn("carol")); reason(err) != sso.ReasonUser {
		t.Fatalf("carol without JIT: %v", err)
	}
}
