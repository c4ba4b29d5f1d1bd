package accounts_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/appliance/identity/password"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/signing"
	"github.com/custos/custos/appliance/ratelimit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// clock is the tests' injected time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	store *raftstore.Store
	svc   *accounts.Service
	clock *clock
	ten   *tenants.Service
	b     *tenancy.Boundary
	opts  accounts.Options
}

var operator = audit.Principal{Kind: audit.ActorOperator, ID: "operator", RequestID: "req-op", Source: "127.0.0.1"}

// from is the request frame of an unauthenticated request (a login).
var from = audit.Principal{RequestID: "req-login", Source: "192.0.2.7"}

// cheap are test hashing parameters (the policy of argon2id parameters
// is the password package's; these tests are about the accounts).
var cheap = password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newEnv(t *testing.T) *env {
	t.Helper()
	store := storetest.Start(t)
	b := tenancy.New(store)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ops, err := keyring.BootstrapOps([]string{id.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := store.Apply(context.Background(), &raftstore.Txn{Ops: ops}); err != nil || !res.Applied {
		t.Fatalf("bootstrap: %+v %v", res, err)
	}
	keys := keyring.NewHierarchy(b, keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}, System: audit.System(), Pseudonym: audit.Pseudonym})
	c := &clock{t: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	h, err := password.NewHasher(password.Options{Params: cheap})
	if err != nil {
		t.Fatal(err)
	}
	sign, err := signing.Open(context.Background(), b, signing.Options{Issuer: "custos-test", Identities: []age.Identity{id}, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	opts := accounts.Options{Keys: keys, Hasher: h, Now: c.now, Signer: sign}
	svc, err := accounts.New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	ten := tenants.New(b, storetest.Region, tenants.WithKeys(keys))
	if _, err := ten.Create(context.Background(), operator, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, svc: svc, clock: c, ten: ten, b: b, opts: opts}
}

// withBackoff is the env's service with a login backoff.
func (e *env) withBackoff(t *testing.T, bo *ratelimit.Backoff) *accounts.Service {
	o := e.opts
	o.Backoff = bo
	svc, err := accounts.New(e.b, o)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// entries are the tenant's audit entries.
func (e *env) entries(tenant string) []audit.Entry {
	e.t.Helper()
	return e.chainEntries(tenancytest.Chain(tenant))
}

// chainEntries are the entries of one audit chain (a tenant's, or the
// system chain).
func (e *env) chainEntries(chain []byte) []audit.Entry {
	e.t.Helper()
	var out []audit.Entry
	err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.ChainEntries(chain, 1, func(_ uint64, _ [32]byte, data []byte) bool {
			en, err := audit.Decode(data)
			if err != nil {
				e.t.Fatalf("entry: %v", err)
			}
			out = append(out, en)
			return true
		})
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// raw is every byte the store holds (state and chains): for canary
// scans.
func (e *env) raw() string {
	e.t.Helper()
	var buckets [][][]byte
	for _, name := range []string{"users", "users_by_name", "sessions", "session_tokens", "refresh", "roles"} {
		buckets = append(buckets, tenancytest.Path("acme", name))
	}
	return e.rawOf(tenancytest.Chain("acme"), buckets)
}

// rawOf is every byte of a chain and of the buckets' keys and values,
// concatenated: what a canary scan reads.
func (e *env) rawOf(chain []byte, buckets [][][]byte) string {
	e.t.Helper()
	var b strings.Builder
	err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.ChainEntries(chain, 1, func(_ uint64, _ [32]byte, data []byte) bool {
			b.Write(data)
			return true
		})
		for _, bucket := range buckets {
			r.Scan(bucket, nil, 0, func(k, v []byte, _ uint64) bool {
				b.Write(k)
				b.Write(v)
				return true
			})
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return b.String()
}

func count(es []audit.Entry, action, outcome string) int {
	n := 0
	for _, en := range es {
		if en.Action == action && en.Outcome == outcome {
			n++
		}
	}
	return n
}

// code is the TOTP code of uri's secret at the env's time.
func (e *env) code(uri string) string {
	e.t.Helper()
	k, err := otp.NewKeyFromURL(uri)
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := pqtotp.GenerateCodeCustom(k.Secret(), e.clock.now(), pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

const (
	ownerPass   = "correct horse battery staple"
	managerPass = "tide pool lantern quarry"
)

// An Owner created through the bootstrap rule logs in to a session that
// can only enrol; enrols; then must give a code: wrong, replayed and
// reused recovery codes are refused and audited; right ones work.
func TestOwnerMFALifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	owner, err := e.svc.CreateUser(ctx, operator, "acme", accounts.CreateUserInput{Username: "Olivia@Example.com", Password: ownerPass, Role: "owner"})
	if err != nil {
		t.Fatal(err)
	}
	if owner.Username != "Olivia@Example.com" || owner.MFA != accounts.MFANone || !accounts.ValidUserID(owner.ID) {
		t.Fatalf("owner %+v", owner)
	}
	// The bootstrap rule: one Owner, once; nothing else.
	if _, err := e.svc.CreateUser(ctx, operator, "acme", accounts.CreateUserInput{Username: "second", Password: ownerPass, Role: "owner"}); !errors.Is(err, accounts.ErrForbidden) {
		t.Fatalf("a second owner by the operator: %v", err)
	}
	// Case-insensitive login; the role requires MFA: enrolment only.
	g, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "olivia@example.com", Password: ownerPass})
	if err != nil || !g.EnrolmentOnly {
		t.Fatalf("login: %+v %v", g, err)
	}
	res, err := e.svc.Resolve(ctx, g.AccessToken)
	if err != nil || !res.EnrolmentOnly || res.Principal.ID != owner.ID || res.Principal.Kind != audit.ActorUser || res.Principal.Session != g.Session.ID || res.Role.Name() != "owner" {
		t.Fatalf("resolve: %+v %v", res, err)
	}
	who := res.Principal
	who.RequestID, who.Source = "req-enrol", "192.0.2.7"
	en, err := e.svc.Enrol(ctx, who)
	if err != nil || !strings.HasPrefix(en.URI, "otpauth://totp/") || len(en.QR) < 100 {
		t.Fatalf("enrol: %v", err)
	}
	if _, err := e.svc.Confirm(ctx, who, "000000"); !errors.Is(err, accounts.ErrInvalidCode) {
		t.Fatalf("a wrong confirmation code: %v", err)
	}
	codes, err := e.svc.Confirm(ctx, who, e.code(en.URI))
	if err != nil || len(codes) != 10 {
		t.Fatalf("confirm: %v %v", codes, err)
	}
	if res, err := e.svc.Resolve(ctx, g.AccessToken); err != nil || res.EnrolmentOnly {
		t.Fatalf("after enrolment the session is full: %+v %v", res, err)
	}
	e.clock.add(30 * time.Second)
	login := func(code string) error {
		_, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "OLIVIA@example.com", Password: ownerPass, Code: code})
		return err
	}
	if err := login(""); !errors.Is(err, accounts.ErrMFARequired) {
		t.Fatalf("no code: %v", err)
	}
	if err := login("123456"); !errors.Is(err, accounts.ErrInvalidCode) && e.code(en.URI) != "123456" {
		t.Fatalf("wrong code: %v", err)
	}
	good := e.code(en.URI)
	if err := login(good); err != nil {
		t.Fatalf("right code: %v", err)
	}
	if err := login(good); !errors.Is(err, accounts.ErrInvalidCode) {
		t.Fatalf("replayed code: %v", err)
	}
	if err := login(codes[3]); err != nil {
		t.Fatalf("recovery code: %v", err)
	}
	if err := login(codes[3]); !errors.Is(err, accounts.ErrInvalidCode) {
		t.Fatalf("recovery code used twice: %v", err)
	}
	if u, err := e.svc.GetUser(ctx, member(e), "acme", owner.ID); err != nil || u.MFA != accounts.MFAActive || u.RecoveryCodes != 9 {
		t.Fatalf("user after: %+v %v", u, err)
	}
	es := e.entries("acme")
	for _, c := range []struct {
		action, outcome string
		n               int
	}{
		{"user.create", audit.OutcomeSuccess, 1},
		{"user.mfa_enrol_start", audit.OutcomeSuccess, 1},
		{"user.mfa_enrol", audit.OutcomeFailure, 1},
		{"user.mfa_enrol", audit.OutcomeSuccess, 1},
		{"session.login", audit.OutcomeSuccess, 3},
		{"session.login", audit.OutcomeFailure, 3},
	} {
		if got := count(es, c.action, c.outcome); got != c.n {
			t.Errorf("%s %s: %d entries, want %d", c.action, c.outcome, got, c.n)
		}
	}
	reasons := map[string]bool{}
	for _, en := range es {
		if en.Action == "session.login" && en.Outcome == audit.OutcomeFailure {
			reasons[en.Details["reason"]] = true
			if en.Actor.ID != owner.ID || en.Source != "192.0.2.7" || en.RequestID != "req-login" {
				t.Errorf("failure entry %+v", en)
			}
		}
	}
	for _, r := range []string{"mfa_wrong_code", "mfa_replayed", "mfa_wrong_recovery_code"} {
		if !reasons[r] {
			t.Errorf("no failed login audited as %s: %v", r, reasons)
		}
	}
	// The admin reset is audited, and the Owner is back to enrolment only.
	if _, err := e.svc.ResetMFA(ctx, who, "acme", owner.ID); err != nil {
		t.Fatal(err)
	}
	if res, err := e.svc.Resolve(ctx, g.AccessToken); err != nil || !res.EnrolmentOnly {
		t.Fatalf("after a reset: %+v %v", res, err)
	}
	if count(e.entries("acme"), "user.mfa_reset", audit.OutcomeSuccess) != 1 {
		t.Error("the reset is not audited")
	}
	canary(t, e.raw(), append([]string{ownerPass, "olivia", "Olivia", good, g.AccessToken, g.RefreshToken, en.URI}, codes...)...)
}

// canary fails when any secret or typed username appears in s.
func canary(t *testing.T, s string, secrets ...string) {
	t.Helper()
	for _, x := range secrets {
		if strings.Contains(strings.ToLower(s), strings.ToLower(x)) {
			t.Errorf("the store holds %q", x)
		}
	}
}

// An unknown user and a wrong password get the same answer; the unknown
// username is audited as a pseudonym, never in the clear.
func TestFailedLogins(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.CreateUser(ctx, operator, "acme", accounts.CreateUserInput{Username: "olivia", Password: ownerPass, Role: "owner"}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []accounts.LoginInput{
		{Tenant: "acme", Username: "nobody-typed-this", Password: ownerPass},
		{Tenant: "acme", Username: "olivia", Password: "wrong password guess"},
		{Tenant: "nosuch", Username: "olivia", Password: ownerPass},
		{Tenant: "acme", Username: "has:colon", Password: ownerPass},
	} {
		if _, err := e.svc.Login(ctx, from, in); !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Errorf("%+v: %v", in, err)
		}
	}
	es := e.entries("acme")
	if n := count(es, "session.login", audit.OutcomeFailure); n != 2 {
		t.Fatalf("%d failures audited, want 2", n)
	}
	for _, en := range es {
		if en.Details["reason"] == "unknown_user" && !strings.HasPrefix(en.Actor.ID, "username:h:") {
			t.Errorf("unknown user named %q", en.Actor.ID)
		}
	}
	canary(t, e.raw(), "nobody-typed-this", "wrong password guess", ownerPass, "olivia")
	if _, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Password: ownerPass}); !errors.Is(err, validation.ErrInvalid) {
		t.Errorf("no username: %v", err)
	}
	// The operator creates a tenant's first Owner and changes nothing
	// else of its people.
	users, _ := e.svc.ListUsers(ctx, member(e), "acme")
	if _, err := e.svc.SetDisabled(ctx, operator, "acme", users[0].ID, true); !errors.Is(err, accounts.ErrForbidden) {
		t.Errorf("the operator disables a user: %v", err)
	}
	if _, err := e.svc.ResetMFA(ctx, operator, "acme", users[0].ID); !errors.Is(err, accounts.ErrForbidden) {
		t.Errorf("the operator resets a user's MFA: %v", err)
	}
}

// Sessions: the access token expires; refresh rotates; a spent refresh
// token presented again revokes the whole session and is audited;
// logout ends a session.
func TestSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	manager := e.bootstrap(t)
	g, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "max", Password: managerPass})
	if err != nil || g.EnrolmentOnly {
		t.Fatalf("login: %+v %v", g, err)
	}
	if !g.ExpiresAt.Equal(e.clock.now().Add(15 * time.Minute)) {
		t.Errorf("access token expires at %v", g.ExpiresAt)
	}
	e.clock.add(15*time.Minute + 6*time.Second)
	if _, err := e.svc.Resolve(ctx, g.AccessToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("an expired access token: %v", err)
	}
	g2, err := e.svc.Refresh(ctx, from, g.RefreshToken)
	if err != nil || g2.RefreshToken == g.RefreshToken || g2.Session.ID != g.Session.ID {
		t.Fatalf("refresh: %+v %v", g2, err)
	}
	if res, err := e.svc.Resolve(ctx, g2.AccessToken); err != nil || res.Principal.ID != manager {
		t.Fatalf("resolve after refresh: %+v %v", res, err)
	}
	g3, err := e.svc.Refresh(ctx, from, g2.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	// g.RefreshToken was spent: reuse revokes the family, g3 included.
	if _, err := e.svc.Refresh(ctx, from, g.RefreshToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := e.svc.Resolve(ctx, g3.AccessToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("after reuse the session's access token: %v", err)
	}
	if _, err := e.svc.Refresh(ctx, from, g3.RefreshToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("after reuse the latest refresh token: %v", err)
	}
	if n := count(e.entries("acme"), "session.refresh_reuse", audit.OutcomeDenied); n != 1 {
		t.Fatalf("%d reuse entries", n)
	}
	// Logout.
	g4, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "max", Password: managerPass})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Resolve(ctx, g4.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if ss, err := e.svc.ListSessions(ctx, member(e), "acme", manager); err != nil || len(ss) != 1 || ss[0].ID != g4.Session.ID {
		t.Fatalf("sessions: %+v %v", ss, err)
	}
	if err := e.svc.Logout(ctx, res.Principal); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Resolve(ctx, g4.AccessToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("after logout: %v", err)
	}
	if _, err := e.svc.Refresh(ctx, from, g4.RefreshToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("refresh after logout: %v", err)
	}
	if ss, err := e.svc.ListSessions(ctx, member(e), "acme", manager); err != nil || len(ss) != 0 {
		t.Fatalf("sessions after logout: %+v %v", ss, err)
	}
	if n := count(e.entries("acme"), "session.logout", audit.OutcomeSuccess); n != 1 {
		t.Fatalf("%d logout entries", n)
	}
	// A session outlives access tokens but not its refresh token.
	g5, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "max", Password: managerPass})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.add(30*24*time.Hour + time.Second)
	if _, err := e.svc.Refresh(ctx, from, g5.RefreshToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("an expired refresh token: %v", err)
	}
}

