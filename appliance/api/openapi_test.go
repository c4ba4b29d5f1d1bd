package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/internal/apispec"
)

// specDoc parses and validates openapi.json with kin-openapi.
func specDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := apispec.LoadDoc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// TestOpenAPIMatchesRouteTable is the drift test: every route of the
// fiber route table is in the description, and every operation of the
// description is a route. fiber registers HEAD for every GET by itself;
// those count only where the description lists HEAD explicitly.
func TestOpenAPIMatchesRouteTable(t *testing.T) {
	doc := specDoc(t)
	spec := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			spec[method+" "+path] = true
		}
	}
	e := newEnv(t, api.Options{})
	routes := map[string]bool{}
	for _, rt := range e.app.GetRoutes(true) {
		key := rt.Method + " " + fiberParam.ReplaceAllString(rt.Path, "{$1}")
		if rt.Method == http.MethodHead && !spec[key] {
			continue
		}
		routes[key] = true
	}
	for _, key := range sortedKeys(routes) {
		if !spec[key] {
			t.Errorf("route %s is not in openapi.json: describe it", key)
		}
	}
	for _, key := range sortedKeys(spec) {
		if !routes[key] {
			t.Errorf("openapi.json describes %s, which is not a route", key)
		}
	}
	t.Logf("%d paths, %d operations", doc.Paths.Len(), len(spec))
}

// TestOpenAPIProblemsDocumented checks the description's own rules, the
// ones a client relies on: every error response is a problem
// (application/problem+json, schema Problem); every operation documents
// the problems every route can answer (400, 413 and 415 about the body,
// 429 over a rate limit, 500); authenticated operations add 401, 403 and 503; operations under a
// tenant path add 404; every authenticated operation names the permission
// of the roles table it needs, and API keys are accepted exactly under a
// tenant's path.
func TestOpenAPIProblemsDocumented(t *testing.T) {
	doc := specDoc(t)
	perms := []string{"read", "write", "delete", "export", "admin"}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			name := method + " " + path
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			public := len(security) == 0
			apiKey := slices.ContainsFunc(security, func(r openapi3.SecurityRequirement) bool { _, ok := r["apiKey"]; return ok })
			want := []int{400, 413, 415, 429, 500}
			if !public {
				want = append(want, 401, 403, 503)
			}
			if strings.HasPrefix(path, "/v1/tenants/{id}") {
				want = append(want, 404)
			}
			for _, status := range want {
				if op.Responses.Status(status) == nil {
					t.Errorf("%s does not document %d", name, status)
				}
			}
			for code, ref := range op.Responses.Map() {
				if code < "400" {
					continue
				}
				if ref.Value.Content.Get(api.ProblemContentType) == nil {
					t.Errorf("%s: %s is not documented as %s", name, code, api.ProblemContentType)
				}
			}
			need, keyPerm := specString(op, "x-custos-permission"), specString(op, "x-custos-apikey-permission")
			session := op.Extensions["x-custos-session"] != nil // a user's own session: no permission applies
			if _, err := roles.ParsePermission(need); !public && !session && err != nil {
				t.Errorf("%s names no permission of the roles table in x-custos-permission (got %q)", name, need)
			}
			tenantPath := strings.HasPrefix(path, "/v1/tenants/{id}")
			switch {
			case public && (need != "" || keyPerm != ""):
				t.Errorf("%s is public but names a permission", name)
			case session && (need != "" || apiKey):
				t.Errorf("%s acts on the caller's own session but names a permission or accepts API keys", name)
			case apiKey != tenantPath && !public && !session:
				t.Errorf("%s: API keys are accepted exactly under /v1/tenants/{id} (apiKey %v)", name, apiKey)
			case keyPerm != "" && !slices.Contains(perms, keyPerm):
				t.Errorf("%s names an old key permission that is none (%q)", name, keyPerm)
			case keyPerm != "" && !apiKey:
				t.Errorf("%s names an old key permission but does not accept API keys", name)
			}
		}
	}
	for _, name := range []string{"Problem", "FieldProblem"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("components.schemas.%s is missing", name)
		}
	}
}

