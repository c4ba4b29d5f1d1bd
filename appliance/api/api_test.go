package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

func TestNewPanicsOnBadWiring(t *testing.T) {
	e := newEnv(t, api.Options{})
	good := e.deps()
	for name, tc := range map[string]struct {
		deps api.Deps
		opts api.Options
	}{
		"no cluster":       {without(good, func(d *api.Deps) { d.Cluster = nil }), api.Options{}},
		"no tenants":       {without(good, func(d *api.Deps) { d.Tenants = nil }), api.Options{}},
		"no auth":          {without(good, func(d *api.Deps) { d.Auth = nil }), api.Options{}},
		"no keys":          {without(good, func(d *api.Deps) { d.Keys = nil }), api.Options{}},
		"no audit":         {without(good, func(d *api.Deps) { d.Audit = nil }), api.Options{}},
		"no self-check":    {without(good, func(d *api.Deps) { d.SelfCheck = nil }), api.Options{}},
		"no API keys":      {without(good, func(d *api.Deps) { d.APIKeys = nil }), api.Options{}},
		"no collections":   {without(good, func(d *api.Deps) { d.Collections = nil }), api.Options{}},
		"no records":       {without(good, func(d *api.Deps) { d.Records = nil }), api.Options{}},
		"negative limit":   {good, api.Options{BodyLimit: -1}},
		"negative timeout": {good, api.Options{RequestTimeout: -time.Second}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			api.New(tc.deps, tc.opts)
		}()
	}
}

func TestHealthAndStatus(t *testing.T) {
	e := newEnv(t, api.Options{})
	r := e.do("GET", "/v1/sys/health", "", withoutHeader("Authorization"))
	if r.status != http.StatusOK || r.header.Get("X-Custos-Role") != "leader" {
		t.Fatalf("health: %d role %q: %s", r.status, r.header.Get("X-Custos-Role"), r.body)
	}
	var h map[string]any
	r.json(t, &h)
	if h["status"] != "ok" || h["node_id"] != "n1" || h["role"] != "leader" || h["leader_id"] != "n1" {
		t.Errorf("health body %v", h)
	}

	r = e.do("GET", "/v1/sys/status", "")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	var st map[string]any
	r.json(t, &st)
	for _, k := range []string{"node_id", "region", "version", "state", "term", "commit_index", "applied_index",
		"last_log_index", "leader_id", "leader_address", "peers", "stats"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status lacks %q: %s", k, r.body)
		}
	}
	if st["version"] != "1.2.3-test" || st["region"] != storetest.Region || st["state"] != "Leader" {
		t.Errorf("status body %s", r.body)
	}
}

