package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
)

// route describes one entry of the route table for the bad-input matrix.
type route struct {
	name      string
	method    string
	path      string // with a well-formed id of an existing tenant or peer
	badIDPath string // the same route with an id that cannot exist; "" if none
	body      string // a valid body, or "" for routes that take none
	typeBody  string // a body with a wrong JSON type, for routes that take one
	auth      bool
	query     bool // accepts limit (the list route)
}

func routeTable() []route {
	return []route{
		{name: "health", method: "GET", path: "/v1/sys/health"},
		{name: "status", method: "GET", path: "/v1/sys/status", auth: true},
		{name: "peers", method: "GET", path: "/v1/operator/raft/peers", auth: true},
		{name: "remove-peer", method: "DELETE", path: "/v1/operator/raft/peers/n9", badIDPath: "/v1/operator/raft/peers/N9_x", auth: true},
		{name: "transfer-leader", method: "POST", path: "/v1/operator/raft/transfer-leader", body: `{"id":"n1"}`, typeBody: `{"id":5}`, auth: true},
		{name: "create-tenant", method: "POST", path: "/v1/tenants", body: `{"id":"newco","display_name":"New Co"}`, typeBody: `{"id":"newco","display_name":5}`, auth: true},
		{name: "list-tenants", method: "GET", path: "/v1/tenants", auth: true, query: true},
		{name: "get-tenant", method: "GET", path: "/v1/tenants/acme", badIDPath: "/v1/tenants/Not_Valid", auth: true},
		{name: "update-tenant", method: "PATCH", path: "/v1/tenants/acme", badIDPath: "/v1/tenants/Not_Valid", body: `{"display_name":"Renamed"}`, typeBody: `{"display_name":5}`, auth: true},
		{name: "suspend-tenant", method: "POST", path: "/v1/tenants/acme/suspend", badIDPath: "/v1/tenants/a/suspend", auth: true},
		{name: "resume-tenant", method: "POST", path: "/v1/tenants/acme/resume", badIDPath: "/v1/tenants/-acme/resume", auth: true},
		{name: "delete-tenant", method: "DELETE", path: "/v1/tenants/acme", badIDPath: "/v1/tenants/" + strings.Repeat("a", 64), auth: true},
	}
}

// badCase is one kind of bad input, applied to every route.
type badCase struct {
	name string
	// build returns the request to send and the expected status and slug;
	// skip reports that the case does not apply to the route.
	build func(rt route) (method, target, body string, opts []reqOpt, status int, slug string, skip bool)
}

