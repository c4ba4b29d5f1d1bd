package api_test

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
)

// The scope matrix (issue 12, acceptance 2): a Concierge scoped to
// property=villa-a — an API key, and a user — through every operation
// openapi.json describes, never
// sees, finds, counts or downloads anything of villa-b, and gets for a
// villa-b item the answer of a missing one, byte for byte; the same role
// unscoped sees both, so the check is not blind.
//
// What each operation is to the matrix; every operation of the
// description must be here, and nothing else, so that a new route fails
// TestScopeMatrix until it is placed:
//
//	record    names a record ({rid}): villa-b's answers as a missing one
//	blob      names a blob ({bid}): likewise
//	subject   names a subject ({sid}): villa-b's subject answers as an
//	          unknown one
//	consent   names a subject's consent ({sid}): likewise; unscoped, the
//	          answer need not echo the subject (a state, an event)
//	records   lists or finds records: villa-b's never among them
//	blobs     lists blobs: villa-b's never among them
//	other     names no item (collections, tenants, the cluster, the
//	          tenant's API keys and audit chain, creation): the scoped
//	          principal gets what the unscoped one gets, with nothing of
//	          villa-b in it
//	unscoped  counts every scope's items (consent rates): refused to the
//	          scoped principal (403 forbidden), answered to the unscoped one
var scopeClass = map[string]string{
	"GET /v1/openapi.json":                                     "other",
	"GET /v1/sys/health":                                       "other",
	"GET /v1/sys/audit-key":                                    "other",
	"POST /v1/sys/root-token/revoke":                           "other",
	"POST /v1/sys/backup":                                      "other",
	"PUT /v1/sys/backup/recipients":                            "other",
	"POST /v1/sys/operators":                                   "other",
	"GET /v1/sys/operators":                                    "other",
	"GET /v1/sys/operators/{uid}":                              "other",
	"POST /v1/sys/operators/{uid}/disable":                     "other",
	"POST /v1/sys/operators/{uid}/enable":                      "other",
	"POST /v1/sys/operators/{uid}/reset-mfa":                   "other",
	"POST /v1/sys/operators/{uid}/unlock":                      "other",
	"POST /v1/sys/root-token/generate/attempt":                 "other",
	"POST /v1/sys/root-token/generate":                         "other",
	"GET /v1/sys/status":                                       "other",
	"GET /v1/sys/metrics":                                      "other",
	"GET /v1/sys/audit":                                        "other",
	"GET /v1/sys/audit/checkpoint":                             "other",
	"GET /v1/sys/audit/stats":                                  "other",
	"GET /v1/sys/audit/export":                                 "other",
	"GET /v1/sys/audit/proof/consistency":                      "other",
	"GET /v1/sys/audit/proof/inclusion":                        "other",
	"GET /v1/sys/audit/selfcheck":                              "other",
	"GET /v1/operator/raft/peers":                              "other",
	"DELETE /v1/operator/raft/peers/{id}":                      "other",
	"POST /v1/operator/raft/transfer-leader":                   "other",
	"GET /v1/tenants":                                          "other",
	"POST /v1/tenants":                                         "other",
	"GET /v1/tenants/{id}":                                     "other",
	"PATCH /v1/tenants/{id}":                                   "other",
	"DELETE /v1/tenants/{id}":                                  "other",
	"POST /v1/tenants/{id}/suspend":                            "other",
	"POST /v1/tenants/{id}/resume":                             "other",
	"GET /v1/tenants/{id}/keys":                                "other",
	"POST /v1/tenants/{id}/keys/rotate":                        "other",
	"POST /v1/tenants/{id}/keys/purge-cache":                   "other",
	"PUT /v1/tenants/{id}/keys/provider":                       "other",
	"GET /v1/tenants/{id}/apikeys":                             "other",
	"POST /v1/tenants/{id}/apikeys":                            "other",
	"GET /v1/tenants/{id}/apikeys/{kid}":                       "other",
	"DELETE /v1/tenants/{id}/apikeys/{kid}":                    "other",
	"POST /v1/tenants/{id}/breakglass":                         "other",
	"GET /v1/tenants/{id}/breakglass":                          "other",
	"POST /v1/tenants/{id}/breakglass/{gid}/approve":           "other",
	"POST /v1/tenants/{id}/breakglass/{gid}/revoke":            "other",
	"GET /v1/tenants/{id}/breakglass-policy":                   "other",
	"PUT /v1/tenants/{id}/breakglass-policy":                   "other",
	"GET /v1/tenants/{id}/audit":                               "other",
	"GET /v1/tenants/{id}/audit/checkpoint":                    "other",
	"GET /v1/tenants/{id}/audit/stats":                         "other",
	"GET /v1/tenants/{id}/audit/proof/inclusion":               "other",
	"GET /v1/tenants/{id}/audit/proof/consistency":             "other",
	"GET /v1/tenants/{id}/audit/export":                        "other",
	"GET /v1/tenants/{id}/collections":                         "other",
	"GET /v1/tenants/{id}/collections/{name}":                  "other",
	"PUT /v1/tenants/{id}/collections/{name}":                  "other",
	"GET /v1/tenants/{id}/collections/{name}/records":          "records",
	"POST /v1/tenants/{id}/collections/{name}/records":         "other",
	"GET /v1/tenants/{id}/collections/{name}/records/{rid}":    "record",
	"PUT /v1/tenants/{id}/collections/{name}/records/{rid}":    "record",
	"PATCH /v1/tenants/{id}/collections/{name}/records/{rid}":  "record",
	"DELETE /v1/tenants/{id}/collections/{name}/records/{rid}": "record",
	"GET /v1/tenants/{id}/subjects/{sid}":                      "subject",
	"POST /v1/tenants/{id}/requests":                           "other",
	"GET /v1/tenants/{id}/requests":                            "other",
	"GET /v1/tenants/{id}/requests-summary":                    "other",
	"GET /v1/tenants/{id}/requests/{rid}":                      "other",
	"POST /v1/tenants/{id}/requests/{rid}/transition":          "other",
	"POST /v1/tenants/{id}/requests/{rid}/rectify":             "other",
	"GET /v1/tenants/{id}/purposes":                            "other",
	"GET /v1/tenants/{id}/consent-stats":                       "unscoped",
	"POST /v1/tenants/{id}/purposes":                           "other",
	"GET /v1/tenants/{id}/purposes/{pid}":                      "other",
	"PUT /v1/tenants/{id}/purposes/{pid}":                      "other",
	"GET /v1/tenants/{id}/purposes/{pid}/versions":             "other",
	"GET /v1/tenants/{id}/blob-kinds":                          "other",
	"PUT /v1/tenants/{id}/blob-kinds/{kind}":                   "other",
	"GET /v1/tenants/{id}/consent/{sid}":                       "consent",
	"GET /v1/tenants/{id}/consent/{sid}/history":               "consent",
	"POST /v1/tenants/{id}/consent/{sid}/grant":                "consent",
	"POST /v1/tenants/{id}/consent/{sid}/withdraw":             "consent",
	"POST /v1/tenants/{id}/consent/{sid}/flags":                "consent",
	"POST /v1/tenants/{id}/requests/{rid}/erase":               "other",
	"GET /v1/tenants/{id}/requests/{rid}/receipt":              "other",
	"GET /v1/tenants/{id}/erasures":                            "other",
	"POST /v1/tenants/{id}/blobs":                              "other",
	"GET /v1/tenants/{id}/blobs":                               "blobs",
	"GET /v1/tenants/{id}/blobs/{bid}":                         "blob",
	"HEAD /v1/tenants/{id}/blobs/{bid}":                        "blob",
	"GET /v1/tenants/{id}/blobs/{bid}/metadata":                "blob",
	"DELETE /v1/tenants/{id}/blobs/{bid}":                      "blob",
	"POST /v1/tenants/{id}/requests/{rid}/export":              "other",
	"POST /v1/tenants/{id}/export":                             "other",
	"GET /v1/tenants/{id}/exports":                             "other",
	"GET /v1/tenants/{id}/exports/{eid}":                       "other",
	"PUT /v1/tenants/{id}/sso":                                 "other",
	"GET /v1/tenants/{id}/sso":                                 "other",
	"DELETE /v1/tenants/{id}/sso":                              "other",
	"POST /v1/tenants/{id}/sso/test":                           "other",
	"GET /v1/auth/oidc/start":                                  "other",
	"GET /v1/auth/oidc/callback":                               "other",
	"POST /v1/auth/oidc/callback":                              "other",
	"POST /v1/auth/login":                                      "other",
	"POST /v1/auth/refresh":                                    "other",
	"POST /v1/auth/logout":                                     "other",
	"GET /v1/auth/session":                                     "other",
	"POST /v1/auth/mfa/enrol":                                  "other",
	"POST /v1/auth/mfa/confirm":                                "other",
	"GET /v1/tenants/{id}/users":                               "other",
	"POST /v1/tenants/{id}/users":                              "other",
	"GET /v1/tenants/{id}/users/{uid}":                         "other",
	"PATCH /v1/tenants/{id}/users/{uid}":                       "other",
	"POST /v1/tenants/{id}/users/{uid}/disable":                "other",
	"POST /v1/tenants/{id}/users/{uid}/enable":                 "other",
	"POST /v1/tenants/{id}/users/{uid}/reset-mfa":              "other",
	"POST /v1/tenants/{id}/users/{uid}/unlock":                 "other",
	"GET /v1/tenants/{id}/users/{uid}/sessions":                "other",
	"DELETE /v1/tenants/{id}/users/{uid}/sessions":             "other",
	"DELETE /v1/tenants/{id}/users/{uid}/sessions/{session}":   "other",
	"GET /v1/tenants/{id}/roles":                               "other",
	"POST /v1/tenants/{id}/roles":                              "other",
	"GET /v1/tenants/{id}/roles/{role}":                        "other",
}

