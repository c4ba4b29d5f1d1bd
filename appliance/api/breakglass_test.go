package api_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
)

// The canaries of TestBreakGlass: in acme's record (pii and sensitive
// fields) and in its blob's bytes.
const (
	bgCanaryEmail = "bg-canary-7q2@acme.test"
	bgCanaryNote  = "bg-canary-note-5x9"
	bgCanaryBlob  = "bg-canary-blob-3k8"
)

// bgEnv is TestBreakGlass's tenant acme (a record, a subject and a blob
// holding canaries) and its Owner and Manager keys.
type bgEnv struct {
	*suspendEnv
	owner, manager createdKey
	blobBytes      []byte
}

func newBGEnv(t *testing.T) *bgEnv {
	e := newEnv(t, api.Options{})
	b := &bgEnv{suspendEnv: &suspendEnv{t: t, e: e}}
	e.mustCreate("acme", "Acme")
	e.mustCreate("globex", "Globex")
	for _, id := range []string{"acme", "globex"} {
		if r := e.do("PUT", "/v1/tenants/"+id+"/collections/guests", guestsV1); r.status != http.StatusCreated {
			t.Fatalf("collection of %s: %d %s", id, r.status, r.body)
		}
	}
	if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"`+aRecord+`","subject":"`+aSubject+`","fields":{"email":"`+bgCanaryEmail+`","notes":{"n":"`+bgCanaryNote+`"}}}`); r.status != http.StatusCreated {
		t.Fatalf("record: %d %s", r.status, r.body)
	}
	b.blobBytes = []byte("RIFF\x24\x00\x00\x00WAVEfmt " + bgCanaryBlob)
	var bl struct{ ID string }
	e.do("POST", "/v1/tenants/acme/blobs?subject="+aSubject, string(b.blobBytes), withHeader("Content-Type", "audio/wav")).json(t, &bl)
	b.blob = bl.ID
	b.owner = e.createKey(t, "acme", `{"name":"owner","role":"owner"}`)
	b.manager = e.createKey(t, "acme", `{"name":"manager","role":"manager"}`)
	b.keyOther = e.createKey(t, "acme", `{"name":"other","permissions":["read"]}`).ID
	b.grant = b.requestGrant()
	return b
}

// asOperator sends with the root operator token.
func asOperator() reqOpt { return withHeader("Authorization", "Bearer "+goodToken) }

// as sends with k.
func as(k createdKey) reqOpt { return withHeader("Authorization", "Bearer "+k.Token) }

// walk sends every operation of openapi.json as the operator, aimed at
// acme's own resources (deletions last; the tenant itself is not
// deleted, and is resumed after), and fails on any answer that carries a
// canary: a decrypted field or a blob byte. It returns how many
// operations answered 2xx.
func (b *bgEnv) walk(label string) int {
	t := b.t
	t.Helper()
	_, ops := loadSpecOps(t)
	slices.SortStableFunc(ops, func(x, y *specOp) int { return cmpBool(x.method == http.MethodDelete, y.method == http.MethodDelete) })
	ok := 0
	for _, op := range ops {
		if op.String() == "DELETE /v1/tenants/{id}" {
			continue
		}
		method, target, body, opts := b.request(op)
		r := b.e.do(method, target, body, append(opts, asOperator())...)
		if r.status < 300 {
			ok++
		}
		for _, c := range []string{bgCanaryEmail, bgCanaryNote, bgCanaryBlob} {
			if strings.Contains(string(r.body), c) || strings.Contains(strings.Join(flatHeaders(r.header), "\n"), c) {
				t.Errorf("%s: %s by the operator answered %d with acme's data (%s)", label, op, r.status, c)
			}
		}
	}
	if r := b.e.do("POST", "/v1/tenants/acme/resume", ""); r.status != http.StatusOK {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}
	return ok
}

func flatHeaders(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k+": "+strings.Join(vs, ","))
	}
	return out
}

// grant is one grant as listed.
type grantView struct {
	ID, State, Operator, Reason string
	ExpiresAt                   *time.Time `json:"expires_at"`
	ApprovedBy                  string     `json:"approved_by"`
}

// grants lists acme's grants with k.
func (b *bgEnv) grants(k createdKey) map[string]grantView {
	b.t.Helper()
	var l struct{ Grants []grantView }
	r := b.e.do("GET", "/v1/tenants/acme/breakglass", "", as(k))
	if r.status != http.StatusOK {
		b.t.Fatalf("list grants: %d %s", r.status, r.body)
	}
	r.json(b.t, &l)
	out := map[string]grantView{}
	for _, g := range l.Grants {
		out[g.ID] = g
	}
	return out
}

// actions counts the entries of acme's chain by action.
func (b *bgEnv) actions() map[string]int {
	b.t.Helper()
	var page struct {
		Entries []struct {
			Entry struct {
				Action string
				Actor  struct{ Type, ID string }
			}
		}
	}
	b.e.do("GET", "/v1/tenants/acme/audit?limit=1000&action=breakglass.", "").json(b.t, &page)
	out := map[string]int{}
	for _, en := range page.Entries {
		out[en.Entry.Action]++
	}
	return out
}

// TestBreakGlass (issue 12, "operators do not read tenants' data";
// acceptance 8): the root operator credential gets no decrypted field or
// blob byte of a tenant through any operation of the API; with a grant
// the tenant's Owner approved it reads the records, blobs and subjects of
// that tenant (only reads, only that tenant) in clear until the grant
// expires (the clock is the env's); every step is in the tenant's chain,
// and the tenant lists the grants with their state. A policy set in
// advance approves at once; the Owner revokes.
func TestBreakGlass(t *testing.T) {
	b := newBGEnv(t)
	e := b.e
	record := "/v1/tenants/acme/collections/guests/records/" + aRecord
	reads := []string{record, "/v1/tenants/acme/blobs/" + b.blob, "/v1/tenants/acme/subjects/" + aSubject,
		"/v1/tenants/acme/collections/guests/records?field=email&value=%22" + bgCanaryEmail + "%22"}
	refused := func(label string) {
		t.Helper()
		for _, target := range reads {
			p := checkProblem(t, e.do("GET", target, "", asOperator()), http.StatusForbidden, "forbidden", "")
			if !strings.Contains(p.Detail, "break-glass") {
				t.Errorf("%s: GET %s: %q does not say how an operator reads data", label, target, p.Detail)
			}
		}
	}

	// No grant: nothing of the data through any route.
	if ok := b.walk("no grant"); ok < 15 {
		t.Fatalf("only %d operations answered the operator: the walk is blind", ok)
	}
	refused("no grant")

	// A request is pending until acme's Owner approves it: not the
	// operator, not a Manager, not another tenant's Owner.
	var g grantView
	r := e.do("POST", "/v1/tenants/acme/breakglass", `{"reason":"ticket 4711: guest cannot log in","duration_seconds":600}`, asOperator())
	if r.status != http.StatusCreated {
		t.Fatalf("request: %d %s", r.status, r.body)
	}
	r.json(t, &g)
	if g.State != "pending" || g.Operator != "operator" {
		t.Fatalf("a new request: %+v", g)
	}
	refused("pending")
	approve := "/v1/tenants/acme/breakglass/" + g.ID + "/approve"
	checkProblem(t, e.do("POST", approve, "", asOperator()), http.StatusForbidden, "forbidden", "")
	checkProblem(t, e.do("POST", approve, "", as(b.manager)), http.StatusForbidden, "forbidden", "")
	globexOwner := e.createKey(t, "globex", `{"name":"owner","role":"owner"}`)
	checkProblem(t, e.do("POST", approve, "", as(globexOwner)), http.StatusNotFound, "not-found", "")
	if r := e.do("POST", approve, "", as(b.owner)); r.status != http.StatusOK {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("POST", approve, "", as(b.owner)), http.StatusConflict, "conflict", "")

	// Active: the operator reads acme's data in clear — reads only, and
	// only acme's.
	if r := e.do("GET", record, "", asOperator()); r.status != http.StatusOK || !strings.Contains(string(r.body), bgCanaryEmail) || !strings.Contains(string(r.body), bgCanaryNote) {
		t.Fatalf("the record under an active grant: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/tenants/acme/blobs/"+b.blob, "", asOperator()); r.status != http.StatusOK || !bytes.Equal(r.body, b.blobBytes) {
		t.Fatalf("the blob under an active grant: %d %q", r.status, r.body)
	}
	if r := e.do("GET", "/v1/tenants/acme/subjects/"+aSubject, "", asOperator()); r.status != http.StatusOK || !strings.Contains(string(r.body), aRecord) {
		t.Fatalf("the subject under an active grant: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("PATCH", record, `{"fields":{"stay":"long"}}`, asOperator()), http.StatusForbidden, "forbidden", "")
	checkProblem(t, e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"subject":"x","fields":{"email":"x@y.z"}}`, asOperator()), http.StatusForbidden, "forbidden", "")
	checkProblem(t, e.do("DELETE", "/v1/tenants/acme/blobs/"+b.blob, "", asOperator()), http.StatusForbidden, "forbidden", "")
	checkProblem(t, e.do("GET", "/v1/tenants/globex/collections/guests/records", "", asOperator()), http.StatusForbidden, "forbidden", "")
	// The tenant sees it: who, why, until when.
	listed := b.grants(b.owner)[g.ID]
	if listed.State != "active" || listed.Reason != "ticket 4711: guest cannot log in" || listed.ExpiresAt == nil || listed.ApprovedBy != audit.ActorAPIKey+":"+b.owner.ID {
		t.Errorf("acme's Owner lists the grant as %+v", listed)
	}
	if got := b.grants(b.manager)[g.ID]; got.State != "active" {
		t.Errorf("acme's Manager (breakglass:read) lists the grant as %+v", got)
	}

	// Expired: refused again, and nothing through any route.
	e.advance(601 * time.Second)
	refused("expired")
	if got := b.grants(b.owner)[g.ID]; got.State != "expired" {
		t.Errorf("after its end the grant lists as %+v", got)
	}
	b.walk("expired")
	acts := b.actions()
	// Requests (the walks', too), one approval, a use per read, the
	// expiry once however often the grant was consulted after its end.
	if acts["breakglass.request"] < 2 || acts["breakglass.approve"] != 1 || acts["breakglass.use"] < 3 || acts["breakglass.expire"] != 1 {
		t.Errorf("acme's chain holds break-glass entries %v", acts)
	}

	// A policy set in advance approves at once, within its bound; the
	// Owner revokes.
	checkProblem(t, e.do("PUT", "/v1/tenants/acme/breakglass-policy", `{"auto_approve":true,"max_duration_seconds":3600}`, asOperator()), http.StatusForbidden, "forbidden", "")
	if r := e.do("PUT", "/v1/tenants/acme/breakglass-policy", `{"auto_approve":true,"max_duration_seconds":3600}`, as(b.owner)); r.status != http.StatusOK {
		t.Fatalf("policy: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("POST", "/v1/tenants/acme/breakglass", `{"reason":"too long","duration_seconds":7200}`, asOperator()), http.StatusUnprocessableEntity, "validation", "")
	var auto grantView
	e.do("POST", "/v1/tenants/acme/breakglass", `{"reason":"night incident"}`, asOperator()).json(t, &auto)
	if auto.State != "active" || auto.ApprovedBy != "policy" {
		t.Fatalf("a request under auto-approval: %+v", auto)
	}
	if r := e.do("GET", record, "", asOperator()); r.status != http.StatusOK || !strings.Contains(string(r.body), bgCanaryEmail) {
		t.Fatalf("the record under an auto-approved grant: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/tenants/acme/breakglass/"+auto.ID+"/revoke", "", as(b.owner)); r.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	refused("revoked")
	if got := b.grants(b.owner)[auto.ID]; got.State != "revoked" {
		t.Errorf("a revoked grant lists as %+v", got)
	}
	if acts := b.actions(); acts["breakglass.revoke"] != 1 || acts["breakglass.policy"] != 1 {
		t.Errorf("acme's chain holds break-glass entries %v", acts)
	}
}
