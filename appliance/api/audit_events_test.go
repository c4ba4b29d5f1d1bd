package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/internal/tenancy"
)

// auditStep is one identity event made through the live API from its own
// source address: the request (after setup, whose entries are not the
// step's) and the one entry it must append.
type auditStep struct {
	name   string
	setup  func()
	method string
	path   string
	body   func() string // nil: none
	token  func() string // the bearer token; nil: none
	status int
	// The entry: its chain, action, outcome, actor and (when set) the
	// details' reason.
	chain           string
	action, outcome string
	actor           func() (kind, id string)
	reason          string
	then            func(r response) // reads what later steps need
}

// Acceptance 7: each identity event of issue 12 — logins (success,
// wrong password, unknown user, MFA failure, lockout), logout, session
// revocations (one, all), refresh and refresh-reuse detection, user
// create, role change, disable, enable, unlock, MFA enrolment (start,
// failed and confirmed) and reset, custom role create, SSO configuration
// change, break-glass request and approval — appends exactly one entry,
// in the right chain, naming the right actor, the request's source
// address and its request id. Then a canary scan of every entry of the
// tenant's chain and the system chain, and of both chains' export
// bundles, finds no password, TOTP or recovery code, access or refresh
// token, client secret, TOTP secret, username or typed unknown username.
func TestIdentityAuditEvents(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.withBackoff(t, shippedBackoff())
	e.mustCreate("acme", "Acme")
	f := e.withSSO(t)
	ctx := context.Background()
	const (
		ownerName   = "quillon-owner"
		managerName = "marrowby-manager"
		coraName    = "corvelle-compliance"
		unknownName = "nobody-typed-this-canary"
		wrongPass   = "wrong-password-canary"
	)
	var (
		owner, manager, cora accounts.User
		ownerTok             tokens // the Owner's session: enrolment only until confirmed
		mgrTok, mgrTok2      tokens
		enrolURI             string
		recovery             []string
		grant                struct{ ID string }
		secrets              = []string{peoplePass, otherPass, wrongPass, unknownName, ownerName, managerName, coraName, ssoSecret}
		codes                []string // six-digit secrets, matched as whole tokens
	)
	remember := func(tk tokens) { secrets = append(secrets, tk.AccessToken, tk.RefreshToken) }
	asOperator := func() string { return goodToken }
	asOwner := func() string { return ownerTok.AccessToken }
	asManager := func() string { return mgrTok.AccessToken }
	operatorActor := func() (string, string) { return audit.ActorOperator, "operator" }
	ownerActor := func() (string, string) { return audit.ActorUser, owner.ID }
	managerActor := func() (string, string) { return audit.ActorUser, manager.ID }
	text := func(s string) func() string { return func() string { return s } }
	login := func(user, pass, code string) func() string {
		return func() string {
			return js(map[string]string{"tenant": "acme", "username": user, "password": pass, "code": code})
		}
	}
	// freshCode is the owner's current TOTP code; wrongCode one that is
	// not valid now (the code of another hour, unless it happens to be
	// one of the accepted steps).
	freshCode := func() string { c := totpCode(t, enrolURI, time.Now()); codes = append(codes, c); return c }
	wrongCode := func() string {
		now := time.Now()
		valid := map[string]bool{}
		for _, d := range []time.Duration{-time.Minute, -30 * time.Second, 0, 30 * time.Second, time.Minute} {
			valid[totpCode(t, enrolURI, now.Add(d))] = true
		}
		for h := time.Hour; ; h += time.Hour {
			if c := totpCode(t, enrolURI, now.Add(h)); !valid[c] {
				codes = append(codes, c)
				return c
			}
		}
	}
	mgrLogin := func() tokens {
		var tk tokens
		r := e.call(t, f.base, "127.0.7.1", "POST", "/v1/auth/login", login(managerName, otherPass, "")())
		r.json(t, &tk)
		if r.status != http.StatusOK {
			t.Fatalf("manager login: %d %s", r.status, r.body)
		}
		remember(tk)
		return tk
	}
	users := "/v1/tenants/acme/users/"
	steps := []auditStep{
		{name: "sso configuration change", method: "PUT", path: "/v1/tenants/acme/sso", body: f.settings, token: asOperator, status: http.StatusOK,
			chain: "tenant:acme", action: "sso.configure", outcome: audit.OutcomeSuccess, actor: operatorActor},
		{name: "first owner created (bootstrap)", method: "POST", path: "/v1/tenants/acme/users", token: asOperator, status: http.StatusCreated,
			body:  text(js(map[string]string{"username": ownerName, "password": peoplePass, "role": "owner"})),
			chain: "tenant:acme", action: "user.create", outcome: audit.OutcomeSuccess, actor: operatorActor,
			then: func(r response) { r.json(t, &owner) }},
		{name: "login success", method: "POST", path: "/v1/auth/login", body: login(ownerName, peoplePass, ""), status: http.StatusOK,
			chain: "tenant:acme", action: "session.login", outcome: audit.OutcomeSuccess, actor: ownerActor,
			then: func(r response) { r.json(t, &ownerTok); remember(ownerTok) }},
		{name: "mfa enrolment start", method: "POST", path: "/v1/auth/mfa/enrol", token: asOwner, status: http.StatusOK,
			chain: "tenant:acme", action: "user.mfa_enrol_start", outcome: audit.OutcomeSuccess, actor: ownerActor,
			then: func(r response) {
				var en struct {
					URI string `json:"otpauth_uri"`
				}
				r.json(t, &en)
				enrolURI = en.URI
				u, err := url.Parse(en.URI)
				if err != nil || u.Query().Get("secret") == "" {
					t.Fatalf("otpauth URI %q: %v", en.URI, err)
				}
				secrets = append(secrets, u.Query().Get("secret"))
			}},
		{name: "mfa enrolment with a wrong code", method: "POST", path: "/v1/auth/mfa/confirm", token: asOwner, status: http.StatusUnauthorized,
			body:  func() string { return js(map[string]string{"code": wrongCode()}) },
			chain: "tenant:acme", action: "user.mfa_enrol", outcome: audit.OutcomeFailure, actor: ownerActor},
		{name: "mfa enrolment", method: "POST", path: "/v1/auth/mfa/confirm", token: asOwner, status: http.StatusOK,
			body:  func() string { return js(map[string]string{"code": freshCode()}) },
			chain: "tenant:acme", action: "user.mfa_enrol", outcome: audit.OutcomeSuccess, actor: ownerActor,
			then: func(r response) {
				var rc struct {
					Codes []string `json:"recovery_codes"`
				}
				r.json(t, &rc)
				recovery = rc.Codes
				secrets = append(secrets, rc.Codes...)
			}},
		{name: "login mfa failure", method: "POST", path: "/v1/auth/login", status: http.StatusUnauthorized,
			body:  func() string { return login(ownerName, peoplePass, wrongCode())() },
			chain: "tenant:acme", action: "session.login", outcome: audit.OutcomeFailure, actor: ownerActor, reason: "mfa_wrong_code"},
		{name: "login with a recovery code", method: "POST", path: "/v1/auth/login", status: http.StatusOK,
			body:  func() string { return login(ownerName, peoplePass, recovery[3])() },
			chain: "tenant:acme", action: "session.login", outcome: audit.OutcomeSuccess, actor: ownerActor,
			then: func(r response) { var tk tokens; r.json(t, &tk); remember(tk) }},
		{name: "user created", method: "POST", path: "/v1/tenants/acme/users", token: asOwner, status: http.StatusCreated,
			body:  text(js(map[string]string{"username": managerName, "password": otherPass, "role": "manager"})),
			chain: "tenant:acme", action: "user.create", outcome: audit.OutcomeSuccess, actor: ownerActor,
			then: func(r response) { r.json(t, &manager) }},
		{name: "login wrong password", method: "POST", path: "/v1/auth/login", body: login(managerName, wrongPass, ""), status: http.StatusUnauthorized,
			chain: "tenant:acme", action: "session.login", outcome: audit.OutcomeFailure, actor: managerActor, reason: "wrong_password"},
		{name: "login unknown user", method: "POST", path: "/v1/auth/login", body: login(unknownName, wrongPass, ""), status: http.StatusUnauthorized,
			chain: "tenant:acme", action: "session.login", outcome: audit.OutcomeFailure, reason: "unknown_user",
			actor: func() (string, string) {
				k, err := e.keys.AuditKey(ctx, "acme")
				if err != nil {
					t.Fatal(err)
				}
				return audit.ActorUser, audit.Pseudonym(k, "username", unknownName)
			}},
		{name: "refresh", method: "POST", path: "/v1/auth/refresh", status: http.StatusOK,
			setup: func() { mgrTok = mgrLogin() },
			body:  func() string { return js(map[string]string{"refresh_token": mgrTok.RefreshToken}) },
			chain: "tenant:acme", action: "session.refresh", outcome: audit.OutcomeSuccess, actor: managerActor,
			then: func(r response) { r.json(t, &mgrTok2); remember(mgrTok2) }},
		{name: "refresh-reuse detection", method: "POST", path: "/v1/auth/refresh", status: http.StatusUnauthorized,
			body:  func() string { return js(map[string]string{"refresh_token": mgrTok.RefreshToken}) },
			chain: "tenant:acme", action: "session.refresh_reuse", outcome: audit.OutcomeDenied, actor: managerActor},
		{name: "role change", method: "PATCH", path: "", token: asOwner, status: http.StatusOK, body: text(`{"role":"read-only"}`),
			chain: "tenant:acme", action: "user.update", outcome: audit.OutcomeSuccess, actor: ownerActor},
		{name: "logout", method: "POST", path: "/v1/auth/logout", token: asManager, status: http.StatusNoContent,
			setup: func() { mgrTok = mgrLogin() },
			chain: "tenant:acme", action: "session.logout", outcome: audit.OutcomeSuccess, actor: managerActor},
		{name: "logout everywhere", method: "POST", path: "/v1/auth/logout", token: asManager, status: http.StatusNoContent,
			setup: func() { mgrTok = mgrLogin(); mgrLogin() }, body: text(`{"everywhere":true}`),
			chain: "tenant:acme", action: "session.logout_all", outcome: audit.OutcomeSuccess, actor: managerActor},
		{name: "session revocation", method: "DELETE", path: "", token: asOwner, status: http.StatusNoContent,
			setup: func() { mgrTok = mgrLogin() },
			chain: "tenant:acme", action: "session.revoke", outcome: audit.OutcomeSuccess, actor: ownerActor},
		{name: "all sessions revoked", method: "DELETE", path: "", token: asOwner, status: http.StatusOK,
			setup: func() { mgrTok = mgrLogin() },
			chain: "tenant:acme", action: "session.revoke_all", outcome: audit.OutcomeSuccess, actor: ownerActor},
		{name: "user disabled", method: "POST", path: "/disable", token: asOwner, status: http.StatusOK,
			chain: "tenant:acme", action: "user.disable", outcome: audit.OutcomeSuccess, actor: ownerActor},
		{name: "user enabled", method: "POST", path: "/enable", token: asOwner, status: http.StatusOK,
			chain: "tenant:acme", action: "user.enable", outcome: audit.OutcomeSuccess, actor: ownerActor},
		{name: "lockout", method: "POST", path: "/v1/auth/login", body: login(managerName, otherPass, ""), status: http.StatusTooManyRequests,
			setup: func() {
				for i := range accountFree {
					r := e.call(t, f.base, fmt.Sprintf("127.0.7.%d", 10+i), "POST", "/v1/auth/login", login(managerName, wrongPass, "")())
					if r.status != http.StatusUnauthorized {
						t.Fatalf("guess %d: %d %s", i, r.status, r.body)
					}
				}
			},
			chain: "tenant:acme", action: "session.login", outcome: audit.OutcomeDenied, actor: managerActor, reason: "backoff"},
		{name: "admin unlock", method: "POST", path: "/unlock", token: asOwner, status: http.StatusOK,
			chain: "tenant:acme", action: "user.unlock", outcome: audit.OutcomeSuccess, actor: ownerActor},
		{name: "mfa reset", method: "POST", path: "/reset-mfa", token: asOwner, status: http.StatusOK,
			setup: func() {
				cora = e.user(t, audit.Principal{Kind: audit.ActorUser, ID: owner.ID, Tenant: "acme", Role: "owner"}, "acme", coraName, "compliance")
				g, _ := e.enrolled(t, "acme", coraName)
				remember(tokens{AccessToken: g.AccessToken, RefreshToken: g.RefreshToken})
			},
			chain: "tenant:acme", action: "user.mfa_reset", outcome: audit.OutcomeSuccess, actor: ownerActor},
		{name: "custom role created", method: "POST", path: "/v1/tenants/acme/roles", token: asOwner, status: http.StatusCreated,
			body:  text(`{"name":"night-desk","permissions":["records:read"],"visibility":{"pii":"masked","sensitive":"none","internal":"clear"}}`),
			chain: "tenant:acme", action: "role.create", outcome: audit.OutcomeSuccess, actor: ownerActor},
		{name: "break-glass request", method: "POST", path: "/v1/tenants/acme/breakglass", token: asOperator, status: http.StatusCreated,
			body:  text(`{"reason":"support case 7"}`),
			chain: "tenant:acme", action: "breakglass.request", outcome: audit.OutcomeSuccess, actor: operatorActor,
			then: func(r response) { r.json(t, &grant) }},
		{name: "break-glass approval", method: "POST", path: "", token: asOwner, status: http.StatusOK,
			chain: "tenant:acme", action: "breakglass.approve", outcome: audit.OutcomeSuccess, actor: ownerActor},
	}
	// Paths that name what earlier steps made.
	pathOf := func(s auditStep) string {
		switch s.name {
		case "role change":
			return users + manager.ID
		case "session revocation":
			return users + manager.ID + "/sessions/" + mgrTok.Session
		case "all sessions revoked":
			return users + manager.ID + "/sessions"
		case "user disabled", "user enabled", "admin unlock":
			return users + manager.ID + s.path
		case "mfa reset":
			return users + cora.ID + s.path
		case "break-glass approval":
			return "/v1/tenants/acme/breakglass/" + grant.ID + "/approve"
		}
		return s.path
	}
	chains := []string{tenancy.SystemChain, tenancy.ChainOf("acme")}
	for i, s := range steps {
		if s.setup != nil {
			s.setup()
		}
		before := map[string]int{}
		for _, c := range chains {
			before[c] = len(e.chainEntries(t, c))
		}
		src := fmt.Sprintf("127.0.6.%d", i+1)
		var body string
		if s.body != nil {
			body = s.body()
		}
		var opts []reqOpt
		if s.token != nil {
			opts = append(opts, bearer(s.token()))
		}
		r := e.call(t, f.base, src, s.method, pathOf(s), body, opts...)
		if r.status != s.status {
			t.Fatalf("%s: %d %s", s.name, r.status, r.body)
		}
		var found []audit.Entry
		var where []string
		for _, c := range chains {
			for _, en := range e.chainEntries(t, c)[before[c]:] {
				if en.Action == s.action {
					found = append(found, en)
					where = append(where, c)
				}
			}
		}
		if len(found) != 1 {
			t.Errorf("%s: %d %s entries (in %v), want 1: %+v", s.name, len(found), s.action, where, found)
			continue
		}
		en := found[0]
		kind, id := s.actor()
		if where[0] != s.chain || en.Outcome != s.outcome || en.Actor.Type != kind || en.Actor.ID != id ||
			en.Source != src || en.RequestID == "" || en.RequestID != r.header.Get("X-Request-Id") || (s.reason != "" && en.Details["reason"] != s.reason) {
			t.Errorf("%s: entry in %s %+v; want %s %s by %s %s from %s, request %s, reason %q", s.name, where[0], en, s.chain, s.outcome, kind, id, src, r.header.Get("X-Request-Id"), s.reason)
		}
		if s.then != nil {
			s.then(r)
		}
	}

	// The canary scan: every entry of both chains, and both exports.
	var entries, exported []string
	for _, c := range chains {
		for _, en := range e.chainEntries(t, c) {
			b, err := en.Encode()
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, string(b))
		}
	}
	for _, ex := range []struct{ path, token string }{{"/v1/sys/audit/export", goodToken}, {"/v1/tenants/acme/audit/export", ownerTok.AccessToken}} {
		r := e.call(t, f.base, "127.0.0.9", "GET", ex.path, "", bearer(ex.token))
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", ex.path, r.status, r.body)
		}
		for _, m := range gunzipTar(t, r.body) {
			exported = append(exported, string(m))
		}
	}
	// Not blind: the scan reads both chains and both exports (the
	// break-glass reason, which the tenant is meant to read, is in the
	// tenant's entries and its export; tenant.create in the system's).
	count := func(in []string, x string) (n int) {
		for _, s := range in {
			n += strings.Count(s, x)
		}
		return n
	}
	inEntries, inExports, systemSeen := count(entries, "support case 7"), count(exported, "support case 7"), count(exported, `"tenant.create"`)
	if inEntries == 0 || inExports == 0 || systemSeen == 0 {
		t.Fatalf("the scan is blind: reason in %d entries, %d export members; tenant.create exported %d times", inEntries, inExports, systemSeen)
	}
	if len(codes) < 3 || len(recovery) != 10 {
		t.Fatalf("the scan would be blind: %d codes, %d recovery codes", len(codes), len(recovery))
	}
	for _, x := range secrets {
		if x == "" {
			t.Fatal("an empty canary")
		}
	}
	wordCodes := make([]*regexp.Regexp, len(codes))
	for i, c := range codes {
		wordCodes[i] = regexp.MustCompile(`(^|[^0-9A-Za-z])` + c + `($|[^0-9A-Za-z])`)
	}
	for _, s := range append(entries, exported...) {
		low := strings.ToLower(s)
		for _, x := range secrets {
			if strings.Contains(low, strings.ToLower(x)) {
				t.Errorf("the audit trail holds %.40q: %.300s", x, s)
			}
		}
		for i, re := range wordCodes {
			if re.MatchString(s) {
				t.Errorf("the audit trail holds the code %s: %.300s", codes[i], s)
			}
		}
	}
}