// bootstrap makes the tenant's Owner (by the operator) and a Manager
// "max" (by the Owner, with MFA) and returns the Manager's id.
func (e *env) bootstrap(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	o, err := e.svc.CreateUser(ctx, operator, "acme", accounts.CreateUserInput{Username: "olivia", Password: ownerPass, Role: "owner"})
	if err != nil {
		t.Fatal(err)
	}
	owner := audit.Principal{Kind: audit.ActorUser, ID: o.ID, Tenant: "acme", Role: "owner", Session: "s"}
	m, err := e.svc.CreateUser(ctx, owner, "acme", accounts.CreateUserInput{Username: "max", Password: managerPass, Role: "manager"})
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// Disabling a user and changing its role take effect on its live
// sessions; the last Owner cannot be removed; grants cannot widen.
func TestDisableRoleChangeAndGrants(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	manager := e.bootstrap(t)
	users, err := e.svc.ListUsers(ctx, member(e), "acme")
	if err != nil || len(users) != 2 {
		t.Fatalf("users: %+v %v", users, err)
	}
	var ownerID string
	for _, u := range users {
		if u.Role == "owner" {
			ownerID = u.ID
		}
	}
	owner := audit.Principal{Kind: audit.ActorUser, ID: ownerID, Tenant: "acme", Role: "owner", Session: "s"}
	g, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "max", Password: managerPass})
	if err != nil {
		t.Fatal(err)
	}
	role := "concierge"
	scopes := map[string][]string{"property": {"villa-a"}}
	if _, err := e.svc.UpdateUser(ctx, owner, "acme", manager, accounts.Patch{Role: &role, Scopes: &scopes}); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Resolve(ctx, g.AccessToken)
	if err != nil || res.Role.Name() != "concierge" || res.Principal.Role != "concierge" || res.Principal.Scopes["property"][0] != "villa-a" {
		t.Fatalf("after the role change: %+v %v", res, err)
	}
	if _, err := e.svc.SetDisabled(ctx, owner, "acme", manager, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Resolve(ctx, g.AccessToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("a disabled user's session: %v", err)
	}
	if _, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "max", Password: managerPass}); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Fatalf("a disabled user's login: %v", err)
	}
	if _, err := e.svc.SetDisabled(ctx, owner, "acme", manager, false); err != nil {
		t.Fatal(err)
	}
	// Disabling revoked the session: enabling does not bring it back.
	if _, err := e.svc.Resolve(ctx, g.AccessToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("a re-enabled user's old session: %v", err)
	}
	// The last Owner stays; nobody changes their own binding.
	ro := "read-only"
	if _, err := e.svc.UpdateUser(ctx, owner, "acme", ownerID, accounts.Patch{Role: &ro}); !errors.Is(err, accounts.ErrForbidden) {
		t.Fatalf("own role: %v", err)
	}
	mgr := audit.Principal{Kind: audit.ActorUser, ID: manager, Tenant: "acme", Role: "manager", Session: "s"}
	if _, err := e.svc.SetDisabled(ctx, mgr, "acme", ownerID, true); !errors.Is(err, accounts.ErrForbidden) {
		t.Fatalf("disable the last owner: %v", err)
	}
	// A role can grant only what it holds: a Manager cannot make an Owner
	// or define a role with users:create.
	if _, err := e.svc.CreateUser(ctx, mgr, "acme", accounts.CreateUserInput{Username: "eve", Password: ownerPass, Role: "owner"}); !errors.Is(err, accounts.ErrForbidden) {
		t.Fatalf("a manager creates an owner: %v", err)
	}
	night := roles.Custom{Name: "night-desk", Permissions: []string{"records:read", "users:create"},
		Visibility: map[roles.Classification]roles.Visibility{roles.PII: roles.Masked, roles.Sensitive: roles.None, roles.Internal: roles.Clear}}
	if _, err := e.svc.CreateRole(ctx, mgr, "acme", night); !errors.Is(err, accounts.ErrForbidden) {
		t.Fatalf("a manager defines a role with users:create: %v", err)
	}
	night.Permissions = []string{"records:read", "collections:read"}
	ri, err := e.svc.CreateRole(ctx, owner, "acme", night)
	if err != nil || ri.Builtin || ri.RequiresMFA {
		t.Fatalf("custom role: %+v %v", ri, err)
	}
	if _, err := e.svc.CreateRole(ctx, owner, "acme", night); !errors.Is(err, accounts.ErrExists) {
		t.Fatalf("again: %v", err)
	}
	u, err := e.svc.CreateUser(ctx, owner, "acme", accounts.CreateUserInput{Username: "nina", Password: managerPass, Role: "night-desk"})
	if err != nil {
		t.Fatal(err)
	}
	g, err = e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "nina", Password: managerPass})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := e.svc.Resolve(ctx, g.AccessToken); err != nil || res.Role.Name() != "night-desk" || !res.Role.Allows(roles.P(roles.Records, roles.Read)) || res.Role.Allows(roles.P(roles.Records, roles.Update)) {
		t.Fatalf("custom role session: %+v %v", res, err)
	}
	rs, err := e.svc.ListRoles(ctx, "acme")
	if err != nil || len(rs) != 11 || rs[10].Name != "night-desk" {
		t.Fatalf("roles: %d %v", len(rs), err)
	}
	if n, err := e.svc.RevokeSessions(ctx, owner, "acme", u.ID); err != nil || n != 1 {
		t.Fatalf("revoke all: %d %v", n, err)
	}
	if _, err := e.svc.CreateUser(ctx, owner, "acme", accounts.CreateUserInput{Username: "NINA", Password: managerPass, Role: "foh"}); !errors.Is(err, accounts.ErrExists) {
		t.Fatalf("a taken username: %v", err)
	}
	if _, err := e.svc.CreateUser(ctx, owner, "acme", accounts.CreateUserInput{Username: "pat", Password: "password1234", Role: "foh"}); err == nil {
		t.Fatal("a common password was accepted")
	}
}

