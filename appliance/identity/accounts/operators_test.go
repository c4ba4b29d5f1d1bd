package accounts_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

const opPass = "granite lighthouse orbit saffron"

// systemEntries are the system chain's entries.
func (e *env) systemEntries() []audit.Entry {
	e.t.Helper()
	return e.chainEntries([]byte(tenancy.SystemChain))
}

// rawOperators is every byte of the operators' realm and the system
// chain: for canary scans.
func (e *env) rawOperators() string {
	e.t.Helper()
	var buckets [][][]byte
	for _, name := range []string{"users", "users_by_name", "users_meta", "sessions", "session_tokens", "refresh"} {
		buckets = append(buckets, raftstore.Path("operators", name))
	}
	return e.rawOf([]byte(tenancy.SystemChain), buckets)
}

// Operator users: created by an operator (the root token) in the
// operators' realm, Kind operator with their own id, the Operator role;
// a login without a tenant gets a session that can only enrol until TOTP
// is enrolled; then a code is required; refresh, list, get, reset, unlock,
// disable (refused at once) and logout work as for a tenant's users, every
// event in the system chain (none in a tenant's) without a username,
// password or code; a tenant's principal manages no operator, and the two
// realms do not see each other's people.
func TestOperatorUsers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	root := operator
	ada, err := e.svc.CreateUser(ctx, root, accounts.OperatorRealm, accounts.CreateUserInput{Username: "Ada@Ops.example", Password: opPass})
	if err != nil {
		t.Fatal(err)
	}
	if !accounts.ValidOperatorID(ada.ID) || accounts.ValidUserID(ada.ID) || ada.Role != accounts.OperatorRole || ada.Tenant != "" || ada.MFA != accounts.MFANone {
		t.Fatalf("operator user %+v", ada)
	}
	for _, c := range []struct {
		who  audit.Principal
		in   accounts.CreateUserInput
		want error
	}{
		{member(e), accounts.CreateUserInput{Username: "eve", Password: opPass}, accounts.ErrForbidden},
		{root, accounts.CreateUserInput{Username: "ada@ops.EXAMPLE", Password: opPass}, accounts.ErrExists},
		{root, accounts.CreateUserInput{Username: "bob", Password: opPass, Role: "owner"}, accounts.ErrRoleNotFound},
		{root, accounts.CreateUserInput{Username: "bob", Password: opPass, Scopes: map[string][]string{"property": {"villa-a"}}}, validation.ErrInvalid},
	} {
		if _, err := e.svc.CreateUser(ctx, c.who, accounts.OperatorRealm, c.in); !errors.Is(err, c.want) {
			t.Errorf("create %+v by %s: %v, want %v", c.in, c.who.Kind, err, c.want)
		}
	}
	// The realms are apart: the operator's username is nobody in a
	// tenant, and a tenant's Owner is nobody among operators.
	if _, err := e.svc.CreateUser(ctx, root, "acme", accounts.CreateUserInput{Username: "olivia", Password: ownerPass, Role: "owner"}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []accounts.LoginInput{
		{Tenant: "acme", Username: "ada@ops.example", Password: opPass},
		{Username: "olivia", Password: ownerPass},
		{Username: "ada@ops.example", Password: "not the password at all"},
		{Username: "nobody-typed-this-op", Password: opPass},
	} {
		if _, err := e.svc.Login(ctx, from, in); !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Errorf("login %q in %q: %v", in.Username, in.Tenant, err)
		}
	}
	// MFA is mandatory for the Operator role: enrolment only.
	g, err := e.svc.Login(ctx, from, accounts.LoginInput{Username: "ADA@ops.example", Password: opPass})
	if err != nil || !g.EnrolmentOnly || g.Session.Tenant != "" {
		t.Fatalf("login: %+v %v", g, err)
	}
	res, err := e.svc.Resolve(ctx, g.AccessToken)
	if err != nil || !res.EnrolmentOnly || res.Principal.Kind != audit.ActorOperator || res.Principal.ID != ada.ID ||
		res.Principal.Tenant != "" || res.Role.Name() != "operator" || !res.Role.ClusterWide() || res.Suspended {
		t.Fatalf("resolve: %+v %v", res, err)
	}
	who := res.Principal
	who.RequestID, who.Source = "req-op-enrol", "192.0.2.9"
	en, err := e.svc.Enrol(ctx, who)
	if err != nil || !strings.HasPrefix(en.URI, "otpauth://totp/") {
		t.Fatalf("enrol: %v", err)
	}
	wrong := "000000"
	if e.code(en.URI) == wrong {
		wrong = "000001"
	}
	if _, err := e.svc.Confirm(ctx, who, wrong); !errors.Is(err, accounts.ErrInvalidCode) {
		t.Fatalf("a wrong confirmation code: %v", err)
	}
	if codes, err := e.svc.Confirm(ctx, who, e.code(en.URI)); err != nil || len(codes) != 10 {
		t.Fatalf("confirm: %v", err)
	}
	if res, err := e.svc.Resolve(ctx, g.AccessToken); err != nil || res.EnrolmentOnly {
		t.Fatalf("after enrolment: %+v %v", res, err)
	}
	e.clock.add(30 * time.Second)
	if _, err := e.svc.Login(ctx, from, accounts.LoginInput{Username: "ada@ops.example", Password: opPass}); !errors.Is(err, accounts.ErrMFARequired) {
		t.Fatalf("no code: %v", err)
	}
	code := e.code(en.URI)
	g2, err := e.svc.Login(ctx, from, accounts.LoginInput{Username: "ada@ops.example", Password: opPass, Code: code})
	if err != nil || g2.EnrolmentOnly {
		t.Fatalf("login with a code: %+v %v", g2, err)
	}
	// Refresh finds the operators' realm through the refresh index.
	g3, err := e.svc.Refresh(ctx, from, g2.RefreshToken)
	if err != nil || g3.Session.ID != g2.Session.ID {
		t.Fatalf("refresh: %+v %v", g3, err)
	}
	// Reads: an operator lists and gets operators; a tenant's principal
	// does not; a tenant's list holds no operator.
	list, err := e.svc.ListUsers(ctx, root, accounts.OperatorRealm)
	if err != nil || len(list) != 1 || list[0].ID != ada.ID || list[0].Username != "Ada@Ops.example" || list[0].MFA != accounts.MFAActive {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := e.svc.ListUsers(ctx, member(e), accounts.OperatorRealm); !errors.Is(err, accounts.ErrForbidden) {
		t.Fatalf("a tenant's principal lists operators: %v", err)
	}
	if _, err := e.svc.GetUser(ctx, who, accounts.OperatorRealm, ada.ID); err != nil {
		t.Fatalf("get: %v", err)
	}
	if _, err := e.svc.GetUser(ctx, root, accounts.OperatorRealm, "usr_aaaaaaaaaaaaaaaa"); !errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("a tenant user's id among operators: %v", err)
	}
	if tl, err := e.svc.ListUsers(ctx, member(e), "acme"); err != nil || len(tl) != 1 || tl[0].ID == ada.ID {
		t.Fatalf("tenant list: %+v %v", tl, err)
	}
	// An operator does not disable itself; unlock and reset are audited.
	if _, err := e.svc.SetDisabled(ctx, who, accounts.OperatorRealm, ada.ID, true); !errors.Is(err, accounts.ErrForbidden) {
		t.Fatalf("disabling oneself: %v", err)
	}
	if _, err := e.svc.Unlock(ctx, root, accounts.OperatorRealm, ada.ID); err != nil {
		t.Fatal(err)
	}
	if u, err := e.svc.ResetMFA(ctx, root, accounts.OperatorRealm, ada.ID); err != nil || u.MFA != accounts.MFANone {
		t.Fatalf("reset: %+v %v", u, err)
	}
	if res, err := e.svc.Resolve(ctx, g2.AccessToken); err != nil || !res.EnrolmentOnly {
		t.Fatalf("after a reset the session can only enrol: %+v %v", res, err)
	}
	// Logout ends one session; disabling ends the rest at once.
	if err := e.svc.Logout(ctx, who); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Resolve(ctx, g.AccessToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("after logout: %v", err)
	}
	if _, err := e.svc.SetDisabled(ctx, root, accounts.OperatorRealm, ada.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Resolve(ctx, g2.AccessToken); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("a disabled operator's session: %v", err)
	}
	if _, err := e.svc.Login(ctx, from, accounts.LoginInput{Username: "ada@ops.example", Password: opPass}); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Fatalf("a disabled operator logs in: %v", err)
	}
	if _, err := e.svc.SetDisabled(ctx, root, accounts.OperatorRealm, ada.ID, false); err != nil {
		t.Fatal(err)
	}
	// Audit: each event in the system chain, by the right actor, none in
	// the tenant's chain.
	es := e.systemEntries()
	for _, c := range []struct {
		action, outcome string
		n               int
	}{
		{"user.create", audit.OutcomeSuccess, 1},
		{"session.login", audit.OutcomeSuccess, 2},
		{"session.login", audit.OutcomeFailure, 4}, // two unknown usernames, a wrong password, disabled
		{"user.mfa_enrol", audit.OutcomeFailure, 1},
		{"user.mfa_enrol_start", audit.OutcomeSuccess, 1},
		{"user.mfa_enrol", audit.OutcomeSuccess, 1},
		{"session.refresh", audit.OutcomeSuccess, 1},
		{"user.unlock", audit.OutcomeSuccess, 1},
		{"user.mfa_reset", audit.OutcomeSuccess, 1},
		{"session.logout", audit.OutcomeSuccess, 1},
		{"user.disable", audit.OutcomeSuccess, 1},
		{"user.enable", audit.OutcomeSuccess, 1},
	} {
		if n := count(es, c.action, c.outcome); n != c.n {
			t.Errorf("system chain: %d %s/%s, want %d", n, c.action, c.outcome, c.n)
		}
	}
	for _, en := range es {
		if en.Action == "session.login" && en.Outcome == audit.OutcomeSuccess && (en.Actor.Type != audit.ActorOperator || en.Actor.ID != ada.ID) {
			t.Errorf("login entry's actor %+v", en.Actor)
		}
		if en.Details["reason"] == "unknown_user" && !strings.HasPrefix(en.Actor.ID, "username:h:") {
			t.Errorf("unknown operator named %q", en.Actor.ID)
		}
	}
	for _, en := range e.entries("acme") {
		if strings.Contains(en.Target, ada.ID) || en.Actor.ID == ada.ID {
			t.Errorf("an operator's event in the tenant's chain: %+v", en)
		}
	}
	canary(t, e.rawOperators(), "ada@ops.example", opPass, "not the password at all", "nobody-typed-this-op", code)
}

// A sealed node holds no cluster key: it cannot log an operator in, nor
// create one (a *keyring.UnavailableError, the API's 503).
func TestOperatorLoginSealed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.CreateUser(ctx, operator, accounts.OperatorRealm, accounts.CreateUserInput{Username: "ada", Password: opPass}); err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	o := e.opts
	o.Keys = keyring.NewHierarchy(e.b, keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, System: audit.System(), Pseudonym: audit.Pseudonym})
	sealed, err := accounts.New(e.b, o)
	if err != nil {
		t.Fatal(err)
	}
	var ue *keyring.UnavailableError
	if _, err := sealed.Login(ctx, from, accounts.LoginInput{Username: "ada", Password: opPass}); !errors.As(err, &ue) {
		t.Fatalf("login on a sealed node: %v", err)
	}
	if _, err := sealed.CreateUser(ctx, operator, accounts.OperatorRealm, accounts.CreateUserInput{Username: "bob", Password: opPass}); !errors.As(err, &ue) {
		t.Fatalf("create on a sealed node: %v", err)
	}
}
