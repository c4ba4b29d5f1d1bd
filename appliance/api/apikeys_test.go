package api_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/raftstore"
)

type createdKey struct {
	ID          string     `json:"id"`
	Tenant      string     `json:"tenant"`
	Name        string     `json:"name"`
	Role        string     `json:"role"`
	Permissions []string   `json:"permissions"`
	LastUsed    *time.Time `json:"last_used"`
	Hash        string     `json:"hash"`
	Token       string     `json:"token"`
}

func (e *env) createKey(t *testing.T, tenant, body string) createdKey {
	t.Helper()
	r := e.do("POST", "/v1/tenants/"+tenant+"/apikeys", body)
	if r.status != http.StatusCreated {
		t.Fatalf("create key: %d %s", r.status, r.body)
	}
	var k createdKey
	r.json(t, &k)
	if k.Token == "" || k.Hash != "" || k.Tenant != tenant || r.header.Get("Location") != "/v1/tenants/"+tenant+"/apikeys/"+k.ID {
		t.Fatalf("created key %+v, Location %q", k, r.header.Get("Location"))
	}
	return k
}

func TestAPIKeys(t *testing.T) {
	e := newEnv(t, api.Options{})
	for _, id := range []string{"acme", "globex"} {
		if r := e.do("POST", "/v1/tenants", `{"id":"`+id+`","display_name":"X"}`); r.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, r.status, r.body)
		}
	}
	reader := e.createKey(t, "acme", `{"name":"auditor","permissions":["read","export"]}`)
	readOnly := e.createKey(t, "acme", `{"name":"dashboard","permissions":["read"]}`)
	other := e.createKey(t, "globex", `{"name":"globex app","permissions":["admin"]}`)
	as := func(k createdKey) reqOpt { return withHeader("Authorization", "Bearer "+k.Token) }

	// A key reaches its own tenant's data with its permissions.
	if r := e.do("GET", "/v1/tenants/acme/audit", "", as(reader)); r.status != http.StatusOK {
		t.Fatalf("own audit: %d %s", r.status, r.body)
	}
	if _, err := e.audit.SignNow(context.Background(), "tenant:acme"); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/v1/tenants/acme/audit/export", "", as(reader))
	v, _ := audit.Verifier([]byte(e.vkey))
	if _, err := audit.Verify(bytes.NewReader(r.body), v, nil); r.status != 200 || err != nil {
		t.Fatalf("own export: %d %v", r.status, err)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/audit/export", "", as(readOnly)), http.StatusForbidden, "forbidden", "")

	// Another tenant's data: the same 404 as a tenant that does not exist,
	// for every key, even an admin one.
	missing := e.do("GET", "/v1/tenants/nope/audit", "")
	for _, c := range []struct {
		key  createdKey
		path string
	}{
		{reader, "/v1/tenants/globex/audit"}, {reader, "/v1/tenants/globex/audit/export"},
		{other, "/v1/tenants/acme/audit"}, {other, "/v1/tenants/acme/audit/proof/inclusion?index=0"},
		{other, "/v1/tenants/nope/audit"},
	} {
		r := e.do("GET", c.path, "", as(c.key))
		p := checkProblem(t, r, http.StatusNotFound, "not-found", "")
		var want api.Problem
		missing.json(t, &want)
		if p.Detail != want.Detail || p.Title != want.Title || len(r.body) > len(missing.body)+len(c.path) {
			t.Errorf("%s with another tenant's key: %q, a missing tenant: %q", c.path, r.body, missing.body)
		}
	}
	// The cluster's routes refuse keys; the operator's routes of a tenant
	// refuse its keys whose role lacks their permission (an old admin key
	// never managed its tenant), and answer another tenant's key as a
	// missing tenant.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/tenants"}, {"GET", "/v1/sys/audit"}, {"GET", "/v1/sys/status"},
		{"GET", "/v1/tenants/globex"}, {"POST", "/v1/tenants/globex/keys/rotate"},
		{"GET", "/v1/tenants/globex/apikeys"}, {"POST", "/v1/tenants/globex/apikeys"},
	} {
		checkProblem(t, e.do(c.method, c.path, "", as(other)), http.StatusForbidden, "forbidden", "")
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/tenants/acme"}, {"POST", "/v1/tenants/acme/keys/rotate"},
		{"GET", "/v1/tenants/acme/apikeys"}, {"POST", "/v1/tenants/acme/apikeys"},
	} {
		checkProblem(t, e.do(c.method, c.path, "", as(other)), http.StatusNotFound, "not-found", "")
	}
	// Bad tokens: 401, no hint which part is wrong.
	for _, tok := range []string{"ck_", "ck_aaaaaaaaaaaaaaaa_secret", reader.Token + "x", strings.Replace(reader.Token, reader.ID, other.ID, 1)} {
		checkProblem(t, e.do("GET", "/v1/tenants/acme/audit", "", withHeader("Authorization", "Bearer "+tok)), http.StatusUnauthorized, "unauthorized", "")
	}
	// The list shows no secret; last_used appears after a use.
	testkit.Eventually(t, "last_used recorded", func() bool {
		var list struct{ APIKeys []createdKey }
		e.do("GET", "/v1/tenants/acme/apikeys", "").json(t, &list)
		if len(list.APIKeys) != 2 {
			t.Fatalf("list: %+v", list)
		}
		used := false
		for _, k := range list.APIKeys {
			if k.Token != "" || k.Hash != "" {
				t.Fatalf("the list shows a secret: %+v", k)
			}
			used = used || (k.ID == reader.ID && k.LastUsed != nil)
		}
		return used
	})
	// Revocation: the next request fails.
	if r := e.do("DELETE", "/v1/tenants/acme/apikeys/"+reader.ID, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/audit", "", as(reader)), http.StatusUnauthorized, "unauthorized", "")
	checkProblem(t, e.do("DELETE", "/v1/tenants/acme/apikeys/"+reader.ID, ""), http.StatusNotFound, "not-found", "")
	checkProblem(t, e.do("GET", "/v1/tenants/globex/apikeys/"+readOnly.ID, ""), http.StatusNotFound, "not-found", "")
	// Creation and revocation are in the tenant's chain; the token is not.
	items, _, err := e.audit.List(context.Background(), raftstore.Linearizable, "tenant:acme", audit.Filter{Action: "apikey."}, 0, 10)
	if err != nil || len(items) != 3 {
		t.Fatalf("apikey entries: %d %v", len(items), err)
	}
	for _, it := range items {
		b, _ := it.Entry.Encode()
		if strings.Contains(string(b), reader.Token[10:]) {
			t.Fatal("a token reached the audit log")
		}
	}
}

