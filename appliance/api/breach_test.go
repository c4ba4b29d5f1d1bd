package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
)

// TestCrossTenantBreach walks every route in the route table with tenant
// acme's admin API key, aimed at tenant globex's resources (its id, its
// collection, record, subject and key ids in the path), and requires that
// nothing of globex comes back: only 401/403/404 (or 405), no victim
// canary in any status, body or header, and the same 404 detail a missing
// tenant gets. Every route must be exercised. (Issue 5 acceptance 2 asks
// for this over the OpenAPI spec with more swaps; the spec is still to
// come, so the route table stands in for it.)
func TestCrossTenantBreach(t *testing.T) {
	e := newEnv(t, api.Options{})
	const victimCanary = "victim-canary-9q2x"
	setup := []struct{ method, path, body string }{
		{"POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`},
		{"POST", "/v1/tenants", `{"id":"globex","display_name":"` + victimCanary + `"}`},
		{"PUT", "/v1/tenants/acme/collections/guests", guestsV1},
		{"PUT", "/v1/tenants/globex/collections/guests", guestsV1},
		{"POST", "/v1/tenants/globex/collections/guests/records", `{"id":"g1","subject":"vsubject","attributes":{"p":"` + victimCanary + `"},"fields":{"email":"` + victimCanary + `@globex.test","notes":{"x":"` + victimCanary + `"}}}`},
	}
	for _, s := range setup {
		if r := e.do(s.method, s.path, s.body); r.status >= 300 {
			t.Fatalf("setup %s %s: %d %s", s.method, s.path, r.status, r.body)
		}
	}
	attacker := e.createKey(t, "acme", `{"name":"attacker","permissions":["admin"]}`)
	victimKey := e.createKey(t, "globex", `{"name":"victim","permissions":["admin"]}`)
	params := map[string]string{":id": "globex", ":name": "guests", ":rid": "g1", ":sid": "vsubject", ":kid": victimKey.ID}
	missing := e.do("GET", "/v1/tenants/nope/collections/guests", "", withHeader("Authorization", "Bearer "+attacker.Token))
	var missingP api.Problem
	missing.json(t, &missingP)
	public := map[string]bool{"GET /v1/sys/health": true, "GET /v1/sys/audit-key": true, "GET /v1/openapi.json": true}
	bodies := map[string]string{"POST": `{"fields":{"email":"a@b.c"},"subject":"s"}`, "PUT": `{"fields":[{"name":"a","type":"string","classification":"pii"}]}`, "PATCH": `{"display_name":"pwned"}`}
	exercised := 0
	seen := map[string]bool{}
	for _, rt := range e.app.GetRoutes(true) {
		name := rt.Method + " " + rt.Path
		if seen[name] || rt.Method == "HEAD" || rt.Method == "OPTIONS" || rt.Method == "CONNECT" || rt.Method == "TRACE" {
			continue
		}
		seen[name] = true
		path := rt.Path
		for p, v := range params {
			path = strings.ReplaceAll(path, p, v)
		}
		r := e.do(rt.Method, path, bodies[rt.Method], withHeader("Authorization", "Bearer "+attacker.Token))
		exercised++
		leak := strings.Contains(string(r.body), victimCanary) || strings.Contains(string(r.body), "vsubject@") || strings.Contains(strings.ToLower(string(r.body)), "globex.test")
		for _, vs := range r.header {
			for _, v := range vs {
				leak = leak || strings.Contains(v, victimCanary)
			}
		}
		if leak {
			t.Errorf("%s (%s): the victim's data leaked: %d %s", name, path, r.status, r.body)
		}
		if public[name] {
			continue
		}
		switch r.status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusMethodNotAllowed:
		case http.StatusNotFound:
			p := checkProblem(t, r, http.StatusNotFound, "not-found", "")
			if strings.HasPrefix(rt.Path, "/v1/tenants/:id") && p.Detail != missingP.Detail {
				t.Errorf("%s: 404 detail %q differs from a missing tenant's %q (it tells the tenant exists)", name, p.Detail, missingP.Detail)
			}
		default:
			t.Errorf("%s (%s) with another tenant's key: %d %s", name, path, r.status, r.body)
		}
	}
	if exercised < 30 {
		t.Fatalf("only %d routes exercised", exercised)
	}
	// The victim's record is intact and readable by its own key.
	r := e.do("GET", "/v1/tenants/globex/collections/guests/records/g1", "", withHeader("Authorization", "Bearer "+victimKey.Token))
	if r.status != 200 || !strings.Contains(string(r.body), victimCanary) {
		t.Fatalf("the victim's record after the attack: %d %s", r.status, r.body)
	}
	t.Logf("%d routes attacked with another tenant's key: nothing leaked", exercised)
}
