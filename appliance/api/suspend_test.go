package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// What each operation of openapi.json is to a suspended tenant (issue 12,
// "Suspended tenants are suspended"; acceptance 8, last clause). On every
// route of a tenant (data and tenant), the suspended tenant's principals
// are answered 403 tenant-suspended where their role holds the route's
// permission (403 forbidden where it does not), and nothing is done:
//
//	data      a route of the tenant's data
//	tenant    the operator's management of the tenant: keeps working
//	cluster   the operator's routes about the cluster: unaffected
//	public    no token
//	session   a user's own session (who am I, logout, MFA enrolment): no
//	          API key's
//
// Every operation of the description must be here, and nothing else: a
// new route fails TestSuspendedTenant until it is classified.
var suspensionClass = map[string]string{
	"GET /v1/openapi.json":                                     "public",
	"GET /v1/sys/health":                                       "public",
	"GET /v1/sys/audit-key":                                    "public",
	"POST /v1/sys/root-token/generate/attempt":                 "public",
	"POST /v1/sys/root-token/generate":                         "public",
	"POST /v1/sys/root-token/revoke":                           "cluster",
	"POST /v1/sys/backup":                                      "cluster",
	"PUT /v1/sys/backup/recipients":                            "cluster",
	"POST /v1/sys/operators":                                   "cluster",
	"GET /v1/sys/operators":                                    "cluster",
	"GET /v1/sys/operators/{uid}":                              "cluster",
	"POST /v1/sys/operators/{uid}/disable":                     "cluster",
	"POST /v1/sys/operators/{uid}/enable":                      "cluster",
	"POST /v1/sys/operators/{uid}/reset-mfa":                   "cluster",
	"POST /v1/sys/operators/{uid}/unlock":                      "cluster",
	"GET /v1/sys/status":                                       "cluster",
	"GET /v1/sys/metrics":                                      "cluster",
	"GET /v1/sys/audit":                                        "cluster",
	"GET /v1/sys/audit/checkpoint":                             "cluster",
	"GET /v1/sys/audit/stats":                                  "cluster",
	"GET /v1/sys/audit/export":                                 "cluster",
	"GET /v1/sys/audit/proof/consistency":                      "cluster",
	"GET /v1/sys/audit/proof/inclusion":                        "cluster",
	"GET /v1/sys/audit/selfcheck":                              "cluster",
	"GET /v1/operator/raft/peers":                              "cluster",
	"DELETE /v1/operator/raft/peers/{id}":                      "cluster",
	"POST /v1/operator/raft/transfer-leader":                   "cluster",
	"GET /v1/tenants":                                          "tenant",
	"POST /v1/tenants":                                         "tenant",
	"GET /v1/tenants/{id}":                                     "tenant",
	"PATCH /v1/tenants/{id}":                                   "tenant",
	"DELETE /v1/tenants/{id}":                                  "tenant",
	"POST /v1/tenants/{id}/suspend":                            "tenant",
	"POST /v1/tenants/{id}/resume":                             "tenant",
	"GET /v1/tenants/{id}/keys":                                "tenant",
	"POST /v1/tenants/{id}/keys/rotate":                        "tenant",
	"POST /v1/tenants/{id}/keys/purge-cache":                   "tenant",
	"PUT /v1/tenants/{id}/keys/provider":                       "tenant",
	"GET /v1/tenants/{id}/apikeys":                             "tenant",
	"POST /v1/tenants/{id}/apikeys":                            "tenant",
	"GET /v1/tenants/{id}/apikeys/{kid}":                       "tenant",
	"DELETE /v1/tenants/{id}/apikeys/{kid}":                    "tenant",
	"POST /v1/tenants/{id}/breakglass":                         "tenant",
	"GET /v1/tenants/{id}/breakglass":                          "tenant",
	"POST /v1/tenants/{id}/breakglass/{gid}/approve":           "data",
	"POST /v1/tenants/{id}/breakglass/{gid}/revoke":            "data",
	"GET /v1/tenants/{id}/breakglass-policy":                   "tenant",
	"PUT /v1/tenants/{id}/breakglass-policy":                   "data",
	"GET /v1/tenants/{id}/audit":                               "data",
	"GET /v1/tenants/{id}/audit/checkpoint":                    "data",
	"GET /v1/tenants/{id}/audit/stats":                         "data",
	"GET /v1/tenants/{id}/audit/proof/inclusion":               "data",
	"GET /v1/tenants/{id}/audit/proof/consistency":             "data",
	"GET /v1/tenants/{id}/audit/export":                        "data",
	"GET /v1/tenants/{id}/collections":                         "data",
	"GET /v1/tenants/{id}/collections/{name}":                  "data",
	"PUT /v1/tenants/{id}/collections/{name}":                  "data",
	"GET /v1/tenants/{id}/collections/{name}/records":          "data",
	"POST /v1/tenants/{id}/collections/{name}/records":         "data",
	"GET /v1/tenants/{id}/collections/{name}/records/{rid}":    "data",
	"PUT /v1/tenants/{id}/collections/{name}/records/{rid}":    "data",
	"PATCH /v1/tenants/{id}/collections/{name}/records/{rid}":  "data",
	"DELETE /v1/tenants/{id}/collections/{name}/records/{rid}": "data",
	"GET /v1/tenants/{id}/subjects/{sid}":                      "data",
	"GET /v1/tenants/{id}/purposes":                            "data",
	"GET /v1/tenants/{id}/consent-stats":                       "data",
	"POST /v1/tenants/{id}/purposes":                           "data",
	"GET /v1/tenants/{id}/purposes/{pid}":                      "data",
	"PUT /v1/tenants/{id}/purposes/{pid}":                      "data",
	"GET /v1/tenants/{id}/purposes/{pid}/versions":             "data",
	"GET /v1/tenants/{id}/blob-kinds":                          "data",
	"PUT /v1/tenants/{id}/blob-kinds/{kind}":                   "data",
	"GET /v1/tenants/{id}/consent/{sid}":                       "data",
	"GET /v1/tenants/{id}/consent/{sid}/history":               "data",
	"POST /v1/tenants/{id}/consent/{sid}/grant":                "data",
	"POST /v1/tenants/{id}/consent/{sid}/withdraw":             "data",
	"POST /v1/tenants/{id}/consent/{sid}/flags":                "data",
	"POST /v1/tenants/{id}/requests/{rid}/erase":               "data",
	"GET /v1/tenants/{id}/requests/{rid}/receipt":              "data",
	"GET /v1/tenants/{id}/erasures":                            "data",
	"POST /v1/tenants/{id}/blobs":                              "data",
	"GET /v1/tenants/{id}/blobs":                               "data",
	"GET /v1/tenants/{id}/blobs/{bid}":                         "data",
	"HEAD /v1/tenants/{id}/blobs/{bid}":                        "data",
	"GET /v1/tenants/{id}/blobs/{bid}/metadata":                "data",
	"DELETE /v1/tenants/{id}/blobs/{bid}":                      "data",
	"POST /v1/tenants/{id}/requests/{rid}/export":              "data",
	"POST /v1/tenants/{id}/export":                             "data",
	"GET /v1/tenants/{id}/exports":                             "data",
	"GET /v1/tenants/{id}/exports/{eid}":                       "data",
	"PUT /v1/tenants/{id}/sso":                                 "tenant",
	"GET /v1/tenants/{id}/sso":                                 "tenant",
	"DELETE /v1/tenants/{id}/sso":                              "tenant",
	"POST /v1/tenants/{id}/sso/test":                           "tenant",
	"GET /v1/auth/oidc/start":                                  "public",
	"GET /v1/auth/oidc/callback":                               "public",
	"POST /v1/auth/oidc/callback":                              "public",
	"POST /v1/auth/login":                                      "public",
	"POST /v1/auth/refresh":                                    "public",
	"POST /v1/auth/logout":                                     "session",
	"GET /v1/auth/session":                                     "session",
	"POST /v1/auth/mfa/enrol":                                  "session",
	"POST /v1/auth/mfa/confirm":                                "session",
	"GET /v1/tenants/{id}/users":                               "data",
	"POST /v1/tenants/{id}/users":                              "data",
	"GET /v1/tenants/{id}/users/{uid}":                         "data",
	"PATCH /v1/tenants/{id}/users/{uid}":                       "data",
	"POST /v1/tenants/{id}/users/{uid}/disable":                "data",
	"POST /v1/tenants/{id}/users/{uid}/enable":                 "data",
	"POST /v1/tenants/{id}/users/{uid}/reset-mfa":              "data",
	"POST /v1/tenants/{id}/users/{uid}/unlock":                 "data",
	"GET /v1/tenants/{id}/users/{uid}/sessions":                "data",
	"DELETE /v1/tenants/{id}/users/{uid}/sessions":             "data",
	"DELETE /v1/tenants/{id}/users/{uid}/sessions/{session}":   "data",
	"GET /v1/tenants/{id}/roles":                               "data",
	"POST /v1/tenants/{id}/roles":                              "data",
	"GET /v1/tenants/{id}/roles/{role}":                        "data",
	"POST /v1/tenants/{id}/requests":                           "data",
	"GET /v1/tenants/{id}/requests":                            "data",
	"GET /v1/tenants/{id}/requests-summary":                    "data",
	"GET /v1/tenants/{id}/requests/{rid}":                      "data",
	"POST /v1/tenants/{id}/requests/{rid}/transition":          "data",
	"POST /v1/tenants/{id}/requests/{rid}/rectify":             "data",
}