// Failed logins back off per account; an administrator's unlock (audited)
// lets the user in again at once.
func TestBackoffAndUnlock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bo := ratelimit.NewBackoff(ratelimit.BackoffConfig{
		Account:    ratelimit.BackoffLimits{Free: 2, Base: time.Minute, Max: time.Hour, Decay: time.Hour},
		Source:     ratelimit.BackoffLimits{Free: 100, Base: time.Second, Max: time.Minute, Decay: time.Hour},
		MaxTracked: 100,
	})
	e.svc = e.withBackoff(t, bo)
	manager := e.bootstrap(t)
	for i := range 2 {
		if _, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "max", Password: "not the password " + string(rune('a'+i)), SourceKey: "192.0.2.7"}); !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// The right password is refused too, unchecked, while the delay runs:
	// three times, 10 s apart, all in one lockout window.
	first := e.clock.now().UTC()
	for i := range 3 {
		if i > 0 {
			e.clock.add(10 * time.Second)
		}
		_, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "max", Password: managerPass, SourceKey: "192.0.2.7"})
		var be *accounts.BackoffError
		if !errors.As(err, &be) || be.RetryAfter <= 0 {
			t.Fatalf("during the backoff (%d): %v", i, err)
		}
	}
	last := e.clock.now().UTC()
	// One lockout entry for the window, at its first refusal, telling
	// when that client could try again (the account's 1 min delay).
	var lockouts []audit.Entry
	for _, en := range e.entries("acme") {
		if en.Action == "session.login" && en.Outcome == audit.OutcomeDenied {
			lockouts = append(lockouts, en)
		}
	}
	if len(lockouts) != 1 || lockouts[0].Details["reason"] != "backoff" || !lockouts[0].Time.Equal(first) ||
		lockouts[0].Details["retry_at"] != first.Add(time.Minute).Format(time.RFC3339Nano) || lockouts[0].Details["refused"] != "" {
		t.Fatalf("%d lockouts audited: %+v", len(lockouts), lockouts)
	}
	owner := audit.Principal{Kind: audit.ActorUser, ID: "usr_aaaaaaaaaaaaaaaa", Tenant: "acme", Role: "owner", Session: "s"}
	if _, err := e.svc.Unlock(ctx, owner, "acme", manager); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "max", Password: managerPass, SourceKey: "192.0.2.7"}); err != nil {
		t.Fatalf("after the unlock: %v", err)
	}
	es := e.entries("acme")
	if n := count(es, "user.unlock", audit.OutcomeSuccess); n != 1 {
		t.Fatalf("%d unlocks audited", n)
	}
	// The login that closed the window carries its count and times.
	success := es[len(es)-1]
	if success.Action != "session.login" || success.Outcome != audit.OutcomeSuccess || success.Details["refused"] != "3" ||
		success.Details["refused_first"] != first.Format(time.RFC3339Nano) || success.Details["refused_last"] != last.Format(time.RFC3339Nano) {
		t.Fatalf("the login after the lockout: %+v", success)
	}
	if n := count(es, "session.login", audit.OutcomeDenied); n != 1 {
		t.Fatalf("%d lockouts audited", n)
	}
}

