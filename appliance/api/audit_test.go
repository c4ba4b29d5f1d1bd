package api_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

// chainSizes is the size of every chain.
func (e *env) chainSizes() map[string]uint64 {
	e.t.Helper()
	m := map[string]uint64{}
	err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.Chains(func(name []byte, size uint64) bool {
			m[string(name)] = size
			return true
		})
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// TestEveryMutatingRouteIsAudited walks the route table: every route that
// changes something must have a case here, and each case must append at
// least one audit entry. A new mutating route without one fails this test.
func TestEveryMutatingRouteIsAudited(t *testing.T) {
	e := newEnv(t, api.Options{})
	if r := e.do("POST", "/v1/tenants", `{"id":"walk","display_name":"Walk"}`); r.status != http.StatusCreated {
		t.Fatalf("setup: %d %s", r.status, r.body)
	}
	k, _, err := e.apikeys.Create(context.Background(), audit.System(), "walk", apikeys.CreateInput{Name: "to delete", Permissions: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	walkKey := k.ID
	// Fixtures for the record routes (the walk's order is fiber's).
	if r := e.do("PUT", "/v1/tenants/walk/collections/guests", `{"fields":[{"name":"email","type":"string","classification":"pii","index":true}]}`); r.status != http.StatusCreated {
		t.Fatalf("setup collection: %d %s", r.status, r.body)
	}
	for _, id := range []string{"walk-r0", "walk-r2"} {
		if r := e.do("POST", "/v1/tenants/walk/collections/guests/records", `{"id":"`+id+`","fields":{"email":"a@b.c"}}`); r.status != http.StatusCreated {
			t.Fatalf("setup record: %d %s", r.status, r.body)
		}
	}
	// Data-subject requests: one to reject, and a verified rectification
	// of a record of its subject to apply.
	if r := e.do("POST", "/v1/tenants/walk/collections/guests/records", `{"id":"walk-r3","subject":"walk-sub","fields":{"email":"a@b.c"}}`); r.status != http.StatusCreated {
		t.Fatalf("setup record: %d %s", r.status, r.body)
	}
	var toReject, toRectify struct{ ID string }
	e.do("POST", "/v1/tenants/walk/requests", `{"kind":"access","subject":"walk-sub"}`).json(t, &toReject)
	e.do("POST", "/v1/tenants/walk/requests", `{"kind":"rectification","subject":"walk-sub","rectification":{"collection":"guests","record":"walk-r3","fields":{"email":"x@y.z"}}}`).json(t, &toRectify)
	if r := e.do("POST", "/v1/tenants/walk/requests/"+toRectify.ID+"/transition", `{"to":"verified","evidence":{"method":"document","text":"passport seen"}}`); r.status != http.StatusOK {
		t.Fatalf("setup request: %d %s", r.status, r.body)
	}
	up := e.do("POST", "/v1/tenants/walk/blobs?subject=walk-s", "a recording", withHeader("Content-Type", "audio/wav"))
	if up.status != http.StatusCreated {
		t.Fatalf("setup blob: %d %s", up.status, up.body)
	}
	var blob struct{ ID string }
	up.json(t, &blob)
	// A purpose the consent routes grant, withdraw and change.
	if r := e.do("POST", "/v1/tenants/walk/purposes", `{"id":"walk-q","description":"Walk","basis":"consent","on_withdraw":"erase"}`); r.status != http.StatusCreated {
		t.Fatalf("setup purpose: %d %s", r.status, r.body)
	}
	var toApprove, toRevoke struct{ ID string }
	e.do("POST", "/v1/tenants/walk/breakglass", `{"reason":"a support case"}`).json(t, &toApprove)
	e.do("POST", "/v1/tenants/walk/breakglass", `{"reason":"another support case"}`).json(t, &toRevoke)
	// Single sign-on: walk's settings (tested, then replaced), a sign-in
	// of walk's to complete, and walk3's settings to delete (the walk
	// deletes before it tests).
	f := e.withSSO(t)
	e.mustCreate("walk3", "Walk 3")
	f.configure(t, e, "walk")
	f.configure(t, e, "walk3")
	relay := f.cliSignIn(t, e, "walk", "alice")
	// People: the Owner (enrolled), a Manager with sessions, a user to
	// change, users of a role that requires MFA who have not enrolled
	// (enrol) and who have started (confirm).
	// The bootstrap Owner key first: once the tenant has an Owner user,
	// the operator mints no keys.
	walkOwnerKey := e.ownerKey("walk")
	owner := e.user(t, operatorPrincipal, "walk", "olivia", "owner")
	og, _ := e.enrolled(t, "walk", "olivia")
	ownerP := audit.Principal{Kind: audit.ActorUser, ID: owner.ID, Tenant: "walk", Role: "owner"}
	max := e.user(t, ownerP, "walk", "max", "manager")
	maxRefresh, maxLogout := e.session(t, "walk", "max"), e.session(t, "walk", "max")
	dora := e.user(t, ownerP, "walk", "dora", "foh")
	doraSession := e.session(t, "walk", "dora")
	e.user(t, ownerP, "walk", "cora", "compliance")
	cora := e.session(t, "walk", "cora")
	e.user(t, ownerP, "walk", "nina", "compliance")
	nina := e.session(t, "walk", "nina")
	ninaP, err := e.accounts.Resolve(context.Background(), nina.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	en, err := e.accounts.Enrol(context.Background(), ninaP.Principal)
	if err != nil {
		t.Fatal(err)
	}
	walker := e.user(t, ownerP, "walk", "walker", "foh")
	users := "/v1/tenants/walk/users/"
	// An operator user the walk changes (the root token does).
	var ada struct{ ID string }
	if r := e.do("POST", "/v1/sys/operators", `{"username":"ada","password":"`+peoplePass+`"}`); r.status != http.StatusCreated {
		t.Fatalf("setup operator: %d %s", r.status, r.body)
	} else {
		r.json(t, &ada)
	}
	ops := "/v1/sys/operators/" + ada.ID
	// An open regeneration of the root token, answered by the walk; the
	// token it makes is then revoked.
	nonce := e.rootNonce()
	// A verified erasure request of a subject of walk's (holding nothing:
	// the walk's other cases keep their data).
	rq := requests.New(tenancy.New(e.store), e.keys)
	toErase, err := rq.Create(context.Background(), operatorPrincipal, "walk", requests.Input{Kind: requests.Erasure, Subject: "walk-erased"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rq.Transition(context.Background(), operatorPrincipal, "walk", toErase.ID, requests.TransitionInput{To: requests.Verified, Evidence: &requests.Evidence{Method: "document", Text: "checked"}}); err != nil {
		t.Fatal(err)
	}
	// A verified access request of walk, which the walk's export answers.
	access, err := rq.Create(context.Background(), ownerP, "walk", requests.Input{Kind: requests.Access, Subject: "walk-s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rq.Transition(context.Background(), ownerP, "walk", access.ID, requests.TransitionInput{To: requests.Verified,
		Evidence: &requests.Evidence{Method: "document", Text: "checked"}}); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		path, body, ct, token string
		lazy                  func() string // the body, made when the case runs
	}{
		"POST /v1/sys/root-token/generate":                    {path: "/v1/sys/root-token/generate", body: `{"nonce":"` + nonce + `"}`},
		"POST /v1/sys/root-token/generate/attempt":            {path: "/v1/sys/root-token/generate/attempt"},
		"POST /v1/sys/root-token/revoke":                      {path: "/v1/sys/root-token/revoke"},
		"POST /v1/sys/backup":                                 {path: "/v1/sys/backup"},
		"PUT /v1/sys/backup/recipients":                       {path: "/v1/sys/backup/recipients", body: `{"recipients":["` + e.seal.Recipient().String() + `"]}`},
		"POST /v1/sys/operators":                              {path: "/v1/sys/operators", body: `{"username":"grace","password":"` + peoplePass + `"}`},
		"POST /v1/sys/operators/:uid/disable":                 {path: ops + "/disable"},
		"POST /v1/sys/operators/:uid/enable":                  {path: ops + "/enable"},
		"POST /v1/sys/operators/:uid/reset-mfa":               {path: ops + "/reset-mfa"},
		"POST /v1/sys/operators/:uid/unlock":                  {path: ops + "/unlock"},
		"PUT /v1/tenants/:id/sso":                             {path: "/v1/tenants/walk/sso", body: f.settings()},
		"DELETE /v1/tenants/:id/sso":                          {path: "/v1/tenants/walk3/sso"},
		"POST /v1/tenants/:id/sso/test":                       {path: "/v1/tenants/walk/sso/test"},
		"POST /v1/auth/oidc/callback":                         {path: "/v1/auth/oidc/callback", body: relay},
		"POST /v1/auth/login":                                 {path: "/v1/auth/login", body: `{"tenant":"walk","username":"max","password":"` + peoplePass + `"}`},
		"POST /v1/auth/refresh":                               {path: "/v1/auth/refresh", body: `{"refresh_token":"` + maxRefresh.RefreshToken + `"}`},
		"POST /v1/auth/logout":                                {path: "/v1/auth/logout", token: maxLogout.AccessToken},
		"POST /v1/auth/mfa/enrol":                             {path: "/v1/auth/mfa/enrol", token: cora.AccessToken},
		"POST /v1/auth/mfa/confirm":                           {path: "/v1/auth/mfa/confirm", token: nina.AccessToken, lazy: func() string { return `{"code":"` + totpCode(t, en.URI, time.Now()) + `"}` }},
		"POST /v1/tenants/:id/users":                          {path: "/v1/tenants/walk/users", body: `{"username":"walker2","password":"` + peoplePass + `","role":"foh"}`, token: og.AccessToken},
		"PATCH /v1/tenants/:id/users/:uid":                    {path: users + walker.ID, body: `{"role":"qa"}`, token: og.AccessToken},
		"POST /v1/tenants/:id/users/:uid/disable":             {path: users + walker.ID + "/disable", token: og.AccessToken},
		"POST /v1/tenants/:id/users/:uid/enable":              {path: users + walker.ID + "/enable", token: og.AccessToken},
		"POST /v1/tenants/:id/users/:uid/reset-mfa":           {path: users + walker.ID + "/reset-mfa", token: og.AccessToken},
		"POST /v1/tenants/:id/users/:uid/unlock":              {path: users + walker.ID + "/unlock", token: og.AccessToken},
		"DELETE /v1/tenants/:id/users/:uid/sessions":          {path: users + max.ID + "/sessions", token: og.AccessToken},
		"DELETE /v1/tenants/:id/users/:uid/sessions/:session": {path: users + dora.ID + "/sessions/" + doraSession.Session.ID, token: og.AccessToken},
		"POST /v1/tenants/:id/roles":                          {path: "/v1/tenants/walk/roles", body: `{"name":"night-desk","permissions":["records:read"],"visibility":{"pii":"masked","sensitive":"none","internal":"clear"}}`, token: og.AccessToken},

		"POST /v1/tenants":                                      {path: "/v1/tenants", body: `{"id":"walk2","display_name":"Walk 2"}`},
		"PATCH /v1/tenants/:id":                                 {path: "/v1/tenants/walk", body: `{"display_name":"Walked"}`},
		"POST /v1/tenants/:id/suspend":                          {path: "/v1/tenants/walk/suspend", body: ""},
		"POST /v1/tenants/:id/resume":                           {path: "/v1/tenants/walk/resume", body: ""},
		"POST /v1/tenants/:id/keys/rotate":                      {path: "/v1/tenants/walk/keys/rotate", body: ""},
		"POST /v1/tenants/:id/keys/purge-cache":                 {path: "/v1/tenants/walk/keys/purge-cache", body: ""},
		"PUT /v1/tenants/:id/keys/provider":                     {path: "/v1/tenants/walk/keys/provider", body: `{"key_provider":"age"}`},
		"DELETE /v1/tenants/:id":                                {path: "/v1/tenants/walk2", body: ""},
		"DELETE /v1/operator/raft/peers/:id":                    {path: "/v1/operator/raft/peers/ghost", body: ""},
		"POST /v1/operator/raft/transfer-leader":                {path: "/v1/operator/raft/transfer-leader", body: `{"id":"n1"}`},
		"POST /v1/tenants/:id/apikeys":                          {path: "/v1/tenants/walk/apikeys", body: `{"name":"walker","permissions":["read"]}`, token: walkOwnerKey},
		"DELETE /v1/tenants/:id/apikeys/:kid":                   {path: "/v1/tenants/walk/apikeys/" + walkKey, body: ""},
		"PUT /v1/tenants/:id/collections/:name":                 {path: "/v1/tenants/walk/collections/guests", body: `{"fields":[{"name":"email","type":"string","classification":"pii","index":true},{"name":"n","type":"number","classification":"internal"}]}`},
		"POST /v1/tenants/:id/collections/:name/records":        {path: "/v1/tenants/walk/collections/guests/records", body: `{"id":"walk-r1","fields":{"email":"a@b.c"}}`},
		"DELETE /v1/tenants/:id/collections/:name/records/:rid": {path: "/v1/tenants/walk/collections/guests/records/walk-r0", body: ""},
		"PUT /v1/tenants/:id/collections/:name/records/:rid":    {path: "/v1/tenants/walk/collections/guests/records/walk-r2", body: `{"fields":{"email":"d@e.f"}}`},
		"PATCH /v1/tenants/:id/collections/:name/records/:rid":  {path: "/v1/tenants/walk/collections/guests/records/walk-r2", body: `{"fields":{"n":3}}`},
		"POST /v1/tenants/:id/blobs":                            {path: "/v1/tenants/walk/blobs?subject=walk-s", body: "another recording", ct: "audio/ogg"},
		"DELETE /v1/tenants/:id/blobs/:bid":                     {path: "/v1/tenants/walk/blobs/" + blob.ID},
		"POST /v1/tenants/:id/requests/:rid/erase":              {path: "/v1/tenants/walk/requests/" + toErase.ID + "/erase"},
		"POST /v1/tenants/:id/breakglass":                       {path: "/v1/tenants/walk/breakglass", body: `{"reason":"a third support case"}`},
		"POST /v1/tenants/:id/breakglass/:gid/approve":          {path: "/v1/tenants/walk/breakglass/" + toApprove.ID + "/approve"},
		"POST /v1/tenants/:id/breakglass/:gid/revoke":           {path: "/v1/tenants/walk/breakglass/" + toRevoke.ID + "/revoke"},
		"PUT /v1/tenants/:id/breakglass-policy":                 {path: "/v1/tenants/walk/breakglass-policy", body: `{"auto_approve":false,"max_duration_seconds":7200}`},
		"POST /v1/tenants/:id/requests":                         {path: "/v1/tenants/walk/requests", body: `{"kind":"erasure","subject":"walk-sub"}`},
		"POST /v1/tenants/:id/requests/:rid/transition":         {path: "/v1/tenants/walk/requests/" + toReject.ID + "/transition", body: `{"to":"rejected","reason":"identity not verifiable"}`},
		"POST /v1/tenants/:id/requests/:rid/rectify":            {path: "/v1/tenants/walk/requests/" + toRectify.ID + "/rectify"},
		"POST /v1/tenants/:id/purposes":                         {path: "/v1/tenants/walk/purposes", body: `{"id":"walk-p","description":"Walk","basis":"legitimate-interest","default_on":true}`},
		"PUT /v1/tenants/:id/purposes/:pid":                     {path: "/v1/tenants/walk/purposes/walk-q", body: `{"description":"Walk, changed","basis":"consent","on_withdraw":"erase"}`},
		"PUT /v1/tenants/:id/blob-kinds/:kind":                  {path: "/v1/tenants/walk/blob-kinds/walk-kind", body: `{"purposes":["walk-q"]}`},
		"POST /v1/tenants/:id/consent/:sid/grant":               {path: "/v1/tenants/walk/consent/walk-s/grant", body: `{"purposes":["walk-q"],"source":"ivr","evidence":{"text":"yes, record me"}}`},
		"POST /v1/tenants/:id/consent/:sid/withdraw":            {path: "/v1/tenants/walk/consent/walk-s/withdraw", body: `{"all":true,"source":"web"}`},
		"POST /v1/tenants/:id/consent/:sid/flags":               {path: "/v1/tenants/walk/consent/walk-s/flags", body: `{"flag":"do-not-sell","on":true,"source":"app"}`},
		"POST /v1/tenants/:id/requests/:rid/export":             {path: "/v1/tenants/walk/requests/" + access.ID + "/export", body: `{"format":"csv"}`, token: og.AccessToken},
		"POST /v1/tenants/:id/export":                           {path: "/v1/tenants/walk/export", body: `{"compression":"gzip"}`, token: og.AccessToken},
	}
	seen := map[string]bool{}
	for _, rt := range e.app.GetRoutes(true) {
		switch rt.Method {
		case "POST", "PUT", "PATCH", "DELETE":
		default:
			continue
		}
		name := rt.Method + " " + rt.Path
		if seen[name] {
			continue
		}
		seen[name] = true
		c, ok := cases[name]
		if !ok {
			t.Errorf("mutating route %s has no audit case: add one (and make it write an audit entry)", name)
			continue
		}
		before := e.chainSizes()
		var opts []reqOpt
		if c.ct != "" {
			opts = append(opts, withHeader("Content-Type", c.ct))
		}
		if c.token != "" {
			opts = append(opts, bearer(c.token))
		}
		if c.lazy != nil {
			c.body = c.lazy()
		}
		r := e.do(rt.Method, c.path, c.body, opts...)
		if r.status >= 300 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
			continue
		}
		after := e.chainSizes()
		grew := false
		for chain, n := range after {
			grew = grew || n > before[chain]
		}
		if !grew {
			t.Errorf("%s changed something and wrote no audit entry", name)
		}
	}
	for name := range cases {
		if !seen[name] {
			t.Errorf("case %s names no route", name)
		}
	}
}

// Acceptance 4: with the chain unwritable (an injected fault in the
// transaction path), a change is refused with a clear 503 problem, and
// nothing of it is written.
func TestAuditFailClosed(t *testing.T) {
	fault := errors.New("injected: chain unwritable")
	store := storetest.StartWith(t, storetest.Options{ChainFault: func(chain, _ []byte) error {
		if string(chain) == tenancy.SystemChain {
			return fault
		}
		return nil
	}})
	e := newEnvOn(t, store)
	before := e.state()
	r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`)
	p := checkProblem(t, r, http.StatusServiceUnavailable, "audit-unavailable", "/v1/tenants")
	if !strings.Contains(p.Detail, "not made") {
		t.Errorf("detail %q", p.Detail)
	}
	if after := e.state(); after.registry != before.registry {
		t.Fatalf("the tenant was created without its audit entry: %+v -> %+v", before, after)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme", ""), http.StatusNotFound, "not-found", "/v1/tenants/acme")
	// Membership changes are refused too (their entry is written first).
	checkProblem(t, e.do("DELETE", "/v1/operator/raft/peers/ghost", ""), http.StatusServiceUnavailable, "audit-unavailable", "")
}

// Proofs through the HTTP API verify with tlog on the client's side.
func TestAuditProofsOverHTTP(t *testing.T) {
	e := newEnv(t, api.Options{})
	for i := 0; i < 40; i++ {
		if r := e.do("POST", "/v1/tenants", fmt.Sprintf(`{"id":"t%d","display_name":"T"}`, i)); r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	if _, err := e.audit.SignNow(context.Background(), tenancy.SystemChain); err != nil {
		t.Fatal(err)
	}
	// The signed checkpoint, verified with the public key.
	r := e.do("GET", "/v1/sys/audit/checkpoint", "")
	v, err := audit.Verifier([]byte(e.vkey))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := audit.OpenCheckpoint(r.body, v)
	if err != nil || cp.Size != 40 {
		t.Fatalf("checkpoint: %+v %v (%s)", cp, err, r.body)
	}
	for _, index := range []uint64{0, 7, 39} {
		var p audit.Proof
		r := e.do("GET", fmt.Sprintf("/v1/sys/audit/proof/inclusion?index=%d", index), "")
		r.json(t, &p)
		if p.Size != cp.Size || p.Root != cp.Root {
			t.Fatalf("proof against %d/%v, checkpoint %d/%v", p.Size, p.Root, cp.Size, cp.Root)
		}
		if err := tlog.CheckRecord(p.Proof, int64(p.Size), cp.Root, int64(index), tlog.RecordHash(p.Entry)); err != nil {
			t.Fatalf("inclusion of %d: %v", index, err)
		}
	}
	var old audit.Proof
	e.do("GET", "/v1/sys/audit/proof/inclusion?index=0&size=10", "").json(t, &old)
	var cons audit.Proof
	e.do("GET", "/v1/sys/audit/proof/consistency?old=10", "").json(t, &cons)
	if err := tlog.CheckTree(cons.Proof, int64(cons.Size), cp.Root, 10, old.Root); err != nil {
		t.Fatalf("consistency 10 -> %d: %v", cons.Size, err)
	}
	// The key is public; the export verifies.
	if r := e.do("GET", "/v1/sys/audit-key", "", withoutHeader("Authorization")); r.status != 200 || strings.TrimSpace(string(r.body)) != e.vkey {
		t.Fatalf("audit key: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/sys/audit/export", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/gzip" {
		t.Fatalf("export: %d %v", r.status, r.header)
	}
	if _, err := audit.Verify(bytes.NewReader(r.body), v, nil); err != nil {
		t.Fatalf("the exported bundle: %v", err)
	}
	// Bad parameters.
	checkProblem(t, e.do("GET", "/v1/sys/audit/proof/inclusion?index=40&size=40", ""), 400, "validation", "")
	checkProblem(t, e.do("GET", "/v1/sys/audit/proof/inclusion", ""), 400, "validation", "")
	checkProblem(t, e.do("GET", "/v1/sys/audit/proof/consistency?old=0", ""), 400, "validation", "")
	checkProblem(t, e.do("GET", "/v1/sys/audit?limit=5000", ""), 400, "validation", "")
	checkProblem(t, e.do("GET", "/v1/sys/audit?from=yesterday", ""), 400, "validation", "")
	checkProblem(t, e.do("GET", "/v1/tenants/nope/audit", ""), 404, "not-found", "")
	// Listing with a filter, page by page.
	var page struct {
		Entries []audit.Item `json:"entries"`
		Next    uint64       `json:"next"`
	}
	e.do("GET", "/v1/sys/audit?action=tenant.create&limit=15", "").json(t, &page)
	if len(page.Entries) != 15 || page.Next == 0 || page.Entries[0].Entry.Action != "tenant.create" {
		t.Fatalf("page 1: %d entries, next %d", len(page.Entries), page.Next)
	}
	after := page.Next
	page.Entries, page.Next = nil, 0
	e.do("GET", fmt.Sprintf("/v1/sys/audit?action=tenant.create&limit=100&after=%d", after), "").json(t, &page)
	if len(page.Entries) != 25 || page.Next != 0 {
		t.Fatalf("page 2: %d entries, next %d", len(page.Entries), page.Next)
	}
}

// Acceptance 6: personal data given to the API — display names, subject
// ids, a source of the request — reaches neither the entries nor an
// export.
func TestAuditHoldsNoPII(t *testing.T) {
	e := newEnv(t, api.Options{})
	const canary = "Jane-Canary-Doe"
	r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"`+canary+` (jane.canary@example.com)"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	e.do("PATCH", "/v1/tenants/acme", `{"display_name":"`+canary+` II"}`)
	ctx := context.Background()
	// Subject ids that are personal data, through key operations.
	for _, subject := range []string{canary, "jane.canary@example.com"} {
		if _, err := e.keys.DataKey(ctx, "acme", subject); err != nil {
			t.Fatal(err)
		}
		if err := e.keys.Shred(ctx, audit.Principal{Kind: audit.ActorOperator, ID: "dpo"}, "acme", subject); err != nil {
			t.Fatal(err)
		}
	}
	e.do("POST", "/v1/tenants/acme/keys/rotate", "")
	for _, chain := range []string{"system", "tenant:acme"} {
		items, _, err := e.audit.List(ctx, raftstore.Linearizable, chain, audit.Filter{}, 0, 1000)
		if err != nil || len(items) == 0 {
			t.Fatalf("%s: %d entries, %v", chain, len(items), err)
		}
		for _, it := range items {
			b, _ := it.Entry.Encode()
			if strings.Contains(strings.ToLower(string(b)), "canary") {
				t.Errorf("%s entry %d holds personal data: %s", chain, it.Seq, b)
			}
		}
	}
	for _, path := range []string{"/v1/sys/audit/export", "/v1/tenants/acme/audit/export"} {
		r := e.do("GET", path, "")
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		for _, m := range gunzipTar(t, r.body) {
			if strings.Contains(strings.ToLower(string(m)), "canary") {
				t.Errorf("the export %s holds personal data", path)
			}
		}
	}
	// The pseudonym lets the tenant (with its audit key) recognise a subject.
	k, err := e.keys.AuditKey(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := audit.Pseudonym(k, "subject", canary)
	items, _, _ := e.audit.List(ctx, raftstore.Linearizable, "tenant:acme", audit.Filter{Target: want}, 0, 10)
	if len(items) != 2 { // key.create and key.shred
		t.Fatalf("%d entries name the subject's pseudonym, want 2", len(items))
	}
}

// newEnvOn is newEnv over a given store.
func newEnvOn(t *testing.T, store *raftstore.Store) *env {
	t.Helper()
	e := newEnvStore(t, store, api.Options{})
	return e
}

// A tenant's audit retention is a tenant setting, bounded.
func TestTenantAuditRetention(t *testing.T) {
	e := newEnv(t, api.Options{})
	if r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r := e.do("PATCH", "/v1/tenants/acme", `{"audit_retention_days":3650}`)
	var ten struct {
		DisplayName        string `json:"display_name"`
		AuditRetentionDays int    `json:"audit_retention_days"`
	}
	r.json(t, &ten)
	if r.status != http.StatusOK || ten.AuditRetentionDays != 3650 || ten.DisplayName != "Acme" {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	for _, body := range []string{`{"audit_retention_days":-1}`, `{"audit_retention_days":36501}`} {
		p := checkProblem(t, e.do("PATCH", "/v1/tenants/acme", body), http.StatusUnprocessableEntity, "validation", "/v1/tenants/acme")
		if len(p.Errors) != 1 || p.Errors[0].Field != "audit_retention_days" {
			t.Errorf("%s: %+v", body, p.Errors)
		}
	}
}

// auditPage is the body of a list answer.
type auditPage struct {
	Entries []audit.Item `json:"entries"`
	Next    uint64       `json:"next"`
}

// A list answer carries each entry's canonical bytes ("raw", base64)
// beside its parsed form (issue 11): raw decodes to the same entry, is
// what the inclusion proof's leaf is, and differs from the parsed JSON
// form where the docs say it does.
func TestAuditListCarriesTheSignedBytes(t *testing.T) {
	e := newEnv(t, api.Options{})
	for i := 0; i < 5; i++ {
		if r := e.do("POST", "/v1/tenants", fmt.Sprintf(`{"id":"t%d","display_name":"T <&>"}`, i)); r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	if _, err := e.audit.SignNow(context.Background(), tenancy.SystemChain); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/v1/sys/audit", "")
	if !bytes.Contains(r.body, []byte(`"raw":"eyJ2IjoxLC`)) { // base64 of {"v":1,
		t.Fatalf("no raw canonical bytes in %s", r.body)
	}
	var page auditPage
	r.json(t, &page)
	if len(page.Entries) < 5 {
		t.Fatalf("%d entries", len(page.Entries))
	}
	for _, it := range page.Entries {
		back, err := audit.Decode(it.Raw)
		if err != nil {
			t.Fatalf("seq %d: raw is not a canonical entry: %v", it.Seq, err)
		}
		if again, _ := it.Entry.Encode(); !bytes.Equal(again, it.Raw) || !back.Time.Equal(it.Entry.Time) {
			t.Fatalf("seq %d: raw %s, the parsed entry encodes to %s", it.Seq, it.Raw, again)
		}
		var p audit.Proof
		e.do("GET", fmt.Sprintf("/v1/sys/audit/proof/inclusion?index=%d", it.Seq-1), "").json(t, &p)
		if !bytes.Equal(p.Entry, it.Raw) {
			t.Fatalf("seq %d: raw differs from the proof's entry", it.Seq)
		}
	}
}

// The to filter is inclusive, as openapi.json, the CLI help and the spec
// say (issue 11): an entry whose time equals to is listed, one a
// nanosecond later is not; from is inclusive too.
func TestAuditListToIsInclusive(t *testing.T) {
	e := newEnv(t, api.Options{})
	for i := 0; i < 3; i++ {
		if r := e.do("POST", "/v1/tenants", fmt.Sprintf(`{"id":"t%d","display_name":"T"}`, i)); r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	var all auditPage
	e.do("GET", "/v1/sys/audit?action=tenant.create", "").json(t, &all)
	if len(all.Entries) != 3 {
		t.Fatalf("%d tenant.create entries", len(all.Entries))
	}
	mid := all.Entries[1]
	at := mid.Entry.Time.UTC()
	list := func(q string) []uint64 {
		var p auditPage
		r := e.do("GET", "/v1/sys/audit?action=tenant.create&"+q, "")
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", q, r.status, r.body)
		}
		r.json(t, &p)
		var seqs []uint64
		for _, it := range p.Entries {
			seqs = append(seqs, it.Seq)
		}
		return seqs
	}
	q := func(name string, tm time.Time) string {
		return name + "=" + url.QueryEscape(tm.Format(time.RFC3339Nano))
	}
	if got := list(q("to", at)); len(got) != 2 || got[1] != mid.Seq {
		t.Fatalf("to = the entry's time: %v, want it included (seq %d last)", got, mid.Seq)
	}
	if got := list(q("to", at.Add(-time.Nanosecond))); len(got) != 1 {
		t.Fatalf("to = a nanosecond before: %v, want only the first", got)
	}
	if got := list(q("from", at) + "&" + q("to", at)); len(got) != 1 || got[0] != mid.Seq {
		t.Fatalf("from = to = the entry's time: %v, want exactly seq %d", got, mid.Seq)
	}
}

// TestAuditExportAudited: an export of a chain is an audit.export entry in
// that chain, naming who took it and the range, committed before the
// bundle is sent (so the bundle holds it).
func TestAuditExportAudited(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	ctx := context.Background()
	for _, ex := range []struct{ path, chain, target string }{
		{"/v1/sys/audit/export?from=2020-01-01T00:00:00Z", tenancy.SystemChain, "chain:system"},
		{"/v1/tenants/acme/audit/export", tenancy.ChainOf("acme"), tenancy.AuditTarget("acme")},
	} {
		r := e.do("GET", ex.path, "")
		if r.status != 200 {
			t.Fatalf("%s: %d %s\n%s", ex.path, r.status, r.body, e.logBuf.String())
		}
		items, _, err := e.audit.List(ctx, raftstore.Linearizable, ex.chain, audit.Filter{Action: "audit.export"}, 0, 10)
		if err != nil || len(items) != 1 {
			t.Fatalf("%s: %d audit.export entries, %v", ex.path, len(items), err)
		}
		en := items[0].Entry
		if en.Target != ex.target || en.Actor.Type != audit.ActorOperator || en.Outcome != audit.OutcomeSuccess {
			t.Errorf("%s: entry %+v", ex.path, en)
		}
		if strings.Contains(ex.path, "from=") != (en.Details["from"] != "") {
			t.Errorf("%s: details %v", ex.path, en.Details)
		}
		found := false
		for _, m := range gunzipTar(t, r.body) {
			found = found || strings.Contains(string(m), `"audit.export"`)
		}
		if !found {
			t.Errorf("%s: the bundle lacks its own entry", ex.path)
		}
	}
}

// Stats counts the chain's entries per day and action from the store's
// counters: five tenants created today are five tenant.create today on the
// system chain, and the days asked are today and the days before.
func TestAuditStats(t *testing.T) {
	e := newEnvStore(t, storetest.StartWith(t, storetest.Options{ChainTally: audit.TallyKey}), api.Options{})
	for i := range 5 {
		e.mustCreate(fmt.Sprintf("s%d", i), "S")
	}
	var got struct {
		From, To string
		Counts   []audit.DayCount
	}
	ok := func(r response) response {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("stats: %d %s", r.status, r.body)
		}
		return r
	}
	ok(e.do("GET", "/v1/sys/audit/stats?days=7", "")).json(t, &got)
	today := time.Now().UTC()
	if got.To != today.Format(time.DateOnly) || got.From != today.AddDate(0, 0, -6).Format(time.DateOnly) {
		t.Fatalf("days %s..%s", got.From, got.To)
	}
	n := uint64(0)
	for _, c := range got.Counts {
		if c.Action == "tenant.create" && c.Day == got.To {
			n = c.Count
		}
	}
	if n != 5 {
		t.Fatalf("tenant.create today: %d in %+v", n, got.Counts)
	}
	ok(e.do("GET", "/v1/tenants/s1/audit/stats", "")).json(t, &got)
	if got.From != today.AddDate(0, 0, -29).Format(time.DateOnly) {
		t.Fatalf("default days: from %s", got.From)
	}
	for _, q := range []string{"days=0", "days=367", "days=x"} {
		checkProblem(t, e.do("GET", "/v1/sys/audit/stats?"+q, ""), http.StatusBadRequest, "validation", "")
	}
}

// newest=true pages a chain newest first with before; the cursors of the
// other order are refused.
func TestAuditListNewestFirst(t *testing.T) {
	e := newEnv(t, api.Options{})
	for i := range 5 {
		e.mustCreate(fmt.Sprintf("n%d", i), "N")
	}
	var seqs []uint64
	target := "/v1/sys/audit?newest=true&limit=2&action=tenant.create"
	for {
		var page struct {
			Entries []audit.Item
			Next    uint64
		}
		r := e.do("GET", target, "")
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", target, r.status, r.body)
		}
		r.json(t, &page)
		for _, it := range page.Entries {
			seqs = append(seqs, it.Seq)
		}
		if page.Next == 0 {
			break
		}
		target = fmt.Sprintf("/v1/sys/audit?newest=true&limit=2&action=tenant.create&before=%d", page.Next)
	}
	if len(seqs) != 5 || !slices.IsSortedFunc(seqs, func(a, b uint64) int { return cmp.Compare(b, a) }) {
		t.Fatalf("newest first: %v", seqs)
	}
	checkProblem(t, e.do("GET", "/v1/sys/audit?newest=true&after=3", ""), http.StatusBadRequest, "validation", "")
	checkProblem(t, e.do("GET", "/v1/sys/audit?before=3", ""), http.StatusBadRequest, "validation", "")
}