// suspendEnv is the tenant under test, acme (with a collection, a record,
// a blob and an admin key), and a bystander, globex, that stays active.
type suspendEnv struct {
	t                    *testing.T
	e                    *env
	calls                *callLog
	key, owner, otherKey createdKey
	blob, keyOther       string
	grant                string // a break-glass grant of acme
	// bodies replace bodyFixtures where a body must name something of
	// this test's (the SSO settings: its provider).
	bodies map[string]string
	// user is a user of acme (its people's routes name it; "" for a
	// well-formed id of nobody), and session one of its sessions.
	user, session string
	// erasable is a verified erasure request of acme (of a subject
	// holding nothing), erased one whose erasure is done: the erasure
	// routes name them ("": a well-formed id of none).
	erasable, erased string
	// dsr is a verified access request of acme and export an export of
	// it, for the routes that name them ("": a well-formed id of none).
	dsr, export string
}

// suspendQuery are valid values of the query parameters an operation
// requires.
var suspendQuery = map[string]string{"index": "0", "old": "1", "tenant": attackerTenant, "state": attackerTenant + ".x"}

// request is op aimed at acme's own resources with a valid body: what an
// active tenant's key may do.
func (s *suspendEnv) request(op *specOp) (method, target, body string, opts []reqOpt) {
	vals := map[string]string{"id": attackerTenant, "name": "guests", "rid": aRecord, "sid": aSubject, "bid": s.blob, "kid": s.keyOther, "gid": s.grant,
		"uid": "usr_aaaaaaaaaaaaaaaa", "session": "aaaaaaaaaaaaaaaaaaaaaa", "role": "owner", "pid": "call-recording", "kind": "recording"}
	if s.user != "" {
		vals["uid"], vals["session"] = s.user, s.session
	}
	vals["eid"] = "xaaaaaaaaaaaaaaaa"
	if s.export != "" {
		vals["eid"] = s.export
	}
	switch {
	case strings.HasSuffix(op.path, "/erase") && s.erasable != "":
		vals["rid"] = s.erasable
	case strings.HasSuffix(op.path, "/receipt") && s.erased != "":
		vals["rid"] = s.erased
	case s.dsr != "" && strings.Contains(op.path, "/requests/{rid}"):
		vals["rid"] = s.dsr
	}
	if strings.HasPrefix(op.path, "/v1/operator/raft/peers/") {
		vals["id"] = "n9" // never a member: removing it changes nothing
	}
	target = op.path
	for k, v := range vals {
		target = strings.ReplaceAll(target, "{"+k+"}", url.PathEscape(v))
	}
	q := url.Values{}
	for _, p := range op.params {
		if p.In == "query" && p.Required {
			v, ok := suspendQuery[p.Name]
			if !ok {
				s.t.Fatalf("%s: no value for required query parameter %s", op, p.Name)
			}
			q.Set(p.Name, v)
		}
	}
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	switch {
	case s.bodies[op.bodySchema] != "":
		body = s.bodies[op.bodySchema]
	case op.bodySchema != "":
		body = bodyFixtures[op.bodySchema]
	case op.rawBody:
		body, opts = "RIFF\x24\x00\x00\x00WAVEfmt acme", []reqOpt{withHeader("Content-Type", "audio/wav")}
	}
	return op.method, target, body, opts
}