// member is a principal of acme that may read its people (reads check only
// that the caller is the tenant's own).
func member(*env) audit.Principal {
	return audit.Principal{Kind: audit.ActorUser, ID: "usr_aaaaaaaaaaaaaaaa", Tenant: "acme", Role: "owner", Session: "s"}
}

// Two logins with the same TOTP code at the same moment: one starts a
// session, the other is refused (the used step is written back on the
// condition that the user did not change since it was read).
func TestConcurrentLoginsOneCode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	o, err := e.svc.CreateUser(ctx, operator, "acme", accounts.CreateUserInput{Username: "olivia", Password: ownerPass, Role: "owner"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "olivia", Password: ownerPass})
	if err != nil {
		t.Fatal(err)
	}
	who := audit.Principal{Kind: audit.ActorUser, ID: o.ID, Tenant: "acme", Role: "owner", Session: g.Session.ID}
	en, err := e.svc.Enrol(ctx, who)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Confirm(ctx, who, e.code(en.URI)); err != nil {
		t.Fatal(err)
	}
	e.clock.add(30 * time.Second)
	code := e.code(en.URI)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := e.svc.Login(ctx, from, accounts.LoginInput{Tenant: "acme", Username: "olivia", Password: ownerPass, Code: code})
			errs <- err
		}()
	}
	ok, refused := 0, 0
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, accounts.ErrInvalidCode):
			refused++
		default:
			t.Fatalf("login: %v", err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("%d logins succeeded and %d were refused with one code; want 1 and 1", ok, refused)
	}
}