// TestOpenAPISecurityMatchesRoutes checks each operation's security
// against what the route's middleware does: public operations answer
// without a token, operator operations refuse any API key (403), and an
// operation an API key may call refuses a key of the tenant without the
// permission its x-custos-permission names (403) and admits one with it
// (or with admin). Tokens are checked before anything else of the
// request, so placeholder ids and bodies suffice.
func TestOpenAPISecurityMatchesRoutes(t *testing.T) {
	doc := specDoc(t)
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	perms := []string{"read", "write", "delete", "export", "admin"}
	keys := map[string]string{}
	for _, p := range perms {
		keys[p] = e.createKey(t, "acme", `{"name":"`+p+`","permissions":["`+p+`"]}`).Token
	}
	ids := strings.NewReplacer("{id}", "acme", "{kid}", "aaaaaaaaaaaaaaaa", "{name}", "guests", "{rid}", "r1", "{sid}", "s1", "{bid}", "b1", "{uid}", "usr_aaaaaaaaaaaaaaaa", "{session}", "aaaaaaaaaaaaaaaaaaaaaa", "{pid}", "call-recording", "{kind}", "recording", "{role}", "foh")
	checked := 0
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			name := method + " " + path
			target := ids.Replace(path)
			if strings.HasPrefix(path, "/v1/operator/raft/peers/") {
				target = "/v1/operator/raft/peers/n9" // never a member: removing it changes nothing
			}
			body := ""
			if method == "POST" || method == "PUT" || method == "PATCH" {
				body = "{}"
			}
			as := func(token string) response {
				if token == "" {
					return e.do(method, target, body, withoutHeader("Authorization"))
				}
				return e.do(method, target, body, withHeader("Authorization", "Bearer "+token))
			}
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			perm := specString(op, "x-custos-apikey-permission")
			checked++
			switch {
			case len(security) == 0:
				if r := as(""); r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
					t.Errorf("%s is public in openapi.json, but without a token: %d", name, r.status)
				}
			case perm == "":
				if r := as(keys["admin"]); r.status != http.StatusForbidden {
					t.Errorf("%s admits no old key in openapi.json, but an admin API key got %d", name, r.status)
				}
			default:
				for _, p := range perms {
					r := as(keys[p])
					allowed := p == perm || p == "admin"
					switch {
					case allowed && (r.status == http.StatusUnauthorized || r.status == http.StatusForbidden):
						t.Errorf("%s needs %s in openapi.json, but a key with %s got %d %s", name, perm, p, r.status, r.body)
					case !allowed && r.status != http.StatusForbidden:
						t.Errorf("%s needs %s in openapi.json, but a key with only %s got %d", name, perm, p, r.status)
					}
				}
			}
		}
	}
	if checked < 40 {
		t.Fatalf("only %d operations checked", checked)
	}
}

// specString is an operation's string extension ("" when absent).
func specString(op *openapi3.Operation, name string) string {
	switch v := op.Extensions[name].(type) {
	case string:
		return v
	case json.RawMessage:
		var s string
		_ = json.Unmarshal(v, &s)
		return s
	}
	return ""
}

// TestOpenAPIPermissionsMatchRoutes is the drift test of authorization:
// each operation's x-custos-permission is the permission its route
// declares (api.Operations), and x-custos-apikey-permission the old key
// permission that admits an old key.
func TestOpenAPIPermissionsMatchRoutes(t *testing.T) {
	doc := specDoc(t)
	checked := 0
	for _, o := range api.Operations() {
		path := "/v1" + fiberParam.ReplaceAllString(o.Path, "{$1}")
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(o.Method) == nil {
			t.Errorf("%s %s is not in openapi.json", o.Method, path)
			continue
		}
		op := item.GetOperation(o.Method)
		want := ""
		if !o.Public && !o.Session {
			want = o.Need.String()
		}
		if (op.Extensions["x-custos-session"] != nil) != o.Session {
			t.Errorf("%s %s: x-custos-session says %v, the route %v", o.Method, path, op.Extensions["x-custos-session"] != nil, o.Session)
		}
		if got := specString(op, "x-custos-permission"); got != want {
			t.Errorf("%s %s: x-custos-permission %q, the route needs %q", o.Method, path, got, want)
		}
		if got := specString(op, "x-custos-apikey-permission"); got != o.Key {
			t.Errorf("%s %s: x-custos-apikey-permission %q, the route's old key permission is %q", o.Method, path, got, o.Key)
		}
		checked++
	}
	if checked < 40 {
		t.Fatalf("only %d operations checked", checked)
	}
}

// TestOpenAPIServed: the description is public and served as embedded.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, api.Options{})
	r := e.do("GET", "/v1/openapi.json", "", withoutHeader("Authorization"))
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if !bytes.Equal(r.body, api.OpenAPISpec()) {
		t.Error("the served description differs from OpenAPISpec()")
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
	}
	r.json(t, &doc)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	// It follows the rules every route follows.
	checkProblem(t, e.do("GET", "/v1/openapi.json?x=1", ""), http.StatusBadRequest, "validation", "/v1/openapi.json")
	checkProblem(t, e.do("POST", "/v1/openapi.json", ""), http.StatusMethodNotAllowed, "method-not-allowed", "/v1/openapi.json")
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
