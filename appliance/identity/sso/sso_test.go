package sso_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/sso"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/oidcop"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

const (
	tenant       = "acme"
	clientID     = "custos"
	secret       = "s3cret-client-secret-canary"
	userPassword = "verysecure"
	redirect     = "http://127.0.0.1/v1/auth/oidc/callback"
)

var (
	owner  = audit.Principal{Kind: audit.ActorUser, ID: "u_owner", Tenant: tenant, Role: "owner", RequestID: "r1", Source: "127.0.0.1"}
	anon   = audit.Principal{RequestID: "r2", Source: "127.0.0.1"}
	people = []oidcop.User{
		{ID: "alice", Username: "alice", Password: userPassword, Email: "alice@example.org", EmailVerified: true, Groups: []string{"staff", "custos-owners"}},
		{ID: "bob", Username: "bob", Password: userPassword, Email: "bob@example.org", EmailVerified: true, Groups: []string{"villa-a-concierge"}},
		{ID: "carol", Username: "carol", Password: userPassword, Email: "carol@example.org", EmailVerified: true},
		{ID: "dave", Username: "dave", Password: userPassword, Email: "dave@example.org", EmailVerified: false},
	}
	clients = []oidcop.Client{{ID: clientID, Secret: secret}, {ID: "other-app", Secret: "other-secret"}}
)

// clock is the service's clock; it starts at the real time, since the
// provider stamps its tokens with the real time.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// swapper is the network between Custos and the provider, as an
// attacker who controls it sees it: when idToken is set, the token
// endpoint's answer carries that ID token instead of the one the
// provider issued.
type swapper struct {
	mu      sync.Mutex
	idToken string
}

func (s *swapper) swap(tok string) {
	s.mu.Lock()
	s.idToken = tok
	s.mu.Unlock()
}

