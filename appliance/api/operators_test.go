package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
)

// opName is an operator's username: long enough that finding it in the
// chain is not a coincidence of random bytes.
const opName = "Ada.Lovelace@ops.example"

// Operator users through the API: the root token creates one (no tenant
// principal can); it logs in without a tenant to a session that can only
// enrol, enrols, then logs in with a code and reaches the cluster's
// routes and manages operators; it reads no tenant's record without a
// break-glass grant of its own and reads it in clear under one the
// tenant's Owner approved; disabled, its token is refused on the next
// request. Each event is in the system chain, naming it, with no
// username, password, code or token.
func TestOperatorUsersThroughTheAPI(t *testing.T) {
	b := newBGEnv(t)
	e := b.e
	noAuth := withoutHeader("Authorization")
	login := func(body string) response { return e.do("POST", "/v1/auth/login", body, noAuth) }
	create := `{"username":"` + opName + `","password":"` + peoplePass + `"}`

	r := e.do("POST", "/v1/sys/operators", create, asOperator())
	var ada accounts.User
	r.json(t, &ada)
	if r.status != http.StatusCreated || r.header.Get("Location") != "/v1/sys/operators/"+ada.ID || !accounts.ValidOperatorID(ada.ID) ||
		ada.Role != "operator" || ada.Tenant != "" || ada.Username != opName {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("POST", "/v1/sys/operators", create, asOperator()), http.StatusConflict, "conflict", "")
	checkProblem(t, e.do("POST", "/v1/sys/operators", `{"username":"eve","password":"`+peoplePass+`"}`, as(b.owner)), http.StatusForbidden, "forbidden", "")
	checkProblem(t, e.do("GET", "/v1/sys/operators", "", as(b.owner)), http.StatusForbidden, "forbidden", "")

	// No tenant: the operators' realm. With a tenant, the name is nobody.
	checkProblem(t, login(`{"tenant":"acme","username":"`+opName+`","password":"`+peoplePass+`"}`), http.StatusUnauthorized, "unauthorized", "")
	var tk tokens
	r = login(`{"username":"ada.lovelace@OPS.example","password":"` + peoplePass + `"}`)
	r.json(t, &tk)
	if r.status != http.StatusOK || !tk.MFAEnrolmentRequired {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", "/v1/sys/status", "", bearer(tk.AccessToken)), http.StatusForbidden, "mfa-enrolment-required", "")
	var who struct {
		Kind, ID, Tenant, Role, Session string
		MFA                             bool `json:"mfa_enrolment_required"`
	}
	e.do("GET", "/v1/auth/session", "", bearer(tk.AccessToken)).json(t, &who)
	if who.Kind != audit.ActorOperator || who.ID != ada.ID || who.Tenant != "" || who.Role != "operator" || who.Session != tk.Session || !who.MFA {
		t.Fatalf("who am I: %+v", who)
	}
	var en struct {
		URI string `json:"otpauth_uri"`
	}
	if r := e.do("POST", "/v1/auth/mfa/enrol", "", bearer(tk.AccessToken)); r.status != http.StatusOK {
		t.Fatalf("enrol: %d %s", r.status, r.body)
	} else {
		r.json(t, &en)
	}
	code := totpCode(t, en.URI, time.Now())
	var rc struct {
		Codes []string `json:"recovery_codes"`
	}
	if r := e.do("POST", "/v1/auth/mfa/confirm", `{"code":"`+code+`"}`, bearer(tk.AccessToken)); r.status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	} else {
		r.json(t, &rc)
	}
	if r := e.do("GET", "/v1/sys/status", "", bearer(tk.AccessToken)); r.status != http.StatusOK {
		t.Fatalf("the enrolled session reads the cluster's status: %d %s", r.status, r.body)
	}
	// From now on a login needs a code (the next step's: the confirmed one
	// is spent).
	pass := `{"username":"` + opName + `","password":"` + peoplePass + `"`
	checkProblem(t, login(pass+`}`), http.StatusUnauthorized, "mfa-required", "")
	code2 := totpCode(t, en.URI, time.Now().Add(30*time.Second))
	var full tokens
	r = login(pass + `,"code":"` + code2 + `"}`)
	r.json(t, &full)
	if r.status != http.StatusOK || full.MFAEnrolmentRequired {
		t.Fatalf("login with a code: %d %s", r.status, r.body)
	}
	op := bearer(full.AccessToken)
	var list struct{ Users []accounts.User }
	e.do("GET", "/v1/sys/operators", "", op).json(t, &list)
	if len(list.Users) != 1 || list.Users[0].ID != ada.ID || list.Users[0].MFA != accounts.MFAActive {
		t.Fatalf("list: %+v", list)
	}
	if r := e.do("GET", "/v1/sys/operators/"+ada.ID, "", op); r.status != http.StatusOK {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", "/v1/sys/operators/op_aaaaaaaaaaaaaaaa", "", op), http.StatusNotFound, "not-found", "")
	if r := e.do("POST", "/v1/sys/operators", `{"username":"grace","password":"`+otherPass+`"}`, op); r.status != http.StatusCreated {
		t.Fatalf("an operator user creates an operator: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("POST", "/v1/sys/operators/"+ada.ID+"/disable", "", op), http.StatusForbidden, "forbidden", "")

	// Bound by the Operator role as the root token is: no record field
	// without its own grant; in clear under one the Owner approved.
	record := "/v1/tenants/acme/collections/guests/records/" + aRecord
	p := checkProblem(t, e.do("GET", record, "", op), http.StatusForbidden, "forbidden", "")
	if !strings.Contains(p.Detail, "break-glass") {
		t.Errorf("refusal %q", p.Detail)
	}
	var g grantView
	r = e.do("POST", "/v1/tenants/acme/breakglass", `{"reason":"ticket 4712","duration_seconds":600}`, op)
	r.json(t, &g)
	if r.status != http.StatusCreated || g.State != "pending" || g.Operator != ada.ID {
		t.Fatalf("request: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", record, "", op), http.StatusForbidden, "forbidden", "")
	if r := e.do("POST", "/v1/tenants/acme/breakglass/"+g.ID+"/approve", "", as(b.owner)); r.status != http.StatusOK {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	if r := e.do("GET", record, "", op); r.status != http.StatusOK || !strings.Contains(string(r.body), bgCanaryEmail) {
		t.Fatalf("the record under the operator's grant: %d %s", r.status, r.body)
	}
	// The grant is the operator user's, not the root token's.
	checkProblem(t, e.do("GET", record, "", asOperator()), http.StatusForbidden, "forbidden", "")

	// Disabled: refused on the next request, and at login.
	if r := e.do("POST", "/v1/sys/operators/"+ada.ID+"/disable", "", asOperator()); r.status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", "/v1/sys/status", "", op), http.StatusUnauthorized, "unauthorized", "")
	checkProblem(t, login(pass+`,"code":"`+rc.Codes[0]+`"}`), http.StatusUnauthorized, "unauthorized", "")
	for _, action := range []string{"enable", "reset-mfa", "unlock"} {
		if r := e.do("POST", "/v1/sys/operators/"+ada.ID+"/"+action, "", asOperator()); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", action, r.status, r.body)
		}
	}

	// The system chain: each event once, naming the operator user; no
	// secret or typed name anywhere in it.
	acts := map[string]int{}
	for _, en := range e.chainEntries(t, tenancy.SystemChain) {
		if en.Target == "user:"+ada.ID || en.Actor.ID == ada.ID {
			acts[en.Action+"/"+en.Outcome]++
		}
		if en.Action == "session.login" && en.Outcome == audit.OutcomeSuccess && (en.Actor.Type != audit.ActorOperator || en.Actor.ID != ada.ID) {
			t.Errorf("a login names %+v", en.Actor)
		}
	}
	for _, want := range []string{"user.create/success", "session.login/success", "user.mfa_enrol_start/success", "user.mfa_enrol/success",
		"user.disable/success", "session.login/failure", "user.enable/success", "user.mfa_reset/success", "user.unlock/success"} {
		if acts[want] == 0 {
			t.Errorf("no %s entry about the operator user in the system chain (%v)", want, acts)
		}
	}
	chain := e.systemChainText(t)
	for _, secret := range append([]string{opName, strings.ToLower(opName), peoplePass, otherPass, code, code2, tk.AccessToken, tk.RefreshToken, full.AccessToken, full.RefreshToken, en.URI, "grace"}, rc.Codes...) {
		if strings.Contains(strings.ToLower(chain), strings.ToLower(secret)) {
			t.Errorf("the system chain holds %q", secret)
		}
	}
}

// systemChainText is every entry of the system chain, one per line.
func (e *env) systemChainText(tb testing.TB) string {
	tb.Helper()
	var b strings.Builder
	for _, en := range e.chainEntries(tb, tenancy.SystemChain) {
		raw, err := en.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		b.Write(raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// A sealed node cannot log an operator in: 503 key-unavailable, as every
// route that needs a key it cannot have.
func TestOperatorLoginOnASealedNode(t *testing.T) {
	e := newEnv(t, api.Options{})
	if r := e.do("POST", "/v1/sys/operators", `{"username":"ada","password":"`+peoplePass+`"}`); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	sealed := keyring.NewHierarchy(tenancy.New(e.store), keyring.HierarchyOptions{Seal: []age.Recipient{e.seal.Recipient()}, System: audit.System(), Pseudonym: audit.Pseudonym})
	people, err := accounts.New(tenancy.New(e.store), accounts.Options{Keys: sealed, Hasher: testHasher(t), Signer: e.signer})
	if err != nil {
		t.Fatal(err)
	}
	deps := e.depsWith(sealed)
	deps.Accounts = people
	app := e.server(deps, api.Options{})
	r := doOn(t, app, "POST", "/v1/auth/login", `{"username":"ada","password":"`+peoplePass+`"}`, withoutHeader("Authorization"))
	checkProblem(t, r, http.StatusServiceUnavailable, "key-unavailable", "")
	checkProblem(t, doOn(t, app, "GET", "/v1/sys/operators", ""), http.StatusServiceUnavailable, "key-unavailable", "")
}