// The tenant's items: villa-a's and villa-b's record, subject and blob.
// The two records share an e-mail address, so one blind-index search
// finds both.
const (
	scopeRecordA  = "rec-villa-a"
	scopeRecordB  = "rec-villa-b"
	scopeSubjectA = "subj-villa-a"
	scopeSubjectB = "subj-villa-b"
	scopeMissingR = "rec-villa-x" // no such record
	scopeMissingS = "subj-villa-x"
	scopeMissingB = "bzzzzzzzzzzzzzzzz" // no such blob
	scopeContentB = "VILLA-B CONTENT"
	scopeEmail    = "shared@villas.test"
)

// scopePrincipal is one principal of the matrix.
type scopePrincipal struct {
	name  string
	token string
}

// scopeMatrix is the tenant under test and its principals.
type scopeMatrix struct {
	t       *testing.T
	e       *env
	blobA   string
	blobB   string
	keyID   string
	markers []string // what of villa-b a scoped principal must never get
}

// target is op's path for the given item ids, with the required query
// parameters.
func (m *scopeMatrix) target(op *specOp, rid, sid, bid string) string {
	vals := map[string]string{"id": "acme", "name": "guests", "rid": rid, "sid": sid, "bid": bid, "kid": m.keyID}
	if strings.HasPrefix(op.path, "/v1/operator/raft/peers/") {
		vals["id"] = "n9"
	}
	target := op.path
	for k, v := range vals {
		target = strings.ReplaceAll(target, "{"+k+"}", url.PathEscape(v))
	}
	q := url.Values{}
	for _, p := range op.params {
		if p.In == "query" && p.Required {
			q.Set(p.Name, suspendQuery[p.Name])
		}
	}
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	return target
}