func (s *swapper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	s.mu.Lock()
	tok := s.idToken
	s.mu.Unlock()
	if err != nil || tok == "" || !strings.HasSuffix(req.URL.Path, "/oauth/token") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	m["id_token"] = tok
	body, _ = json.Marshal(m)
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// accounts is the accounts service's part, as the test needs it: users
// linked to (issuer, subject), created just in time when allowed.
type fakeAccounts struct {
	mu    sync.Mutex
	users map[string]string
	got   []sso.Identity
}

func (a *fakeAccounts) SignInSSO(_ context.Context, who audit.Principal, tenant string, id sso.Identity, jit bool) (sso.Session, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if who.Source == "" || tenant == "" {
		return sso.Session{}, errors.New("no source or tenant")
	}
	key := id.Issuer + "|" + id.Subject
	uid, ok := a.users[key]
	if !ok {
		if !jit {
			return sso.Session{}, sso.ErrUnknownUser
		}
		uid = "u_" + id.Subject
		a.users[key] = uid
	}
	a.got = append(a.got, id)
	return sso.Session{AccessToken: "access-" + uid, RefreshToken: "refresh-" + uid, ExpiresIn: 900, TokenType: "Bearer", UserID: uid}, nil
}

func (a *fakeAccounts) last() sso.Identity {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got[len(a.got)-1]
}

type env struct {
	t     *testing.T
	store *raftstore.Store
	b     *tenancy.Boundary
	keys  *keyring.Hierarchy
	id    *age.X25519Identity
	svc   *sso.Service
	op    *oidcop.Provider
	accts *fakeAccounts
	clock *clock
	net   *swapper
}

func newEnv(t *testing.T, o sso.Options) *env {
	t.Helper()
	store := storetest.Start(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	b := tenancy.New(store)
	keys := keyring.NewHierarchy(b, keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}, System: audit.System(), Pseudonym: audit.Pseudonym})
	ten := tenants.New(b, storetest.Region, tenants.WithKeys(keys))
	if _, err := ten.Create(context.Background(), audit.Principal{Kind: audit.ActorOperator, ID: "operator"}, tenants.CreateInput{ID: tenant, DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, b: b, keys: keys, id: id, op: oidcop.Start(t, oidcop.Options{Users: people, Clients: clients}), accts: &fakeAccounts{users: map[string]string{}}, clock: &clock{}, net: &swapper{}}
	o.HTTPClient, o.Now = &http.Client{Transport: e.net, Timeout: 10 * time.Second}, e.clock.now
	e.svc = sso.New(b, keys, e.accts, o)
	return e
}

// settings are the test's: groups map onto Owner and onto a Concierge
// scoped to villa-a, a verified example.org address onto Read-only. The
// test provider signs people in with a password alone (amr "pwd"); the
// settings accept that as the provider's MFA, so that an Owner may sign
// in (TestIdPMFA checks the rule itself).
func (e *env) settings() sso.Settings {
	return sso.Settings{
		Issuer: e.op.Issuer, ClientID: clientID, ClientSecret: secret, RedirectURL: redirect,
		Scopes: []string{"email", "profile", oidcop.GroupsScope},
		Mappings: []sso.Mapping{
			{Claim: "groups", Value: "custos-owners", Role: "owner"},
			{Claim: "groups", Value: "villa-a-concierge", Role: "concierge", Scopes: map[string][]string{"property": {"villa-a"}}},
			{Claim: sso.EmailDomain, Value: "Example.org", Role: "read-only"},
		},
		JIT: true,
		MFA: sso.MFAPolicy{TrustIdP: true, AMR: []string{"pwd"}},
	}
}

func (e *env) configure(s sso.Settings) sso.Config {
	e.t.Helper()
	c, err := e.svc.Configure(context.Background(), owner, tenant, s)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// signIn starts a sign-in, plays the person at the provider, and
// returns what the provider sent back with the binding.
func (e *env) signIn(user string) sso.CallbackInput {
	e.t.Helper()
	st, err := e.svc.Start(context.Background(), tenant, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return e.at(st, user)
}

// at plays user at the provider for the sign-in st.
func (e *env) at(st sso.Start, user string) sso.CallbackInput {
	e.t.Helper()
	browser := oidcop.Browser(func(u *url.URL) bool { return strings.HasPrefix(u.String(), redirect) })
	resp, err := e.op.SignIn(browser, st.AuthURL, user, userPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		e.t.Fatalf("the provider ended at %s, not the redirect: %v", resp.Status, err)
	}
	q := loc.Query()
	if q.Get("state") != st.State || q.Get("code") == "" {
		e.t.Fatalf("redirect %s: want the sign-in's state and a code", loc.Redacted())
	}
	return sso.CallbackInput{State: q.Get("state"), Code: q.Get("code"), Binding: st.Binding}
}

func (e *env) callback(in sso.CallbackInput) (sso.Session, error) {
	return e.svc.Callback(context.Background(), anon, in)
}

// entries are the tenant chain's entries.
func (e *env) entries() []audit.Entry {
	e.t.Helper()
	var out []audit.Entry
	var raw [][]byte
	err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.ChainEntries([]byte(tenancy.ChainOf(tenant)), 1, func(_ uint64, _ [32]byte, data []byte) bool {
			raw = append(raw, append([]byte(nil), data...))
			return true
		})
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range raw {
		en, err := audit.Decode(d)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, en)
	}
	return out
}

func reason(err error) string {
	var fe *sso.FlowError
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return ""
}

// The whole code flow against a real provider: PKCE, state and nonce
// in the authorization URL; each person's group (or verified email
// domain, read from the userinfo endpoint since the ID token lacks it)
// maps onto the right role and scopes; a state is redeemed once; and
// the chain records the configuration and a refused sign-in without a
// secret, code or token.
func TestCodeFlow(t *testing.T) {
	e := newEnv(t, sso.Options{})
	cfg := e.configure(e.settings())
	if !cfg.SecretSet || cfg.ClientSecret != "" {
		t.Fatalf("config %+v: the secret is set and not shown", cfg)
	}
	st, err := e.svc.Start(context.Background(), tenant, "")
	if err != nil {
		t.Fatal(err)
	}
	au, _ := url.Parse(st.AuthURL)
	q := au.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") != st.State || q.Get("redirect_uri") != redirect {
		t.Fatalf("authorization URL %s lacks PKCE, nonce, state or the redirect", st.AuthURL)
	}

	var codes []string
	for _, c := range []struct {
		user, role string
		scopes     map[string][]string
	}{
		{"alice", "owner", nil},
		{"bob", "concierge", map[string][]string{"property": {"villa-a"}}},
		{"carol", "read-only", nil},
	} {
		in := e.at(st, c.user)
		if c.user != "alice" {
			in = e.signIn(c.user)
		}
		codes = append(codes, in.Code)
		sess, err := e.callback(in)
		if err != nil {
			t.Fatalf("%s: %v", c.user, err)
		}
		got := e.accts.last()
		if sess.UserID != "u_"+c.user || got.Subject != c.user || got.Issuer != e.op.Issuer || got.Role != c.role || !equalScopes(got.Scopes, c.scopes) || !got.MFA {
			t.Fatalf("%s: session %+v identity %+v: want role %s scopes %v, MFA by the provider", c.user, sess, got, c.role, c.scopes)
		}
		if got.Email != c.user+"@example.org" || !got.EmailVerified {
			t.Fatalf("%s: profile %+v", c.user, got)
		}
		// A state is redeemed once, on any node: the second callback
		// finds nothing.
		if _, err := e.callback(in); reason(err) != sso.ReasonState {
			t.Fatalf("%s: the same state again: %v", c.user, err)
		}
	}
	// dave's address is not verified and he is in no group: no role.
	if _, err := e.callback(e.signIn("dave")); reason(err) != sso.ReasonNoRole {
		t.Fatalf("dave: %v, want %s", err, sso.ReasonNoRole)
	}

	var logins, failures, configs int
	for _, en := range e.entries() {
		b, _ := json.Marshal(en)
		for _, canary := range append(codes, secret, "access-u_", "refresh-u_", "alice@", "eyJ") {
			if bytes.Contains(b, []byte(canary)) {
				t.Fatalf("entry %s holds %q", b, canary)
			}
		}
		switch {
		case en.Action == "sso.configure":
			configs++
			if en.Actor.ID != owner.ID || en.Details["client_secret"] != "set" {
				t.Fatalf("configure entry %s", b)
			}
		case en.Action == "sso.login" && en.Outcome == audit.OutcomeSuccess:
			logins++ // the session's start is the accounts service's entry
		case en.Action == "sso.login":
			failures++
			if en.Details["reason"] != sso.ReasonNoRole || en.Actor.Type != audit.ActorUser || en.Source != anon.Source ||
				!strings.HasPrefix(en.Actor.ID, "idp-subject:h:") || en.Details["issuer"] != e.op.Issuer {
				t.Fatalf("failure entry %s", b)
			}
		}
	}
	if configs != 1 || logins != 0 || failures != 1 {
		t.Fatalf("entries: %d configure, %d sso logins, %d failures; want 1, 0, 1", configs, logins, failures)
	}
}

func equalScopes(a, b map[string][]string) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// The provider's MFA counts only when the tenant trusts it and amr
// names an accepted method (the test provider signs in with "pwd"); an
// Owner (a role that requires MFA) without it is refused, a Concierge
// signs in without.
func TestIdPMFA(t *testing.T) {
	e := newEnv(t, sso.Options{})
	s := e.settings()
	for _, mfa := range []sso.MFAPolicy{{}, {TrustIdP: true}, {TrustIdP: false, AMR: []string{"pwd"}}} {
		s.MFA = mfa
		e.configure(s)
		if _, err := e.callback(e.signIn("alice")); reason(err) != sso.ReasonMFA {
			t.Fatalf("%+v: an owner without the provider's MFA: %v", mfa, err)
		}
		if _, err := e.callback(e.signIn("bob")); err != nil || e.accts.last().MFA || e.accts.last().Role != "concierge" {
			t.Fatalf("%+v: a concierge: %v, %+v", mfa, err, e.accts.last())
		}
	}
	s.MFA = sso.MFAPolicy{TrustIdP: true, AMR: []string{"pwd"}}
	e.configure(s)
	if _, err := e.callback(e.signIn("alice")); err != nil || !e.accts.last().MFA {
		t.Fatalf("amr pwd accepted: %v, MFA %v", err, e.accts.last().MFA)
	}
}

// Without just-in-time creation only linked users sign in.
func TestNoJIT(t *testing.T) {
	e := newEnv(t, sso.Options{})
	s := e.settings()
	s.JIT = false
	e.configure(s)
	if _, err := e.callback(e.signIn("alice")); reason(err) != sso.ReasonUser {
		t.Fatalf("unknown user without JIT: %v", err)
	}
	e.accts.users[e.op.Issuer+"|alice"] = "u_linked"
	if sess, err := e.callback(e.signIn("alice")); err != nil || sess.UserID != "u_linked" {
		t.Fatalf("linked user: %+v %v", sess, err)
	}
}

// Everything a callback must refuse, each for its reason: a state that
// is malformed, unknown, someone else's (binding) or expired; an error
// from the provider; an ID token with another nonce, for another
// audience, from another issuer, or expired; and a provider whose
// discovery names another issuer.
func TestRefusals(t *testing.T) {
	e := newEnv(t, sso.Options{FlowTTL: 24 * time.Hour})
	e.configure(e.settings())
	ctx := context.Background()

	t.Run("state", func(t *testing.T) {
		in := e.signIn("alice")
		for _, missing := range []sso.CallbackInput{{Code: in.Code}, {State: in.State}} {
			if _, err := e.callback(missing); !errors.Is(err, validation.ErrInvalid) {
				t.Fatalf("no state or code: %v", err)
			}
		}
		for _, bad := range []sso.CallbackInput{
			{State: "acme", Code: in.Code, Binding: in.Binding},
			{State: tenant + "." + strings.Repeat("A", 43), Code: in.Code, Binding: in.Binding},
			{State: "other." + strings.Split(in.State, ".")[1], Code: in.Code, Binding: in.Binding},
		} {
			if _, err := e.callback(bad); reason(err) != sso.ReasonState {
				t.Fatalf("state %q: %v", bad.State, err)
			}
		}
		// Another browser's binding: refused, and the state is spent.
		wrong := in
		wrong.Binding = "not-the-binding"
		if _, err := e.callback(wrong); reason(err) != sso.ReasonState {
			t.Fatalf("wrong binding: %v", err)
		}
		if _, err := e.callback(in); reason(err) != sso.ReasonState {
			t.Fatalf("after a wrong binding the state is spent: %v", err)
		}
	})
	t.Run("expired flow", func(t *testing.T) {
		e2 := newEnv(t, sso.Options{FlowTTL: time.Minute})
		e2.configure(e2.settings())
		in := e2.signIn("alice")
		e2.clock.advance(2 * time.Minute)
		if _, err := e2.callback(in); reason(err) != sso.ReasonState {
			t.Fatalf("expired sign-in: %v", err)
		}
	})
	t.Run("provider error", func(t *testing.T) {
		in := e.signIn("alice")
		in.Code, in.Error = "", "access_denied"
		if _, err := e.callback(in); reason(err) != sso.ReasonIdP {
			t.Fatalf("provider error: %v", err)
		}
	})
	t.Run("bad code", func(t *testing.T) {
		in := e.signIn("alice")
		in.Code = "forged"
		if _, err := e.callback(in); reason(err) != sso.ReasonExchange {
			t.Fatalf("forged code: %v", err)
		}
	})
	t.Run("bad nonce", func(t *testing.T) {
		// A genuine token of this provider for this client, from
		// another sign-in (another nonce).
		tok, err := e.op.IDToken(ctx, clients[0], "alice", userPassword, "another-nonce")
		if err != nil {
			t.Fatal(err)
		}
		in := e.signIn("alice")
		e.net.swap(tok)
		defer e.net.swap("")
		if _, err := e.callback(in); reason(err) != sso.ReasonNonce {
			t.Fatalf("another sign-in's token: %v", err)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		tok, err := e.op.IDToken(ctx, clients[1], "alice", userPassword, "n")
		if err != nil {
			t.Fatal(err)
		}
		in := e.signIn("alice")
		e.net.swap(tok)
		defer e.net.swap("")
		_, err = e.callback(in)
		if reason(err) != sso.ReasonIDToken || !strings.Contains(err.Error(), "audience") {
			t.Fatalf("another client's token: %v", err)
		}
	})
	t.Run("unknown issuer", func(t *testing.T) {
		other := oidcop.Start(t, oidcop.Options{Users: people, Clients: clients})
		tok, err := other.IDToken(ctx, clients[0], "alice", userPassword, "n")
		if err != nil {
			t.Fatal(err)
		}
		in := e.signIn("alice")
		e.net.swap(tok)
		defer e.net.swap("")
		if _, err := e.callback(in); reason(err) != sso.ReasonIDToken {
			t.Fatalf("another provider's token: %v", err)
		}
		// Settings naming an issuer whose discovery names another.
		e2 := newEnv(t, sso.Options{})
		s := e2.settings()
		s.Issuer, s.DiscoveryURL = "http://127.0.0.1/not-the-issuer", other.Issuer
		e2.configure(s)
		if _, err := e2.svc.Start(ctx, tenant, ""); !errors.Is(err, sso.ErrProvider) {
			t.Fatalf("discovery of another issuer: %v", err)
		}
	})
	t.Run("expired id token", func(t *testing.T) {
		in := e.signIn("alice")
		e.clock.advance(2 * time.Hour) // the provider's ID tokens live 1 hour
		defer e.clock.advance(-2 * time.Hour)
		_, err := e.callback(in)
		if reason(err) != sso.ReasonIDToken || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("expired ID token: %v", err)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		for _, r := range []string{"https://evil.example/cb", "http://localhost:8080/cb", "http://127.0.0.1/cb", "http://10.0.0.1:80/cb"} {
			if _, err := e.svc.Start(ctx, tenant, r); err == nil {
				t.Fatalf("redirect %s admitted", r)
			}
		}
		if _, err := e.svc.Start(ctx, tenant, "http://127.0.0.1:49152/oidc/callback"); err != nil {
			t.Fatalf("a loopback listener: %v", err)
		}
	})
}

// A sign-in lives in the replicated store: on a three-node cluster it is
// configured through one node, started through another and completed
// through the third, and its state is then spent on every node.
func TestAnyNodeCompletes(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e := &env{t: t, op: oidcop.Start(t, oidcop.Options{Users: people, Clients: clients}), accts: &fakeAccounts{users: map[string]string{}}, clock: &clock{}, net: &swapper{}}
	var svcs []*sso.Service
	for i, store := range c.Nodes {
		b := tenancy.New(store)
		keys := keyring.NewHierarchy(b, keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}, System: audit.System(), Pseudonym: audit.Pseudonym})
		if i == 0 {
			if _, err := tenants.New(b, storetest.Region, tenants.WithKeys(keys)).Create(ctx, audit.Principal{Kind: audit.ActorOperator, ID: "operator"}, tenants.CreateInput{ID: tenant, DisplayName: "Acme"}); err != nil {
				t.Fatal(err)
			}
		}
		svcs = append(svcs, sso.New(b, keys, e.accts, sso.Options{HTTPClient: &http.Client{Transport: e.net, Timeout: 10 * time.Second}, Now: e.clock.now}))
	}
	if _, err := svcs[0].Configure(ctx, owner, tenant, e.settings()); err != nil {
		t.Fatal(err)
	}
	st, err := svcs[1].Start(ctx, tenant, "")
	if err != nil {
		t.Fatal(err)
	}
	in := e.at(st, "alice")
	if sess, err := svcs[2].Callback(ctx, anon, in); err != nil || sess.UserID != "u_alice" {
		t.Fatalf("callback through the third node: %+v %v", sess, err)
	}
	for i, svc := range svcs {
		if _, err := svc.Callback(ctx, anon, in); reason(err) != sso.ReasonState {
			t.Fatalf("node %d: the spent state again: %v", i+1, err)
		}
	}
}