func badCases() []badCase {
	validBody := func(rt route) string { return rt.body }
	return []badCase{
		{"missing token", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path, validBody(rt), []reqOpt{withoutHeader("Authorization")}, 401, "unauthorized", !rt.auth
		}},
		{"wrong token", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path, validBody(rt), []reqOpt{withHeader("Authorization", "Bearer wrong-token")}, 401, "unauthorized", !rt.auth
		}},
		{"malformed JSON", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path, `{"display_name":`, nil, 400, "bad-request", false
		}},
		{"not an object", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path, `["display_name"]`, nil, 400, "bad-request", false
		}},
		{"trailing data", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			b := rt.body
			if b == "" {
				b = "{}"
			}
			return rt.method, rt.path, b + ` {}`, nil, 400, "bad-request", false
		}},
		{"unknown field", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path, `{"nope":1}`, nil, 400, "unknown-field", false
		}},
		{"field name in another case", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path, `{"Display_Name":"x"}`, nil, 400, "unknown-field", false
		}},
		{"wrong type", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			if rt.typeBody == "" {
				// Routes without a body have no fields: any field is unknown.
				return rt.method, rt.path, `{"display_name":5}`, nil, 400, "unknown-field", false
			}
			return rt.method, rt.path, rt.typeBody, nil, 400, "bad-request", false
		}},
		{"null field", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			if rt.typeBody == "" {
				return "", "", "", nil, 0, "", true
			}
			field := "display_name"
			if rt.name == "transfer-leader" {
				field = "id"
			}
			return rt.method, rt.path, `{"` + field + `":null}`, nil, 400, "bad-request", false
		}},
		{"duplicate field", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			if rt.typeBody == "" {
				return "", "", "", nil, 0, "", true
			}
			field := "display_name"
			if rt.name == "transfer-leader" {
				field = "id"
			}
			return rt.method, rt.path, `{"` + field + `":"a","` + field + `":"b"}`, nil, 400, "bad-request", false
		}},
		{"invalid UTF-8", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path, "{\"display_name\":\"\xff\"}", nil, 400, "bad-request", false
		}},
		{"body without JSON content type", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path, `{}`, []reqOpt{withHeader("Content-Type", "text/plain")}, 415, "unsupported-media-type", false
		}},
		{"body without content type", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path, `{}`, []reqOpt{withoutHeader("Content-Type")}, 415, "unsupported-media-type", false
		}},
		{"compressed body", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path, `{}`, []reqOpt{withHeader("Content-Encoding", "gzip")}, 415, "unsupported-media-type", false
		}},
		{"missing required body", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			if rt.typeBody == "" || rt.name == "transfer-leader" {
				return "", "", "", nil, 0, "", true
			}
			return rt.method, rt.path, "", nil, 400, "bad-request", false
		}},
		{"bad id", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.badIDPath, rt.body, nil, 404, "not-found", rt.badIDPath == ""
		}},
		{"bad limit", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path + "?limit=abc", rt.body, nil, 400, "validation", false
		}},
		{"limit out of range", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path + "?limit=501", rt.body, nil, 400, "validation", !rt.query
		}},
		{"limit zero", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path + "?limit=0", rt.body, nil, 400, "validation", !rt.query
		}},
		{"repeated parameter", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path + "?limit=5&limit=6", rt.body, nil, 400, "validation", !rt.query
		}},
		{"bad after", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path + "?after=NOT%20AN%20ID", rt.body, nil, 400, "validation", !rt.query
		}},
		{"bad stale", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path + "?stale=maybe", rt.body, nil, 400, "validation", !rt.query
		}},
		{"unknown parameter", func(rt route) (string, string, string, []reqOpt, int, string, bool) {
			return rt.method, rt.path + "?debug=1", rt.body, nil, 400, "validation", false
		}},
	}
}

// TestBadInputEveryRoute sends every kind of bad input to every route and
// checks the problem, that nothing is ever a 500, and that nothing was
// written.
func TestBadInputEveryRoute(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	acmeBefore := e.do("GET", "/v1/tenants/acme", "").body
	before := e.state()
	for _, rt := range routeTable() {
		for _, bc := range badCases() {
			method, target, body, opts, status, slug, skip := bc.build(rt)
			if skip {
				continue
			}
			t.Run(rt.name+"/"+bc.name, func(t *testing.T) {
				r := e.do(method, target, body, opts...)
				if r.status >= 500 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				path, _, _ := strings.Cut(target, "?")
				p := checkProblem(t, r, status, slug, path)
				if status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a Bearer challenge: %v", r.header)
				}
				if strings.Contains(p.Detail, "json:") || strings.Contains(p.Detail, "api:") {
					t.Errorf("detail carries internal error text: %q", p.Detail)
				}
				if after := e.state(); after != before {
					t.Errorf("a refused request changed state: %+v -> %+v", before, after)
				}
			})
		}
	}
	if got := e.do("GET", "/v1/tenants/acme", "").body; string(got) != string(acmeBefore) {
		t.Errorf("tenant changed: %s -> %s", acmeBefore, got)
	}
	// Health answers without a token and ignores none of the rules above.
	if r := e.do("GET", "/v1/sys/health", "", withoutHeader("Authorization")); r.status != http.StatusOK {
		t.Errorf("health without token: %d", r.status)
	}
	// Valid input on every route is accepted, so the matrix did not pass
	// because every request fails.
	for _, rt := range routeTable() {
		r := e.do(rt.method, rt.path, rt.body)
		want := map[string]int{"create-tenant": 201, "remove-peer": 204, "delete-tenant": 204, "transfer-leader": 202}[rt.name]
		if want == 0 {
			want = 200
		}
		if r.status != want {
			t.Errorf("%s with valid input: %d, want %d: %s", rt.name, r.status, want, r.body)
		}
	}
}