// body is a valid body of op for a principal that may do it to the
// villa-b item: what it writes keeps the item villa-b's.
func (m *scopeMatrix) body(op *specOp) (string, []reqOpt) {
	switch {
	case op.bodySchema == "RecordInput":
		return `{"subject":"` + scopeSubjectB + `","attributes":{"property":"villa-b"},"fields":{"email":"` + scopeEmail + `","stay":"long"}}`, nil
	case op.bodySchema == "RecordPatch":
		return `{"fields":{"stay":"short"}}`, nil
	case op.bodySchema != "":
		return bodyFixtures[op.bodySchema], nil
	case op.rawBody:
		return "RIFF\x24\x00\x00\x00WAVEfmt acme", []reqOpt{withHeader("Content-Type", "audio/wav")}
	}
	return "", nil
}

// send is op by the principal, on the given target, under a fixed request
// id (so that two answers can be compared byte for byte).
func (m *scopeMatrix) send(p scopePrincipal, op *specOp, target string) response {
	body, opts := m.body(op)
	opts = append(opts, withHeader("Authorization", "Bearer "+p.token), withHeader("X-Request-Id", "scope-matrix"))
	return m.e.do(op.method, target, body, opts...)
}

// leaks lists the villa-b markers in r's body, but for the path of the
// request, which a problem echoes (its instance): the caller named the
// item, the answer must not confirm it.
func (m *scopeMatrix) leaks(r response, target string) []string {
	path, _, _ := strings.Cut(target, "?")
	body := bytes.ReplaceAll(r.body, []byte(`"instance":"`+path+`"`), nil)
	var out []string
	for _, mk := range m.markers {
		if bytes.Contains(body, []byte(mk)) {
			out = append(out, mk)
		}
	}
	return out
}

