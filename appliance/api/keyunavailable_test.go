package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
)

// Every route that needs a tenant's key answers 503 key-unavailable naming
// the tenant, with Retry-After, and writes nothing, when the key cannot be
// had — on a sealed node, and on a node whose seal identity is not the
// cluster's. No handler maps this itself: the answer comes from
// keyring.UnavailableError alone, so a new route cannot forget it.
func TestKeyUnavailableOnEveryKeyRoute(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", guestsV1); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"g1","subject":"guest-17","fields":{"email":"jane@example.com"}}`); r.status != http.StatusCreated {
		t.Fatalf("record: %d %s", r.status, r.body)
	}
	up := e.do("POST", "/v1/tenants/acme/blobs", "some bytes", withHeader("Content-Type", "text/plain"))
	var blob struct {
		ID string `json:"id"`
	}
	up.json(t, &blob)
	if up.status != http.StatusCreated || blob.ID == "" {
		t.Fatalf("blob: %d %s", up.status, up.body)
	}

	routes := []struct{ method, target, body, contentType string }{
		{"POST", "/v1/tenants/acme/keys/rotate", "", ""},
		{"PUT", "/v1/tenants/acme/keys/provider", `{"key_provider":"age"}`, ""},
		{"POST", "/v1/tenants/acme/collections/guests/records", `{"subject":"guest-18","fields":{"email":"joe@example.com"}}`, ""},
		{"GET", "/v1/tenants/acme/collections/guests/records?field=email&value=" + url.QueryEscape(`"jane@example.com"`), "", ""},
		{"GET", "/v1/tenants/acme/collections/guests/records/g1", "", ""},
		{"PUT", "/v1/tenants/acme/collections/guests/records/g1", `{"subject":"guest-17","fields":{"email":"jane@example.org"}}`, ""},
		{"PATCH", "/v1/tenants/acme/collections/guests/records/g1", `{"fields":{"email":"jane@example.org"}}`, ""},
		{"POST", "/v1/tenants/acme/blobs", "more bytes", "text/plain"},
		{"GET", "/v1/tenants/acme/blobs/" + blob.ID, "", ""},
	}
	stranger, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range []struct {
		name string
		ids  []age.Identity
		says string
	}{
		{"sealed", nil, "sealed"},
		{"another seal identity", []age.Identity{stranger}, "refused or could not be reached"},
	} {
		keys := keyring.NewHierarchy(tenancy.New(e.store), keyring.HierarchyOptions{Identities: node.ids, System: audit.System(), Pseudonym: audit.Pseudonym})
		app := e.server(e.depsWith(keys), api.Options{})
		for _, rt := range routes {
			t.Run(node.name+"/"+rt.method+" "+strings.SplitN(rt.target, "?", 2)[0], func(t *testing.T) {
				opts := e.auth(rt.method, rt.target) // the tenant's Owner key on its data: made before the state is taken
				before := e.state()
				if rt.contentType != "" {
					opts = append(opts, withHeader("Content-Type", rt.contentType))
				}
				r := doOn(t, app, rt.method, rt.target, rt.body, opts...)
				p := checkProblem(t, r, http.StatusServiceUnavailable, "key-unavailable", "")
				if !strings.Contains(p.Detail, `tenant "acme"`) || !strings.Contains(p.Detail, node.says) {
					t.Errorf("detail %q, want it to name tenant \"acme\" and say %q", p.Detail, node.says)
				}
				if got := r.header.Get("Retry-After"); got != "5" {
					t.Errorf("Retry-After %q, want 5", got)
				}
				if after := e.state(); after != before {
					t.Errorf("a refused request changed the state: %+v -> %+v", before, after)
				}
			})
		}
	}
	// The node with the seal identity still serves them.
	if r := e.do("GET", "/v1/tenants/acme/collections/guests/records/g1", ""); r.status != http.StatusOK {
		t.Fatalf("unsealed read: %d %s", r.status, r.body)
	}
}
