package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

const (
	peoplePass = "correct horse battery staple"
	otherPass  = "tide pool lantern quarry"
)

var operatorPrincipal = audit.Principal{Kind: audit.ActorOperator, ID: "operator"}

// totpCode is the current TOTP code of an otpauth URI's secret.
func totpCode(tb testing.TB, uri string, at time.Time) string {
	tb.Helper()
	k, err := otp.NewKeyFromURL(uri)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := pqtotp.GenerateCodeCustom(k.Secret(), at, pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// user makes a user of tenant through the service, as by is.
func (e *env) user(tb testing.TB, by audit.Principal, tenant, username, role string) accounts.User {
	tb.Helper()
	u, err := e.accounts.CreateUser(context.Background(), by, tenant, accounts.CreateUserInput{Username: username, Password: peoplePass, Role: role})
	if err != nil {
		tb.Fatalf("create user %s: %v", username, err)
	}
	return u
}

// session logs a user in through the service.
func (e *env) session(tb testing.TB, tenant, username string) accounts.Grant {
	tb.Helper()
	g, err := e.accounts.Login(context.Background(), audit.Principal{RequestID: "setup"}, accounts.LoginInput{Tenant: tenant, Username: username, Password: peoplePass})
	if err != nil {
		tb.Fatalf("login %s: %v", username, err)
	}
	return g
}

// enrolled logs in a user whose role requires MFA and enrols it: the
// session's access token is then a full one. It returns the grant and the
// otpauth URI.
func (e *env) enrolled(tb testing.TB, tenant, username string) (accounts.Grant, string) {
	tb.Helper()
	ctx := context.Background()
	g := e.session(tb, tenant, username)
	res, err := e.accounts.Resolve(ctx, g.AccessToken)
	if err != nil {
		tb.Fatal(err)
	}
	en, err := e.accounts.Enrol(ctx, res.Principal)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := e.accounts.Confirm(ctx, res.Principal, totpCode(tb, en.URI, time.Now())); err != nil {
		tb.Fatal(err)
	}
	return g, en.URI
}

func bearer(token string) reqOpt { return withHeader("Authorization", "Bearer "+token) }

// tokens is a login's answer, decoded as the client decodes it.
type tokens = client.Grant

// People log in through the API: an Owner without a second factor can
// only enrol, enrols, then manages users; a user's role change and
// disable take effect on its live token; refresh rotates, reuse revokes,
// logout ends. No password, code, token or typed username reaches the
// tenant's chain.
func TestPeopleThroughTheAPI(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	// The bootstrap rule: the operator creates the first Owner, once.
	asOperator := withHeader("Authorization", "Bearer "+goodToken)
	// GET /v1/tenants/{id} tells the operator whether the rule still
	// applies (the web UI offers the bootstrap forms by it).
	bootstrapping := func() bool {
		var tn client.Tenant
		e.do("GET", "/v1/tenants/acme", "", asOperator).json(t, &tn)
		return tn.Bootstrapping
	}
	if !bootstrapping() {
		t.Fatal("a tenant without an Owner user is not shown as bootstrapping")
	}
	r := e.do("POST", "/v1/tenants/acme/users", `{"username":"Olivia","password":"`+peoplePass+`","role":"owner"}`, asOperator)
	if r.status != http.StatusCreated {
		t.Fatalf("first owner: %d %s", r.status, r.body)
	}
	if bootstrapping() {
		t.Fatal("a tenant with an Owner user is still shown as bootstrapping")
	}
	var owner accounts.User
	r.json(t, &owner)
	checkProblem(t, e.do("POST", "/v1/tenants/acme/users", `{"username":"eve","password":"`+peoplePass+`","role":"owner"}`, asOperator), http.StatusForbidden, "forbidden", "")

	login := func(body string) response {
		return e.do("POST", "/v1/auth/login", body, withoutHeader("Authorization"))
	}
	r = login(`{"tenant":"acme","username":"olivia","password":"` + peoplePass + `"}`)
	var tk tokens
	r.json(t, &tk)
	if r.status != http.StatusOK || !tk.MFAEnrolmentRequired || tk.TokenType != "Bearer" || tk.ExpiresIn < 890 || tk.ExpiresIn > 900 {
		t.Fatalf("owner login: %d %s", r.status, r.body)
	}
	// Enrolment only.
	checkProblem(t, e.do("GET", "/v1/tenants/acme/users", "", bearer(tk.AccessToken)), http.StatusForbidden, "mfa-enrolment-required", "")
	var who struct {
		Kind, ID, Tenant, Role, Session string
		MFA                             bool `json:"mfa_enrolment_required"`
	}
	e.do("GET", "/v1/auth/session", "", bearer(tk.AccessToken)).json(t, &who)
	if who.Kind != "user" || who.ID != owner.ID || who.Tenant != "acme" || who.Role != "owner" || who.Session != tk.Session || !who.MFA {
		t.Fatalf("who am I: %+v", who)
	}
	var en struct {
		URI string `json:"otpauth_uri"`
		QR  []byte `json:"qr_png"`
	}
	r = e.do("POST", "/v1/auth/mfa/enrol", "", bearer(tk.AccessToken))
	r.json(t, &en)
	if r.status != http.StatusOK || !strings.HasPrefix(en.URI, "otpauth://totp/") || string(en.QR[1:4]) != "PNG" {
		t.Fatalf("enrol: %d %.200s", r.status, r.body)
	}
	checkProblem(t, e.do("POST", "/v1/auth/mfa/confirm", `{"code":"abc"}`, bearer(tk.AccessToken)), http.StatusUnprocessableEntity, "validation", "")
	code := totpCode(t, en.URI, time.Now())
	var rc struct {
		Codes []string `json:"recovery_codes"`
	}
	r = e.do("POST", "/v1/auth/mfa/confirm", `{"code":"`+code+`"}`, bearer(tk.AccessToken))
	r.json(t, &rc)
	if r.status != http.StatusOK || len(rc.Codes) != 10 {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	// The same session is now a full one.
	if r := e.do("GET", "/v1/tenants/acme/users", "", bearer(tk.AccessToken)); r.status != http.StatusOK {
		t.Fatalf("owner lists users: %d %s", r.status, r.body)
	}
	// A second factor is now required at login; a recovery code works once.
	checkProblem(t, login(`{"tenant":"acme","username":"olivia","password":"`+peoplePass+`"}`), http.StatusUnauthorized, "mfa-required", "")
	if r := login(`{"tenant":"acme","username":"olivia","password":"` + peoplePass + `","code":"` + rc.Codes[0] + `"}`); r.status != http.StatusOK {
		t.Fatalf("recovery code: %d %s", r.status, r.body)
	}
	checkProblem(t, login(`{"tenant":"acme","username":"olivia","password":"`+peoplePass+`","code":"`+rc.Codes[0]+`"}`), http.StatusUnauthorized, "unauthorized", "")
	// Wrong password and unknown user: the same answer.
	a := login(`{"tenant":"acme","username":"olivia","password":"not the password"}`)
	b := login(`{"tenant":"acme","username":"nobody-typed-this","password":"not the password"}`)
	pa, pb := checkProblem(t, a, http.StatusUnauthorized, "unauthorized", ""), checkProblem(t, b, http.StatusUnauthorized, "unauthorized", "")
	if pa.Detail != pb.Detail {
		t.Errorf("unknown user and wrong password answer differently: %q, %q", pa.Detail, pb.Detail)
	}

	// The Owner makes a Manager; the Manager's role change and disable
	// take effect on its live token.
	r = e.do("POST", "/v1/tenants/acme/users", `{"username":"max","password":"`+otherPass+`","role":"manager"}`, bearer(tk.AccessToken))
	var max accounts.User
	r.json(t, &max)
	if r.status != http.StatusCreated || r.header.Get("Location") != "/v1/tenants/acme/users/"+max.ID {
		t.Fatalf("create manager: %d %s", r.status, r.body)
	}
	var mt tokens
	login(`{"tenant":"acme","username":"max","password":"`+otherPass+`"}`).json(t, &mt)
	if r := e.do("GET", "/v1/tenants/acme/collections", "", bearer(mt.AccessToken)); r.status != http.StatusOK {
		t.Fatalf("manager reads collections: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("POST", "/v1/tenants/acme/users", `{"username":"eve","password":"`+otherPass+`","role":"foh"}`, bearer(mt.AccessToken)), http.StatusForbidden, "forbidden", "")
	checkProblem(t, e.do("GET", "/v1/tenants/other/collections", "", bearer(mt.AccessToken)), http.StatusNotFound, "not-found", "")
	if r := e.do("PATCH", "/v1/tenants/acme/users/"+max.ID, `{"role":"read-only"}`, bearer(tk.AccessToken)); r.status != http.StatusOK {
		t.Fatalf("role change: %d %s", r.status, r.body)
	}
	e.do("GET", "/v1/auth/session", "", bearer(mt.AccessToken)).json(t, &who)
	if who.Role != "read-only" {
		t.Fatalf("after the role change the token acts as %q", who.Role)
	}
	// Refresh rotates; a spent refresh token revokes the session.
	var mt2 tokens
	e.do("POST", "/v1/auth/refresh", `{"refresh_token":"`+mt.RefreshToken+`"}`, withoutHeader("Authorization")).json(t, &mt2)
	if mt2.RefreshToken == "" || mt2.RefreshToken == mt.RefreshToken || mt2.Session != mt.Session {
		t.Fatalf("refresh: %+v", mt2)
	}
	checkProblem(t, e.do("POST", "/v1/auth/refresh", `{"refresh_token":"`+mt.RefreshToken+`"}`, withoutHeader("Authorization")), http.StatusUnauthorized, "unauthorized", "")
	checkProblem(t, e.do("GET", "/v1/auth/session", "", bearer(mt2.AccessToken)), http.StatusUnauthorized, "unauthorized", "")
	// Sessions: list, revoke; disable ends the rest.
	var mt3 tokens
	login(`{"tenant":"acme","username":"max","password":"`+otherPass+`"}`).json(t, &mt3)
	var ss struct{ Sessions []accounts.Session }
	e.do("GET", "/v1/tenants/acme/users/"+max.ID+"/sessions", "", bearer(tk.AccessToken)).json(t, &ss)
	if len(ss.Sessions) != 1 || ss.Sessions[0].ID != mt3.Session {
		t.Fatalf("sessions: %+v", ss)
	}
	if r := e.do("POST", "/v1/tenants/acme/users/"+max.ID+"/disable", "", bearer(tk.AccessToken)); r.status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", "/v1/auth/session", "", bearer(mt3.AccessToken)), http.StatusUnauthorized, "unauthorized", "")
	checkProblem(t, login(`{"tenant":"acme","username":"max","password":"`+otherPass+`"}`), http.StatusUnauthorized, "unauthorized", "")
	// A suspended tenant's users are refused on its routes (and may
	// still see who they are).
	if r := e.do("POST", "/v1/tenants/acme/suspend", "", asOperator); r.status != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/users", "", bearer(tk.AccessToken)), http.StatusForbidden, "tenant-suspended", "")
	if r := e.do("GET", "/v1/auth/session", "", bearer(tk.AccessToken)); r.status != http.StatusOK {
		t.Fatalf("who am I while suspended: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/tenants/acme/resume", "", asOperator); r.status != http.StatusOK {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}
	// An API key is bound by the table like any principal (a read-only
	// key reads no users), and has no session of its own.
	var k createdKey
	e.do("POST", "/v1/tenants/acme/apikeys", `{"name":"app","role":"foh"}`, bearer(tk.AccessToken)).json(t, &k)
	checkProblem(t, e.do("POST", "/v1/tenants/acme/users", `{"username":"eve","password":"`+otherPass+`","role":"foh"}`, bearer(k.Token)), http.StatusForbidden, "forbidden", "")
	checkProblem(t, e.do("GET", "/v1/auth/session", "", bearer(k.Token)), http.StatusForbidden, "forbidden", "")
	// The operator reads none of a tenant's people.
	checkProblem(t, e.do("GET", "/v1/tenants/acme/users", "", asOperator), http.StatusForbidden, "forbidden", "")

	// Logout.
	if r := e.do("POST", "/v1/auth/logout", "", bearer(tk.AccessToken)); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", "/v1/auth/session", "", bearer(tk.AccessToken)), http.StatusUnauthorized, "unauthorized", "")
	// The canary: nothing secret or typed in the tenant's chain.
	chain := e.chainText(t, "acme")
	for _, secret := range append([]string{peoplePass, otherPass, "nobody-typed-this", "not the password", "olivia", "Olivia", code,
		tk.AccessToken, tk.RefreshToken, mt.RefreshToken, mt2.RefreshToken, en.URI}, rc.Codes...) {
		if strings.Contains(strings.ToLower(chain), strings.ToLower(secret)) {
			t.Errorf("the chain holds %q", secret)
		}
	}
	for _, want := range []string{`"session.login"`, `"session.refresh"`, `"session.refresh_reuse"`, `"session.logout"`, `"user.disable"`, `"user.update"`, `"user.mfa_enrol"`} {
		if !strings.Contains(chain, want) {
			t.Errorf("no %s entry in the chain", want)
		}
	}
}

// chainText is every entry of a tenant's chain, one per line.
func (e *env) chainText(tb testing.TB, tenant string) string {
	tb.Helper()
	var b strings.Builder
	err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.ChainEntries([]byte(tenancy.ChainOf(tenant)), 1, func(_ uint64, _ [32]byte, data []byte) bool {
			b.Write(data)
			b.WriteByte('\n')
			return true
		})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b.String()
}
