package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/identity/sso"
	"github.com/custos/custos/internal/testkit/oidcop"
)

const (
	ssoSecret   = "sso-client-secret-canary"
	ssoPassword = "verysecure"
)

// ssoFixture is a real OpenID provider on loopback (internal/testkit/oidcop)
// and the env's API, whose SSO ends in the env's accounts sessions, on a
// loopback listener too, so that a browser can be sent back to it.
type ssoFixture struct {
	op   *oidcop.Provider
	base string // the API's root URL
}

// withSSO makes the env's app a live one.
func (e *env) withSSO(t *testing.T) *ssoFixture {
	t.Helper()
	return &ssoFixture{op: startSSOProvider(t), base: e.live(t, api.Options{})}
}

// startSSOProvider runs the tests' provider: alice is in group
// custos-owners, bob in villa-a-concierge; Custos is client custos.
func startSSOProvider(t *testing.T) *oidcop.Provider {
	return oidcop.Start(t, oidcop.Options{
		Users: []oidcop.User{
			{ID: "alice", Username: "alice", Password: ssoPassword, Email: "alice@example.org", EmailVerified: true, Groups: []string{"custos-owners"}},
			{ID: "bob", Username: "bob", Password: ssoPassword, Email: "bob@example.org", EmailVerified: true, Groups: []string{"villa-a-concierge"}},
		},
		Clients: []oidcop.Client{{ID: "custos", Secret: ssoSecret}},
	})
}

func (f *ssoFixture) settings() string { return ssoSettings(f.op, f.base) }

// ssoSettings are a tenant's settings for op, the API at base: groups map
// onto Owner and onto a Concierge of villa-a; the provider's password
// sign-in counts as its MFA (it has no other).
func ssoSettings(op *oidcop.Provider, base string) string {
	b, _ := json.Marshal(map[string]any{
		"issuer": op.Issuer, "client_id": "custos", "client_secret": ssoSecret, "redirect_url": base + "/v1/auth/oidc/callback",
		"scopes": []string{"email", "profile", oidcop.GroupsScope},
		"mappings": []map[string]any{
			{"claim": "groups", "value": "custos-owners", "role": "owner"},
			{"claim": "groups", "value": "villa-a-concierge", "role": "concierge", "scopes": map[string][]string{"property": {"villa-a"}}},
		},
		"jit": true, "mfa": map[string]any{"trust_idp": true, "amr": []string{"pwd"}},
	})
	return string(b)
}

func (f *ssoFixture) configure(t *testing.T, e *env, tenant string) {
	t.Helper()
	if r := e.do("PUT", "/v1/tenants/"+tenant+"/sso", f.settings()); r.status != http.StatusOK {
		t.Fatalf("configure sso of %s: %d %s", tenant, r.status, r.body)
	}
}

// cliSignIn is `custos login --method oidc` without the CLI: a start
// naming a loopback listener, the person at the provider, and the
// redirect relayed with the binding. It returns the callback's body.
func (f *ssoFixture) cliSignIn(t *testing.T, e *env, tenant, user string) string {
	t.Helper()
	const listener = "http://127.0.0.1:49152/oidc/callback"
	r := e.do("GET", "/v1/auth/oidc/start"+query("tenant", tenant, "redirect_uri", listener), "", withoutHeader("Authorization"))
	if r.status != http.StatusOK {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	var st sso.Start
	r.json(t, &st)
	resp, err := f.op.SignIn(oidcop.Browser(func(u *url.URL) bool { return strings.HasPrefix(u.String(), listener) }), st.AuthURL, user, ssoPassword)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("the provider ended at %s: %v", resp.Status, err)
	}
	return js(map[string]string{"state": loc.Query().Get("state"), "code": loc.Query().Get("code"), "binding": st.Binding})
}