func TestAPIKeyValidation(t *testing.T) {
	e := newEnv(t, api.Options{})
	if r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"X"}`); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	before := e.state()
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for name, c := range map[string]struct{ body, slug, field string }{
		"no name":         {`{"permissions":["read"]}`, "validation", "name"},
		"no permissions":  {`{"name":"x"}`, "validation", "permissions"},
		"bad permission":  {`{"name":"x","permissions":["root"]}`, "validation", "permissions"},
		"twice":           {`{"name":"x","permissions":["read","read"]}`, "validation", "permissions"},
		"expired":         {`{"name":"x","permissions":["read"],"expires_at":"` + past + `"}`, "validation", "expires_at"},
		"control in name": {`{"name":"a\u0007b","permissions":["read"]}`, "validation", "name"},
		"unknown field":   {`{"name":"x","permissions":["read"],"tenant":"globex"}`, "unknown-field", ""},
	} {
		t.Run(name, func(t *testing.T) {
			status := http.StatusUnprocessableEntity
			if c.slug == "unknown-field" {
				status = http.StatusBadRequest
			}
			p := checkProblem(t, e.do("POST", "/v1/tenants/acme/apikeys", c.body), status, c.slug, "/v1/tenants/acme/apikeys")
			if c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
				t.Errorf("errors %+v, want %s", p.Errors, c.field)
			}
		})
	}
	checkProblem(t, e.do("POST", "/v1/tenants/nope/apikeys", `{"name":"x","permissions":["read"]}`), http.StatusNotFound, "not-found", "")
	if after := e.state(); after != before {
		t.Fatalf("refused creations changed the state")
	}
}

// A key bound to a client certificate (client_cert_cn) is refused over a
// connection that presented none (here: no TLS at all), with its own
// detail; its binding is shown with the key. The acceptance over mutual
// TLS is appliance/node's TestAPIKeyBoundToClientCert.
func TestAPIKeyBoundToClientCert(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	k := e.createKey(t, "acme", `{"name":"billing","role":"read-only","client_cert_cn":"billing-app"}`)
	r := e.do("GET", "/v1/tenants/acme/apikeys/"+k.ID, "", e.asOwner("acme"))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"client_cert_cn":"billing-app"`) {
		t.Fatalf("the key: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v1/tenants/acme/collections", "", withHeader("Authorization", "Bearer "+k.Token))
	p := checkProblem(t, r, http.StatusUnauthorized, "unauthorized", "/v1/tenants/acme/collections")
	if !strings.Contains(p.Detail, "client certificate") {
		t.Errorf("detail %q does not name the client certificate", p.Detail)
	}
	for _, bad := range []string{strings.Repeat("x", 65), "a\nb"} {
		body := `{"name":"x","role":"read-only","client_cert_cn":` + strconv.Quote(bad) + `}`
		r := e.do("POST", "/v1/tenants/acme/apikeys", body)
		checkProblem(t, r, http.StatusUnprocessableEntity, "validation", "/v1/tenants/acme/apikeys")
	}
}
