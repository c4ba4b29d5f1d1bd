package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
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

// FuzzCreateRecordBody: any body posted as a record gets a JSON answer,
// never a 5xx; what is created reads back with the same field values.
func FuzzCreateRecordBody(f *testing.F) {
	for _, seed := range []string{
		`{"subject":"s1","fields":{"email":"a@b.c","stay":"long","notes":{"a":[1,2]}}}`,
		`{"id":"r1","subject":"s1","attributes":{"p":"v"},"fields":{"email":"x"}}`,
		`{"subject":"s1","fields":{"email":5}}`,
		`{"subject":"s1","fields":{"email":"a","notes":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`,
		`{"fields":{}}`, `{"subject":"../x","fields":{"email":"a"}}`, `{}`, `[]`, "\xff",
	} {
		f.Add(seed)
	}
	e := newEnv(f, api.Options{})
	if r := doOn(f, e.app, "POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`); r.status != http.StatusCreated {
		f.Fatalf("tenant: %d %s", r.status, r.body)
	}
	owner := e.asOwner("acme")
	if r := doOn(f, e.app, "PUT", "/v1/tenants/acme/collections/guests", guestsV1, owner); r.status != http.StatusCreated {
		f.Fatalf("collection: %d %s", r.status, r.body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > 64<<10 {
			return
		}
		r := doOn(t, e.app, "POST", "/v1/tenants/acme/collections/guests/records", body, owner)
		if r.status >= 500 || !json.Valid(r.body) {
			t.Fatalf("body %q: status %d: %s", body, r.status, r.body)
		}
		if r.status != http.StatusCreated {
			return
		}
		var created struct {
			ID     string                     `json:"id"`
			Fields map[string]json.RawMessage `json:"fields"`
		}
		r.json(t, &created)
		g := doOn(t, e.app, "GET", "/v1/tenants/acme/collections/guests/records/"+created.ID, "", owner)
		var got struct {
			Fields map[string]json.RawMessage `json:"fields"`
		}
		if g.status != http.StatusOK || json.Unmarshal(g.body, &got) != nil || len(got.Fields) != len(created.Fields) {
			t.Fatalf("created %q but GET answered %d %s", created.ID, g.status, g.body)
		}
		for k, v := range created.Fields {
			if string(got.Fields[k]) != string(v) {
				t.Fatalf("field %s: wrote %s, read %s", k, v, got.Fields[k])
			}
		}
	})
}