// requestGrant is a new break-glass request of the operator on acme.
func (s *suspendEnv) requestGrant() string {
	s.t.Helper()
	var g struct{ ID string }
	r := s.e.do("POST", "/v1/tenants/acme/breakglass", `{"reason":"a support case"}`)
	if r.status != http.StatusCreated {
		s.t.Fatalf("break-glass request: %d %s", r.status, r.body)
	}
	r.json(s.t, &g)
	return g.ID
}

// asKey sends op with token.
func (s *suspendEnv) asKey(op *specOp, token string) (response, []svcCall) {
	method, target, body, opts := s.request(op)
	mark := s.calls.mark()
	r := s.e.do(method, target, body, append(opts, withHeader("Authorization", "Bearer "+token))...)
	return r, s.calls.since(mark)
}

// chainHeads are the heads of acme's chain and of the system chain.
func (s *suspendEnv) chainHeads() string {
	var out string
	if err := s.e.store.View(context.Background(), raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		for _, chain := range []string{tenancy.ChainOf(attackerTenant), tenancy.SystemChain} {
			seq, hash := tx.ChainHead([]byte(chain))
			out += fmt.Sprintf("%s %d/%x ", chain, seq, hash[:8])
		}
		return nil
	}); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// readBack is acme's data as its Owner key reads it back (and its
