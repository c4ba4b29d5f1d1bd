package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/tenants"
)

// FuzzCreateTenantBody posts arbitrary bodies to POST /v1/tenants: the API
// must never answer 500, must always answer JSON or problem+json, and every
// tenant it reports as created must be retrievable as reported.
func FuzzCreateTenantBody(f *testing.F) {
	for _, seed := range []string{
		`{"id":"acme","display_name":"Acme Hotels","region":"eu-west-1"}`,
		`{"display_name":"Generated"}`,
		`{"id":"acme","display_name":"Acme","region":"us-east-1"}`,
		`{"id":"a","display_name":"x"}`,
		`{"id":"ok-id","display_name":"\u202e bidi"}`,
		`{"id":"ok-id","display_name":5}`,
		`{"id":"ok-id","display_name":"x","extra":true}`,
		`{"id":"ok-id","display_name":"x"} {}`,
		`{"display_name":"x","display_name":"y"}`,
		`{"display_name":null}`,
		`[]`, `null`, `"str"`, `{`, ``, `{}`, "\xff",
	} {
		f.Add(seed)
	}
	e := newEnv(f, api.Options{})
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > 64<<10 {
			return // the size limit is tested on a real listener
		}
		r := doOn(t, e.app, "POST", "/v1/tenants", body)
		if r.status >= 500 {
			t.Fatalf("body %q: status %d: %s", body, r.status, r.body)
		}
		ct := r.header.Get("Content-Type")
		if ct != "application/json" && ct != api.ProblemContentType {
			t.Fatalf("body %q: Content-Type %q", body, ct)
		}
		if !json.Valid(r.body) {
			t.Fatalf("body %q: response is not JSON: %q", body, r.body)
		}
		if r.status != http.StatusCreated {
			return
		}
		var created tenants.Tenant
		r.json(t, &created)
		g := doOn(t, e.app, "GET", "/v1/tenants/"+created.ID, "")
		var got tenants.Tenant
		if g.status != http.StatusOK || json.Unmarshal(g.body, &got) != nil {
			t.Fatalf("created %q but GET answered %d %s", created.ID, g.status, g.body)
		}
		if got.ID != created.ID || got.DisplayName != created.DisplayName || got.Region != created.Region ||
			got.State != created.State || !got.CreatedAt.Equal(created.CreatedAt) {
			t.Fatalf("created %+v, read back %+v", created, got)
		}
	})
}