func TestHealthWithoutLeader(t *testing.T) {
	// A node that was never bootstrapped knows no leader.
	lonely := storetest.StartWith(t, storetest.Options{Lone: true, ApplyTimeout: 300 * time.Millisecond})
	e := newEnv(t, api.Options{RequestTimeout: 300 * time.Millisecond})
	svc := tenants.New(tenancy.New(lonely), storetest.Region)
	srv := e.server(without(e.deps(), func(d *api.Deps) { d.Cluster, d.Tenants = lonely, svc }), api.Options{RequestTimeout: 300 * time.Millisecond})

	r := doOn(t, srv, "GET", "/v1/sys/health", "", withoutHeader("Authorization"))
	checkProblem(t, r, http.StatusServiceUnavailable, "unavailable", "/v1/sys/health")
	if r.header.Get("Retry-After") != "1" || r.header.Get("X-Custos-Role") != "follower" {
		t.Errorf("503 headers: %v", r.header)
	}
	// Reads and writes through a node without a leader are 503 too.
	r = doOn(t, srv, "GET", "/v1/tenants/acme", "")
	checkProblem(t, r, http.StatusServiceUnavailable, "unavailable", "/v1/tenants/acme")
	r = doOn(t, srv, "POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`)
	checkProblem(t, r, http.StatusServiceUnavailable, "unavailable", "/v1/tenants")
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	e := newEnv(t, api.Options{RequestTimeout: 500 * time.Millisecond})
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, rq := range []struct{ method, path, body string }{
		{"POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`},
		{"GET", "/v1/tenants", ""},
		{"DELETE", "/v1/tenants/acme", ""},
	} {
		r := e.do(rq.method, rq.path, rq.body)
		p := checkProblem(t, r, http.StatusServiceUnavailable, "unavailable", rq.path)
		if r.header.Get("Retry-After") != "1" || strings.Contains(p.Detail, "raftstore") {
			t.Errorf("%s %s: headers %v detail %q", rq.method, rq.path, r.header, p.Detail)
		}
	}
}

func TestPeers(t *testing.T) {
	e := newEnv(t, api.Options{})
	r := e.do("GET", "/v1/operator/raft/peers", "")
	var body struct {
		Peers []raftstore.Peer `json:"peers"`
	}
	r.json(t, &body)
	if r.status != http.StatusOK || len(body.Peers) != 1 || body.Peers[0].ID != "n1" || !body.Peers[0].Leader || !body.Peers[0].Voter {
		t.Fatalf("peers: %d %s", r.status, r.body)
	}
	// Removing a member that is not there succeeds: the call is idempotent.
	for range 2 {
		if r := e.do("DELETE", "/v1/operator/raft/peers/n9", ""); r.status != http.StatusNoContent || len(r.body) != 0 {
			t.Errorf("remove absent peer: %d %s", r.status, r.body)
		}
	}
	// Naming the current leader is a successful no-op.
	r = e.do("POST", "/v1/operator/raft/transfer-leader", `{"id":"n1"}`)
	if r.status != http.StatusAccepted || !strings.Contains(string(r.body), `"transferred"`) {
		t.Errorf("transfer to the leader itself: %d %s", r.status, r.body)
	}
	// A single node has nobody to hand leadership to.
	for _, body := range []string{"", "{}"} {
		r = e.do("POST", "/v1/operator/raft/transfer-leader", body)
		checkProblem(t, r, http.StatusConflict, "conflict", "/v1/operator/raft/transfer-leader")
	}
	r = e.do("POST", "/v1/operator/raft/transfer-leader", `{"id":"n7"}`)
	p := checkProblem(t, r, http.StatusUnprocessableEntity, "validation", "")
	if len(p.Errors) != 1 || p.Errors[0].Field != "id" {
		t.Errorf("unknown peer: %+v", p)
	}
	r = e.do("POST", "/v1/operator/raft/transfer-leader", `{"id":"Not A Node"}`)
	checkProblem(t, r, http.StatusUnprocessableEntity, "validation", "")
	if !e.store.IsLeader() {
		t.Error("the node lost leadership")
	}
}

func TestTenantLifecycle(t *testing.T) {
	e := newEnv(t, api.Options{})
	r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"Acme Hotels","region":"eu-west-1"}`,
		withHeader("X-Request-Id", "create-acme-1"))
	if r.status != http.StatusCreated || r.header.Get("Location") != "/v1/tenants/acme" {
		t.Fatalf("create: %d %v %s", r.status, r.header, r.body)
	}
	var created tenants.Tenant
	r.json(t, &created)
	if created.ID != "acme" || created.DisplayName != "Acme Hotels" || created.Region != "eu-west-1" ||
		created.State != tenants.StateActive || created.CreatedAt.IsZero() {
		t.Errorf("created %+v", created)
	}
	// The audit entry carries the request id.
	err := e.store.View(context.Background(), raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		data, _, ok := tx.ChainEntry([]byte(tenancy.SystemChain), 1)
		if !ok || !strings.Contains(string(data), `"request_id":"create-acme-1"`) || strings.Contains(string(data), "Acme Hotels") {
			t.Errorf("audit entry: %s", data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A generated id, and the cluster's region by default.
	r = e.do("POST", "/v1/tenants", `{"display_name":"Generated"}`)
	var gen tenants.Tenant
	r.json(t, &gen)
	if r.status != http.StatusCreated || !strings.HasPrefix(gen.ID, "t-") || gen.Region != storetest.Region ||
		r.header.Get("Location") != "/v1/tenants/"+gen.ID {
		t.Errorf("create with generated id: %d %s", r.status, r.body)
	}

	for _, target := range []string{"/v1/tenants/acme", "/v1/tenants/acme?stale=true", "/v1/tenants/acme?stale=false"} {
		r = e.do("GET", target, "")
		var got tenants.Tenant
		r.json(t, &got)
		if r.status != http.StatusOK || got.ID != "acme" || got.DisplayName != "Acme Hotels" {
			t.Errorf("GET %s: %d %s", target, r.status, r.body)
		}
	}
	if r := e.do("HEAD", "/v1/tenants/acme", ""); r.status != http.StatusOK {
		t.Errorf("HEAD: %d", r.status)
	}

	r = e.do("PATCH", "/v1/tenants/acme", `{"display_name":"  Acme Resorts "}`)
	var patched tenants.Tenant
	r.json(t, &patched)
	if r.status != http.StatusOK || patched.DisplayName != "Acme Resorts" || !patched.UpdatedAt.After(created.UpdatedAt) && !patched.UpdatedAt.Equal(created.UpdatedAt) {
		t.Errorf("patch: %d %s", r.status, r.body)
	}

	for _, step := range []struct{ path, state string }{
		{"/v1/tenants/acme/suspend", "suspended"}, {"/v1/tenants/acme/suspend", "suspended"},
		{"/v1/tenants/acme/resume", "active"}, {"/v1/tenants/acme/resume", "active"},
		{"/v1/tenants/acme/suspend", "suspended"},
	} {
		r = e.do("POST", step.path, "")
		var got tenants.Tenant
		r.json(t, &got)
		if r.status != http.StatusOK || string(got.State) != step.state {
			t.Errorf("POST %s: %d %s", step.path, r.status, r.body)
		}
	}
	// An empty JSON object is an acceptable body for routes that take none.
	if r = e.do("POST", "/v1/tenants/acme/resume", "{}"); r.status != http.StatusOK {
		t.Errorf("resume with {}: %d %s", r.status, r.body)
	}

	r = e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"Again"}`)
	checkProblem(t, r, http.StatusConflict, "conflict", "/v1/tenants")

	r = e.do("POST", "/v1/tenants", `{"id":"other","display_name":"Other","region":"us-east-1"}`)
	p := checkProblem(t, r, http.StatusUnprocessableEntity, "region-mismatch", "/v1/tenants")
	if !strings.Contains(p.Detail, "us-east-1") || !strings.Contains(p.Detail, storetest.Region) {
		t.Errorf("region mismatch detail %q does not name both regions", p.Detail)
	}

	if r = e.do("DELETE", "/v1/tenants/acme", ""); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	for _, rq := range []struct{ method, path, body string }{
		{"GET", "/v1/tenants/acme", ""},
		{"DELETE", "/v1/tenants/acme", ""},
		{"PATCH", "/v1/tenants/acme", `{"display_name":"Ghost"}`},
		{"POST", "/v1/tenants/acme/suspend", ""},
		{"POST", "/v1/tenants/acme/resume", ""},
	} {
		r = e.do(rq.method, rq.path, rq.body)
		checkProblem(t, r, http.StatusNotFound, "not-found", rq.path)
	}
}