// sameAsMissing checks that the answer about the villa-b item (got, whose
// path names id) is the answer about a missing one (missing, whose path
// names missingID): the same status and Content-Type, and the same body
// byte for byte once the id the path echoes (the problem's instance) is
// the same.
func sameAsMissing(t *testing.T, what string, got response, id string, missing response, missingID string) {
	t.Helper()
	want := bytes.ReplaceAll(missing.body, []byte(missingID), []byte(id))
	if got.status != missing.status || got.header.Get("Content-Type") != missing.header.Get("Content-Type") || !bytes.Equal(got.body, want) {
		t.Errorf("%s: villa-b's item answers %d %s\nbut a missing one answers %d %s", what, got.status, got.body, missing.status, want)
	}
}

// TestScopeMatrix: acceptance 2 of issue 12, through every operation of
// openapi.json (see scopeClass).
func TestScopeMatrix(t *testing.T) {
	e := newEnv(t, api.Options{})
	m := &scopeMatrix{t: t, e: e}
	_, ops := loadSpecOps(t)
	inSpec := map[string]bool{}
	for _, op := range ops {
		inSpec[op.String()] = true
		if _, ok := scopeClass[op.String()]; !ok {
			t.Errorf("%s is not placed in the scope matrix: add it to scopeClass", op)
		}
	}
	for name := range scopeClass {
		if !inSpec[name] {
			t.Errorf("scopeClass names %s, which openapi.json does not describe", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The tenant and its data, written through an Owner key (the
	// bootstrap path: the operator creates the tenant's first key).
	e.mustCreate("acme", "Acme")
	owner := e.createKey(t, "acme", `{"name":"setup","role":"owner"}`)
	as := func(token string) reqOpt { return withHeader("Authorization", "Bearer "+token) }
	must := func(r response, status int, what string) response {
		t.Helper()
		if r.status != status {
			t.Fatalf("%s: %d %s", what, r.status, r.body)
		}
		return r
	}
	must(e.do("PUT", "/v1/tenants/acme/collections/guests", guestsV1, as(owner.Token)), http.StatusCreated, "collection")
	must(e.do("POST", "/v1/tenants/acme/purposes", `{"id":"call-recording","description":"Recording of calls","basis":"consent"}`, as(owner.Token)), http.StatusCreated, "purpose")
	for _, c := range []struct{ id, subject, villa string }{{scopeRecordA, scopeSubjectA, "villa-a"}, {scopeRecordB, scopeSubjectB, "villa-b"}} {
		must(e.do("POST", "/v1/tenants/acme/collections/guests/records",
			`{"id":"`+c.id+`","subject":"`+c.subject+`","attributes":{"property":"`+c.villa+`"},"fields":{"email":"`+scopeEmail+`","stay":"short"}}`, as(owner.Token)),
			http.StatusCreated, "record "+c.id)
	}
	upload := func(query, content string) string {
		var b struct{ ID string }
		must(e.do("POST", "/v1/tenants/acme/blobs?"+query, content, as(owner.Token), withHeader("Content-Type", "text/plain")), http.StatusCreated, "blob "+query).json(t, &b)
		return b.ID
	}
	m.blobA = upload("subject="+scopeSubjectA+"&attribute=property:villa-a", "VILLA-A CONTENT")
	// Linked to villa-b's record, without attributes: it inherits
	// property=villa-b.
	m.blobB = upload("subject="+scopeSubjectB+"&collection=guests&record="+scopeRecordB, scopeContentB)
	m.markers = []string{scopeRecordB, scopeSubjectB, m.blobB, `"property":"villa-b"`, scopeContentB}

	scoped := e.createKey(t, "acme", `{"name":"concierge villa a","role":"concierge","scopes":{"property":["villa-a"]}}`)
	unscoped := e.createKey(t, "acme", `{"name":"concierge","role":"concierge"}`)
	m.keyID = unscoped.ID
	// Users bound to the same role, with and without the scope, created
	// by the Owner key and logged in through the API: a session's
	// principal carries its user's scopes as a key's carries the key's.
	login := func(username, scopes string) string {
		must(e.do("POST", "/v1/tenants/acme/users", `{"username":"`+username+`","password":"`+peoplePass+`","role":"concierge"`+scopes+`}`, as(owner.Token)),
			http.StatusCreated, "user "+username)
		var session tokens
		must(e.do("POST", "/v1/auth/login", `{"tenant":"acme","username":"`+username+`","password":"`+peoplePass+`"}`, withoutHeader("Authorization")),
			http.StatusOK, "login of "+username).json(t, &session)
		return session.AccessToken
	}
	// The principals of the matrix, each scoped one with its unscoped
	// twin of the same kind and role.
	pairs := []struct{ scoped, all scopePrincipal }{
		{scopePrincipal{"API key scoped to villa-a", scoped.Token}, scopePrincipal{"unscoped API key", unscoped.Token}},
		{scopePrincipal{"user scoped to villa-a", login("concierge-a", `,"scopes":{"property":["villa-a"]}`)}, scopePrincipal{"unscoped user", login("concierge", "")}},
	}

	// Reads first, then the writes (the unscoped principal's change
	// villa-b's record; it stays villa-b's), and logout last (it ends a
	// user's session).
	var reads, writes, last []*specOp
	for _, op := range ops {
		switch {
		case op.String() == "POST /v1/auth/logout":
			last = append(last, op)
		case op.method == http.MethodGet || op.method == http.MethodHead:
			reads = append(reads, op)
		default:
			writes = append(writes, op)
		}
	}
	for _, pair := range pairs {
		p, all := pair.scoped, pair.all
		seenByUnscoped := map[string]bool{}
		for _, op := range slices.Concat(reads, writes, last) {
			switch class := scopeClass[op.String()]; class {
			case "record", "blob", "subject", "consent":
				rid, sid, bid, id := scopeRecordB, scopeSubjectB, m.blobB, ""
				mrid, msid, mbid, mid := scopeMissingR, scopeMissingS, scopeMissingB, ""
				switch class {
				case "record":
					id, mid = rid, mrid
				case "blob":
					id, mid = bid, mbid
				case "subject", "consent":
					id, mid = sid, msid
				}
				target := m.target(op, rid, sid, bid)
				got := m.send(p, op, target)
				missing := m.send(p, op, m.target(op, mrid, msid, mbid))
				sameAsMissing(t, p.name+": "+op.String(), got, id, missing, mid)
				if leaks := m.leaks(got, target); len(leaks) > 0 {
					t.Errorf("%s: %s shows %v of villa-b: %s", p.name, op, leaks, got.body)
				}
				// Not blind: the unscoped principal reaches the item
				// where its role allows the operation.
				r := m.send(all, op, target)
				switch {
				case r.status == http.StatusForbidden:
					if got.status != http.StatusForbidden {
						t.Errorf("%s: the role refuses it unscoped (%d), but scoped it answers %d", op, r.status, got.status)
					}
				case r.status >= 300:
					t.Errorf("%s: unscoped, villa-b's item answers %d %s", op, r.status, r.body)
				default:
					seenByUnscoped[op.String()] = true
					if op.method != http.MethodHead && op.method != http.MethodDelete && class != "consent" && len(m.leaks(r, target)) == 0 {
						t.Errorf("%s: unscoped, the answer shows nothing of villa-b: %s", op, r.body)
					}
				}
				// The villa-a item is the scoped principal's.
				if got.status == http.StatusNotFound && op.method == http.MethodGet {
					if r := m.send(p, op, m.target(op, scopeRecordA, scopeSubjectA, m.blobA)); r.status != http.StatusOK {
						t.Errorf("%s: %s of villa-a answers %d %s", p.name, op, r.status, r.body)
					}
				}
			case "records":
				base := m.target(op, "", "", "")
				for _, q := range []string{"", "?field=email&value=" + url.QueryEscape(`"`+scopeEmail+`"`), "?attribute=property:villa-b", "?attribute=property:villa-a", "?limit=1"} {
					got := m.send(p, op, base+q)
					if got.status != http.StatusOK || len(m.leaks(got, base)) > 0 || (q != "?attribute=property:villa-b" && !bytes.Contains(got.body, []byte(scopeRecordA))) {
						t.Errorf("%s: %s%s: %d %s, want villa-a's record and nothing of villa-b", p.name, op, q, got.status, got.body)
					}
					r := m.send(all, op, base+q)
					if q != "?attribute=property:villa-a" && q != "?limit=1" && (r.status != http.StatusOK || !bytes.Contains(r.body, []byte(scopeRecordB))) {
						t.Errorf("unscoped: %s%s: %d %s, want villa-b's record", op, q, r.status, r.body)
					}
				}
				seenByUnscoped[op.String()] = true
			case "blobs":
				base := m.target(op, "", "", "")
				for _, q := range []string{"", "?subject=" + scopeSubjectB, "?limit=1"} {
					got := m.send(p, op, base+q)
					if got.status != http.StatusOK || len(m.leaks(got, base)) > 0 {
						t.Errorf("%s: %s%s: %d %s, want nothing of villa-b", p.name, op, q, got.status, got.body)
					}
					if q == "" && !bytes.Contains(got.body, []byte(m.blobA)) {
						t.Errorf("%s: %s: villa-a's blob is missing: %s", p.name, op, got.body)
					}
					r := m.send(all, op, base+q)
					if q != "?limit=1" && (r.status != http.StatusOK || !bytes.Contains(r.body, []byte(m.blobB))) {
						t.Errorf("unscoped: %s%s: %d %s, want villa-b's blob", op, q, r.status, r.body)
					}
				}
				seenByUnscoped[op.String()] = true
			case "unscoped":
				target := m.target(op, "", "", "")
				got, r := m.send(p, op, target), m.send(all, op, target)
				if got.status != http.StatusForbidden || !bytes.Contains(got.body, []byte("problems/forbidden")) || r.status != http.StatusOK {
					t.Errorf("%s: %s answers %d %s; unscoped %d; want 403 and 200", p.name, op, got.status, got.body, r.status)
				}
			default:
				target := m.target(op, scopeRecordA, scopeSubjectA, m.blobA)
				got := m.send(p, op, target)
				r := m.send(all, op, target)
				if got.status != r.status || len(m.leaks(got, target)) > 0 {
					t.Errorf("%s: %s answers %d %s; unscoped %d", p.name, op, got.status, got.body, r.status)
				}
			}
		}
		for _, op := range []string{
			"GET /v1/tenants/{id}/collections/{name}/records/{rid}", "PUT /v1/tenants/{id}/collections/{name}/records/{rid}",
			"PATCH /v1/tenants/{id}/collections/{name}/records/{rid}", "GET /v1/tenants/{id}/subjects/{sid}",
			"GET /v1/tenants/{id}/blobs/{bid}", "HEAD /v1/tenants/{id}/blobs/{bid}", "GET /v1/tenants/{id}/blobs/{bid}/metadata",
			"GET /v1/tenants/{id}/collections/{name}/records", "GET /v1/tenants/{id}/blobs",
		} {
			if !seenByUnscoped[op] {
				t.Errorf("%s: the %s never reached villa-b's item: the check would be blind", op, all.name)
			}
		}
	}

	// Writes and audit of a role that may create and read the chain
	// (Manager), scoped and not: an item outside the scope cannot be
	// created, and the chain is refused to the scoped principal only.
	manager := e.createKey(t, "acme", `{"name":"manager villa a","role":"manager","scopes":{"property":["villa-a"]}}`)
	managerAll := e.createKey(t, "acme", `{"name":"manager","role":"manager"}`)
	rec := func(id, villa string) string {
		return `{"id":"` + id + `","subject":"s-new","attributes":{"property":"` + villa + `"},"fields":{"email":"n@villas.test"}}`
	}
	checkProblem(t, e.do("POST", "/v1/tenants/acme/collections/guests/records", rec("new-b", "villa-b"), as(manager.Token)), http.StatusForbidden, "forbidden", "")
	must(e.do("POST", "/v1/tenants/acme/collections/guests/records", rec("new-a", "villa-a"), as(manager.Token)), http.StatusCreated, "scoped create in scope")
	checkProblem(t, e.do("PATCH", "/v1/tenants/acme/collections/guests/records/new-a", `{"attributes":{"property":"villa-b"}}`, as(manager.Token)), http.StatusForbidden, "forbidden", "")
	checkProblem(t, e.do("POST", "/v1/tenants/acme/blobs?attribute=property:villa-b", "x", as(manager.Token), withHeader("Content-Type", "text/plain")), http.StatusForbidden, "forbidden", "")
	must(e.do("POST", "/v1/tenants/acme/blobs?attribute=property:villa-a", "x", as(manager.Token), withHeader("Content-Type", "text/plain")), http.StatusCreated, "scoped upload in scope")
	for _, path := range []string{"/v1/tenants/acme/audit", "/v1/tenants/acme/audit/checkpoint", "/v1/tenants/acme/audit/export", "/v1/tenants/acme/audit/stats", "/v1/tenants/acme/consent-stats"} {
		checkProblem(t, e.do("GET", path, "", as(manager.Token)), http.StatusForbidden, "forbidden", "")
	}
	if r := e.do("GET", "/v1/tenants/acme/audit", "", as(managerAll.Token)); r.status != http.StatusOK || !bytes.Contains(r.body, []byte(scopeRecordB)) {
		t.Errorf("the unscoped manager reads the chain: %d %s", r.status, r.body)
	}
	// The unscoped principal's writes left villa-b's record villa-b's.
	var got struct{ Attributes map[string]string }
	must(e.do("GET", "/v1/tenants/acme/collections/guests/records/"+scopeRecordB, "", as(owner.Token)), http.StatusOK, "villa-b's record").json(t, &got)
	if got.Attributes["property"] != "villa-b" {
		t.Errorf("villa-b's record after the matrix: %v", got.Attributes)
	}
}