// Acceptance 5 through the API: the operator sets a tenant's single
// sign-on (the secret never shown) and tests it; a browser signs in
// through start (redirected, its binding in a cookie) and the provider's
// login and comes back to the callback with a session; the CLI's flow
// relays the redirect with its binding; each session's access token
// resolves to the role and scopes the person's group maps onto; a
// redeemed state, a callback from a browser without the binding, an
// unknown tenant and a foreign redirect are refused.
func TestSSOThroughAPI(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	f := e.withSSO(t)

	if r := e.do("GET", "/v1/tenants/acme/sso", ""); r.status != http.StatusNotFound {
		t.Fatalf("before: %d %s", r.status, r.body)
	}
	f.configure(t, e, "acme")
	r := e.do("GET", "/v1/tenants/acme/sso", "")
	var cfg sso.Config
	r.json(t, &cfg)
	if r.status != http.StatusOK || !cfg.SecretSet || strings.Contains(string(r.body), ssoSecret) || cfg.Issuer != f.op.Issuer {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/tenants/acme/sso/test", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), `"ok":true`) || !strings.Contains(string(r.body), `"client_secret":"opens"`) {
		t.Fatalf("test: %d %s", r.status, r.body)
	}

	// A browser: start redirects to the provider, the provider back to
	// the callback, which answers the session.
	browser := oidcop.Browser(nil)
	resp, err := f.op.SignIn(browser, f.base+"/v1/auth/oidc/start?tenant=acme&redirect=true", "alice", ssoPassword)
	if err != nil {
		t.Fatal(err)
	}
	var alice sso.Session
	if err := json.NewDecoder(resp.Body).Decode(&alice); err != nil || resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/v1/auth/oidc/callback" {
		t.Fatalf("browser sign-in ended at %s %s: %v", resp.Status, resp.Request.URL.Redacted(), err)
	}
	resp.Body.Close()
	who := func(g sso.Session) (s struct {
		Kind, ID, Tenant, Role, Session string
		Scopes                          map[string][]string
		MFA                             bool `json:"mfa_enrolment_required"`
	}) {
		t.Helper()
		r := e.do("GET", "/v1/auth/session", "", withHeader("Authorization", "Bearer "+g.AccessToken))
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/auth/session with a session of single sign-on: %d %s", r.status, r.body)
		}
		r.json(t, &s)
		return s
	}
	if s := who(alice); s.Tenant != "acme" || s.Role != "owner" || s.Session != alice.Session || s.MFA || alice.MFAEnrolmentRequired {
		t.Fatalf("alice's session is %+v", s)
	}

	// The CLI's flow.
	relay := f.cliSignIn(t, e, "acme", "bob")
	r = e.do("POST", "/v1/auth/oidc/callback", relay, withoutHeader("Authorization"))
	var bob sso.Session
	r.json(t, &bob)
	if r.status != http.StatusOK || bob.TokenType != "Bearer" || bob.RefreshToken == "" || bob.Session == "" {
		t.Fatalf("relayed callback: %d %s", r.status, r.body)
	}
	if s := who(bob); s.Role != "concierge" || strings.Join(s.Scopes["property"], ",") != "villa-a" {
		t.Fatalf("bob's session is %+v", s)
	}
	// Redeemed once.
	checkProblem(t, e.do("POST", "/v1/auth/oidc/callback", relay, withoutHeader("Authorization")), http.StatusUnauthorized, "sso-refused", "/v1/auth/oidc/callback")

	// The provider's redirect replayed by another browser (no binding
	// cookie): refused.
	toCallback := oidcop.Browser(func(u *url.URL) bool { return strings.HasPrefix(u.String(), f.base+"/v1/auth/oidc/callback") })
	resp, err = f.op.SignIn(toCallback, f.base+"/v1/auth/oidc/start?tenant=acme&redirect=true", "alice", ssoPassword)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("the provider ended at %s: %v", resp.Status, err)
	}
	p := checkProblem(t, e.do("GET", loc.RequestURI(), "", withoutHeader("Authorization")), http.StatusUnauthorized, "sso-refused", "/v1/auth/oidc/callback")
	if !strings.Contains(p.Detail, sso.ReasonState) {
		t.Fatalf("detail %q", p.Detail)
	}

	checkProblem(t, e.do("GET", "/v1/auth/oidc/start?tenant=globex", "", withoutHeader("Authorization")), http.StatusNotFound, "not-found", "/v1/auth/oidc/start")
	checkProblem(t, e.do("GET", "/v1/auth/oidc/start"+query("tenant", "acme", "redirect_uri", "https://evil.example/cb"), "", withoutHeader("Authorization")),
		http.StatusUnprocessableEntity, "validation", "/v1/auth/oidc/start")
	checkProblem(t, e.do("POST", "/v1/auth/oidc/callback", `{"state":"acme.x","code":"c"}`, withoutHeader("Authorization")), http.StatusUnauthorized, "sso-refused", "/v1/auth/oidc/callback")

	// A suspended tenant's people do not sign in.
	if r := e.do("POST", "/v1/tenants/acme/suspend", ""); r.status != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	p = checkProblem(t, e.do("POST", "/v1/auth/oidc/callback", f.cliSignIn(t, e, "acme", "bob"), withoutHeader("Authorization")), http.StatusUnauthorized, "sso-refused", "/v1/auth/oidc/callback")
	if !strings.Contains(p.Detail, sso.ReasonSuspended) {
		t.Fatalf("suspended: %q", p.Detail)
	}
	if r := e.do("POST", "/v1/tenants/acme/resume", ""); r.status != http.StatusOK {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}

	if r := e.do("DELETE", "/v1/tenants/acme/sso", ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/sso", ""), http.StatusNotFound, "not-found", "/v1/tenants/acme/sso")
	if s := who(bob); s.Role != "concierge" { // a session outlives the settings it was started with
		t.Fatalf("bob's session after the settings went: %+v", s)
	}
}