func TestListTenants(t *testing.T) {
	e := newEnv(t, api.Options{})
	r := e.do("GET", "/v1/tenants", "")
	if r.status != http.StatusOK || string(r.body) != `{"tenants":[]}` {
		t.Fatalf("empty list: %d %s", r.status, r.body)
	}
	var ids []string
	for i := range 5 {
		id := fmt.Sprintf("tenant-%d", i)
		ids = append(ids, id)
		e.mustCreate(id, "T")
	}
	var got []string
	target := "/v1/tenants?limit=2"
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := e.do("GET", target, "")
		var body struct {
			Tenants []tenants.Tenant `json:"tenants"`
			Next    *string          `json:"next"`
		}
		r.json(t, &body)
		if r.status != http.StatusOK || len(body.Tenants) > 2 {
			t.Fatalf("GET %s: %d %s", target, r.status, r.body)
		}
		for _, tn := range body.Tenants {
			got = append(got, tn.ID)
		}
		if body.Next == nil {
			break
		}
		target = "/v1/tenants?limit=2&stale=true&after=" + *body.Next
	}
	if !slices.Equal(got, ids) {
		t.Errorf("paged %v, want %v", got, ids)
	}
	r = e.do("GET", "/v1/tenants?limit=500", "")
	if r.status != http.StatusOK || strings.Contains(string(r.body), `"next"`) {
		t.Errorf("full page: %d %s", r.status, r.body)
	}
}