// metadata as the operator reads it), last_used aside (a refused key's
// use is still recorded), and updated_at (the suspension and resumption
// update the tenant).
func (s *suspendEnv) readBack() map[string]string {
	out := map[string]string{}
	for _, target := range []string{
		"/v1/tenants/acme", "/v1/tenants/acme/apikeys", "/v1/tenants/acme/keys", "/v1/tenants/acme/collections",
		"/v1/tenants/acme/collections/guests/records/" + aRecord, "/v1/tenants/acme/collections/guests/records?limit=500",
		"/v1/tenants/acme/blobs?limit=500", "/v1/tenants/acme/blobs/" + s.blob, "/v1/tenants/acme/subjects/" + aSubject,
	} {
		r := s.e.do("GET", target, "")
		out[target] = fmt.Sprintf("%d %s", r.status, dropFields(r.body, "last_used", "updated_at"))
	}
	return out
}

// TestSuspendedTenant walks every operation of openapi.json with acme
// suspended, with two of acme's keys (an old admin key, and one bound to
// the Owner role, whose role reaches the tenant's metadata and API keys
// too): on every route of the tenant a key whose role holds the route's
// permission is answered 403 tenant-suspended, and one whose role does not
// 403 forbidden, before any service beyond the key's authentication is
// called (so with no second read of the tenant, and nothing done: acme's
// data, read back after, and both chains are unchanged); the cluster's
// routes refuse them as ever; the operator's routes keep working; another
// tenant is unaffected. After the resumption the same keys are admitted
// on every route their roles reach again.
func TestSuspendedTenant(t *testing.T) {
	e := newEnv(t, api.Options{})
	s := &suspendEnv{t: t, e: e}
	_, ops := loadSpecOps(t)
	inSpec := map[string]bool{}
	for _, op := range ops {
		inSpec[op.String()] = true
		class, ok := suspensionClass[op.String()]
		switch {
		case !ok:
			t.Errorf("%s is not classified for suspension: add it to suspensionClass", op)
		case class == "data" && op.access != "tenant", op.access == "tenant" && class != "data" && class != "tenant":
			t.Errorf("%s is classified %q, but its access in openapi.json is %q: a route an API key can call is a route of a tenant (data, or the operator's management of it)", op, class, op.access)
		case class == "public" && op.access != "public":
			t.Errorf("%s is classified public, but needs a token", op)
		}
	}
	for name := range suspensionClass {
		if !inSpec[name] {
			t.Errorf("suspensionClass names %s, which openapi.json does not describe", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	e.mustCreate("acme", "Acme")
	e.mustCreate("globex", "Globex")
	for _, id := range []string{"acme", "globex"} {
		if r := e.do("PUT", "/v1/tenants/"+id+"/collections/guests", guestsV1); r.status != http.StatusCreated {
			t.Fatalf("collection of %s: %d %s", id, r.status, r.body)
		}
	}
	if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"`+aRecord+`","subject":"`+aSubject+`","fields":{"email":"a@acme.test"}}`); r.status != http.StatusCreated {
		t.Fatalf("record: %d %s", r.status, r.body)
	}
	var bl struct{ ID string }
	e.do("POST", "/v1/tenants/acme/blobs?subject="+aSubject, "RIFF\x24\x00\x00\x00WAVEfmt acme", withHeader("Content-Type", "audio/wav")).json(t, &bl)
	s.blob = bl.ID
	s.key = e.createKey(t, "acme", `{"name":"app","permissions":["admin"]}`)
	s.owner = e.createKey(t, "acme", `{"name":"owner app","role":"owner"}`)
	s.keyOther = e.createKey(t, "acme", `{"name":"other","permissions":["read"]}`).ID
	s.otherKey = e.createKey(t, "globex", `{"name":"app","permissions":["admin"]}`)
	s.grant = s.requestGrant()
	// acme has single sign-on at a live provider, so that reading and
	// testing its settings work.
	s.bodies = map[string]string{"SSOSettings": ssoSettings(startSSOProvider(t), "http://127.0.0.1:1")}
	if r := e.do("PUT", "/v1/tenants/acme/sso", s.bodies["SSOSettings"]); r.status != http.StatusOK {
		t.Fatalf("sso: %d %s", r.status, r.body)
	}
	s.calls = e.withCallLog()
	globexCollections := func() int {
		return e.do("GET", "/v1/tenants/globex/collections", "", withHeader("Authorization", "Bearer "+s.otherKey.Token)).status
	}
	adminRole, err := roles.FromAPIKey([]string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	ownerRole, _ := roles.Builtin("owner")
	keys := []struct {
		name string
		key  createdKey
		role roles.Role
	}{{"admin", s.key, adminRole}, {"owner", s.owner, ownerRole}}
	allows := func(role roles.Role, op *specOp) bool {
		need, err := roles.ParsePermission(op.need)
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		return role.Allows(need)
	}
	suspend := func() {
		t.Helper()
		if r := e.do("POST", "/v1/tenants/acme/suspend", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), `"state":"suspended"`) {
			t.Fatalf("suspend: %d %s", r.status, r.body)
		}
	}
	resume := func() {
		t.Helper()
		if r := e.do("POST", "/v1/tenants/acme/resume", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), `"state":"active"`) {
			t.Fatalf("resume: %d %s", r.status, r.body)
		}
	}

	before := s.readBack() // audited reads: the chain moves before heads is taken
	suspend()
	heads := s.chainHeads()
	refused := 0
	for _, op := range ops {
		class := suspensionClass[op.String()]
		if class == "public" {
			continue
		}
		for _, k := range keys {
			r, calls := s.asKey(op, k.key.Token)
			slug := "forbidden"
			if op.access == "tenant" && allows(k.role, op) {
				slug = "tenant-suspended"
				refused++
			}
			if r.status != http.StatusForbidden {
				t.Errorf("%s with acme suspended, by its %s key: %d %s, want 403 %s", op, k.name, r.status, r.body, slug)
				continue
			}
			if op.method != http.MethodHead {
				checkProblem(t, r, http.StatusForbidden, slug, "")
			}
			if beyond := callsBeyondAuth(calls); len(beyond) > 0 {
				t.Errorf("%s with acme suspended, by its %s key, reached %v: the refusal must come before any service (and without a second read)", op, k.name, beyond)
			}
		}
	}
	if refused < 30 {
		t.Fatalf("only %d refusals of a suspended tenant's keys checked", refused)
	}
	if got := s.chainHeads(); got != heads {
		t.Errorf("the refused requests moved a chain: %s -> %s", heads, got)
	}
	if st := globexCollections(); st != http.StatusOK {
		t.Errorf("globex's key while acme is suspended: %d", st)
	}
	// What the refused requests left is what was there: read back by the
	// Owner key once acme is resumed.
	resume()
	after := s.readBack()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed while acme was suspended:\nbefore %s\nafter  %s", k, v, after[k])
		}
	}
	suspend()

	// The operator's routes keep working on the suspended tenant (the
	// tenant, its keys, its API keys, its chain) and on the cluster. The
	// deletions (of an API key, of the tenant) and the resumption come
	// last.
	var manage []*specOp
	for _, op := range ops {
		if c := suspensionClass[op.String()]; (c == "tenant" || c == "cluster") && op.method != http.MethodDelete && op.String() != "POST /v1/tenants/{id}/resume" {
			manage = append(manage, op)
		}
	}
	for _, op := range ops {
		if op.String() == "DELETE /v1/tenants/{id}/apikeys/{kid}" || op.String() == "DELETE /v1/operator/raft/peers/{id}" {
			manage = append(manage, op)
		}
	}
	for _, op := range manage {
		class := suspensionClass[op.String()]
		method, target, body, opts := s.request(op)
		r := e.do(method, target, body, opts...)
		switch {
		case class == "tenant" && (r.status < 200 || r.status > 299):
			t.Errorf("%s by the operator with acme suspended: %d %s, want it to work", op, r.status, r.body)
		case class == "cluster" && (r.status == http.StatusForbidden || r.status >= 500):
			t.Errorf("%s by the operator with acme suspended: %d %s", op, r.status, r.body)
		}
	}
	for _, target := range []string{"/v1/tenants/acme/audit", "/v1/tenants/acme/audit/export"} {
		if r := e.do("GET", target, ""); r.status != http.StatusOK {
			t.Errorf("the operator reads acme's chain (%s) while it is suspended: %d %s", target, r.status, r.body)
		}
	}

	// Resuming restores the keys at once, on every route their roles
	// reach.
	resume()
	for _, k := range keys {
		for _, op := range ops {
			if op.access != "tenant" || !allows(k.role, op) {
				continue
			}
			r, _ := s.asKey(op, k.key.Token)
			if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden || r.status >= 500 {
				t.Errorf("%s by acme's %s key after acme resumed: %d %s", op, k.name, r.status, r.body)
			}
		}
	}
	if r := e.do("DELETE", "/v1/tenants/acme", ""); r.status != http.StatusNoContent {
		t.Errorf("delete the tenant: %d %s", r.status, r.body)
	}
	if st := globexCollections(); st != http.StatusOK {
		t.Errorf("globex's key at the end: %d", st)
	}
}