func TestRoutingProblems(t *testing.T) {
	e := newEnv(t, api.Options{})
	for _, rq := range []struct {
		method, path string
		status       int
		slug, allow  string
	}{
		{"GET", "/nope", 404, "not-found", ""},
		{"GET", "/v1/tenants/acme/nope", 404, "not-found", ""},
		{"GET", "/V1/TENANTS", 404, "not-found", ""},
		{"PUT", "/v1/tenants", 405, "method-not-allowed", "GET, HEAD, POST"},
		{"POST", "/v1/tenants/acme", 405, "method-not-allowed", "GET, HEAD, DELETE, PATCH"},
		{"GET", "/v1/tenants/acme/suspend", 405, "method-not-allowed", "POST"},
		{"POST", "/v1/sys/health", 405, "method-not-allowed", "GET, HEAD"},
		{"GET", "/v1/operator/raft/peers/n1", 405, "method-not-allowed", "DELETE"},
	} {
		for _, auth := range []bool{true, false} {
			opts := []reqOpt{}
			if !auth {
				opts = append(opts, withoutHeader("Authorization"))
			}
			r := e.do(rq.method, rq.path, "", opts...)
			checkProblem(t, r, rq.status, rq.slug, rq.path)
			if r.header.Get("Allow") != rq.allow {
				t.Errorf("%s %s: Allow %q, want %q", rq.method, rq.path, r.header.Get("Allow"), rq.allow)
			}
		}
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, api.Options{})
	for _, tc := range []struct {
		sent string
		echo bool
	}{
		{"abc-123", true},
		{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"01ARZ3NDEKTSV4RRFFQ69G5FAV", true},
		{"", false},
		{"has space", false},
		{"line\u2028break", false},
		{strings.Repeat("x", 129), false},
	} {
		for _, rq := range []struct{ method, path string }{{"GET", "/v1/tenants"}, {"GET", "/v1/tenants/ghost"}, {"GET", "/nope"}} {
			opts := []reqOpt{}
			if tc.sent != "" {
				opts = append(opts, withHeader("X-Request-Id", tc.sent))
			}
			r := e.do(rq.method, rq.path, "", opts...)
			got := r.header.Get("X-Request-Id")
			switch {
			case tc.echo && got != tc.sent:
				t.Errorf("%s: sent id %q, got %q", rq.path, tc.sent, got)
			case !tc.echo && (got == "" || got == tc.sent):
				t.Errorf("%s: sent id %q, got %q; want a generated id", rq.path, tc.sent, got)
			}
			if r.status >= 400 {
				checkProblem(t, r, r.status, strings.TrimPrefix(problemType(t, r), api.ProblemTypeBase), "")
			}
		}
	}
	a := e.do("GET", "/v1/tenants", "").header.Get("X-Request-Id")
	b := e.do("GET", "/v1/tenants", "").header.Get("X-Request-Id")
	if a == b {
		t.Errorf("two requests got the same generated id %q", a)
	}
}

func problemType(t *testing.T, r response) string {
	var p api.Problem
	r.json(t, &p)
	return p.Type
}

// brokenTenants is the real registry with Get replaced, to force internal
// failures the real store does not produce on demand.
type brokenTenants struct {
	*tenants.Service
	get func() (tenants.Tenant, error)
}

func (b brokenTenants) Get(context.Context, raftstore.Consistency, string) (tenants.Tenant, error) {
	return b.get()
}

func TestInternalErrorsAreHidden(t *testing.T) {
	e := newEnv(t, api.Options{})
	const secret = "bbolt page 1234 corrupt at /var/lib/custos/state.db"
	for name, get := range map[string]func() (tenants.Tenant, error){
		"error": func() (tenants.Tenant, error) { return tenants.Tenant{}, errors.New(secret) },
		"panic": func() (tenants.Tenant, error) { panic(secret) },
		"store conflict": func() (tenants.Tenant, error) {
			return tenants.Tenant{}, fmt.Errorf("tenants: %w: %s", raftstore.ErrConflict, secret)
		},
	} {
		srv := e.server(without(e.deps(), func(d *api.Deps) { d.Tenants = brokenTenants{e.svc, get} }), api.Options{})
		r := doOn(t, srv, "GET", "/v1/tenants/acme", "", withHeader("X-Request-Id", "req-"+strings.ReplaceAll(name, " ", "-")))
		p := checkProblem(t, r, http.StatusInternalServerError, "internal", "/v1/tenants/acme")
		if p.Detail != "internal error" || strings.Contains(string(r.body), "bbolt") {
			t.Errorf("%s: internal detail leaked: %s", name, r.body)
		}
		logs := e.logBuf.String()
		if !strings.Contains(logs, p.RequestID) || !strings.Contains(logs, "bbolt page 1234") {
			t.Errorf("%s: the cause was not logged with the request id", name)
		}
	}
}

// unavailableAuth is an authenticator whose backing store is down.
type unavailableAuth struct{}

func (unavailableAuth) CheckOperatorToken(context.Context, string) error {
	return fmt.Errorf("auth: read token: %w", raftstore.ErrNoLeader)
}

func TestAuth(t *testing.T) {
	e := newEnv(t, api.Options{})
	for _, tc := range []struct {
		name, header string
		status       int
		challenge    string
	}{
		{"missing", "", 401, `Bearer realm="custos"`},
		{"wrong scheme", "Basic " + goodToken, 401, `Bearer realm="custos"`},
		{"empty token", "Bearer ", 401, `Bearer realm="custos"`},
		{"wrong token", "Bearer nope", 401, `Bearer realm="custos", error="invalid_token"`},
		{"token prefix", "Bearer " + goodToken[:5], 401, `Bearer realm="custos", error="invalid_token"`},
		{"lower-case scheme", "bearer " + goodToken, 200, ""},
	} {
		r := e.do("GET", "/v1/tenants", "", withHeader("Authorization", tc.header))
		if tc.status == 200 {
			if r.status != 200 {
				t.Errorf("%s: %d %s", tc.name, r.status, r.body)
			}
			continue
		}
		checkProblem(t, r, tc.status, "unauthorized", "/v1/tenants")
		if got := r.header.Get("WWW-Authenticate"); got != tc.challenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tc.name, got, tc.challenge)
		}
	}
	srv := e.server(without(e.deps(), func(d *api.Deps) { d.Auth = unavailableAuth{} }), api.Options{})
	r := doOn(t, srv, "GET", "/v1/tenants", "")
	checkProblem(t, r, http.StatusServiceUnavailable, "unavailable", "/v1/tenants")
}

// TestOversizedBody runs on a real listener: an oversized body is refused
// once the token is accepted, unread, and the connection closed, which
// app.Test reports as an error instead of a response.
func TestOversizedBody(t *testing.T) {
	const limit = 1024
	e := newEnv(t, api.Options{BodyLimit: limit})
	e.mustCreate("acme", "Acme")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.app.Listener(ln) }()
	t.Cleanup(func() { _ = e.app.ShutdownWithTimeout(5 * time.Second) })
	before := e.state()
	big := `{"display_name":"` + strings.Repeat("x", 2*limit) + `"}`
	client := &http.Client{Timeout: 10 * time.Second}
	for _, rt := range routeTable() {
		t.Run(rt.name, func(t *testing.T) {
			req, err := http.NewRequest(rt.method, "http://"+ln.Addr().String()+rt.path, strings.NewReader(big))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+goodToken)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			checkProblem(t, response{status: res.StatusCode, header: res.Header, body: body}, http.StatusRequestEntityTooLarge, "payload-too-large", rt.path)
		})
	}
	if after := e.state(); after != before {
		t.Errorf("oversized requests changed state: %+v -> %+v", before, after)
	}
	// A body just under the limit is read.
	ok := `{"display_name":"` + strings.Repeat("y", 150) + `"}`
	req, _ := http.NewRequest("PATCH", "http://"+ln.Addr().String()+"/v1/tenants/acme", strings.NewReader(ok))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+goodToken)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("body under the limit: %d", res.StatusCode)
	}
}

// without is deps changed by fn.
func without(deps api.Deps, fn func(*api.Deps)) api.Deps {
	fn(&deps)
	return deps
}
