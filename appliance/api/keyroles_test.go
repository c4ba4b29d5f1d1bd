package api_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
)

// TestKeyRoleMatrix walks every operation of openapi.json (which the
// drift tests hold equal to the route table) with an API key bound to
// each built-in tenant role: the key is admitted iff the route is of its
// tenant and roles.Allows says its role holds the permission the route
// declares (api.Operations) — the tenant's metadata and API keys
// included; otherwise it is answered 403 forbidden before any service
// beyond its authentication is called, and no chain moves. The cluster's
// routes refuse every key.
func TestKeyRoleMatrix(t *testing.T) {
	e := newEnv(t, api.Options{})
	s := &suspendEnv{t: t, e: e}
	_, ops := loadSpecOps(t)
	walk := newOperationWalk()

	e.mustCreate("acme", "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", guestsV1); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	s.grant = s.requestGrant()
	// The purpose the consent routes name ({pid}, and the fixtures').
	if r := e.do("POST", "/v1/tenants/acme/purposes", `{"id":"call-recording","description":"Recording of calls","basis":"consent"}`); r.status != http.StatusCreated {
		t.Fatalf("purpose: %d %s", r.status, r.body)
	}
	// refill puts back what a role's deletions removed: the record, a
	// blob, a second key.
	refills := 0
	refill := func() {
		t.Helper()
		if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"`+aRecord+`","subject":"`+aSubject+`","fields":{"email":"a@acme.test"}}`); r.status != http.StatusCreated && r.status != http.StatusConflict {
			t.Fatalf("record: %d %s", r.status, r.body)
		}
		var bl struct{ ID string }
		e.do("POST", "/v1/tenants/acme/blobs?subject="+aSubject, "RIFF\x24\x00\x00\x00WAVEfmt acme", withHeader("Content-Type", "audio/wav")).json(t, &bl)
		s.blob = bl.ID
		s.keyOther = e.createKey(t, "acme", `{"name":"other","permissions":["read"]}`).ID
		// A fresh verified erasure request of a subject holding nothing
		// (the role's erase completes it), and one already erased (the
		// receipt route reads it).
		if s.erased == "" {
			s.erased = e.erasureRequest(t, "acme", "nobody-erased")
			if r := e.do("POST", "/v1/tenants/acme/requests/"+s.erased+"/erase", ""); r.status != http.StatusOK {
				t.Fatalf("erase: %d %s", r.status, r.body)
			}
		}
		refills++
		s.erasable = e.erasureRequest(t, "acme", fmt.Sprintf("nobody-%d", refills))
	}
	// Deletions last, so that each role's other requests find what they
	// name.
	slices.SortStableFunc(ops, func(a, b *specOp) int {
		return cmpBool(a.method == http.MethodDelete, b.method == http.MethodDelete)
	})
	// A user of acme (not an Owner: acme stays bootstrapping, so that the
	// operator mints the keys) and its session, for the people's routes.
	uma := e.user(t, audit.Principal{Kind: audit.ActorAPIKey, ID: "setup", Tenant: "acme", Role: "owner"}, "acme", "uma", "foh")
	s.user, s.session = uma.ID, e.session(t, "acme", "uma").Session.ID
	keys := map[string]createdKey{}
	for _, role := range apikeys.Roles() {
		k := e.createKey(t, "acme", `{"name":"`+role+`","role":"`+role+`"}`)
		var stored struct {
			Role        string    `json:"role"`
			Permissions *[]string `json:"permissions"`
		}
		if r := e.do("GET", "/v1/tenants/acme/apikeys/"+k.ID, ""); r.status != http.StatusOK || json.Unmarshal(r.body, &stored) != nil || stored.Role != role || stored.Permissions != nil {
			t.Fatalf("key of role %s reads back as %d %s", role, r.status, r.body)
		}
		keys[role] = k
	}
	// A verified access request and an export, for the routes that name
	// them, made by the Owner key.
	var dsr, x struct{ ID string }
	ownerKey := bearer(keys["owner"].Token)
	e.do("POST", "/v1/tenants/acme/requests", `{"kind":"access","subject":"`+aSubject+`"}`, ownerKey).json(t, &dsr)
	if r := e.do("POST", "/v1/tenants/acme/requests/"+dsr.ID+"/transition", `{"to":"verified","evidence":{"method":"document","text":"seen"}}`, ownerKey); r.status != http.StatusOK {
		t.Fatalf("verify the request: %d %s", r.status, r.body)
	}
	e.do("POST", "/v1/tenants/acme/export", "", ownerKey).json(t, &x)
	s.dsr, s.export = dsr.ID, x.ID
	s.calls = e.withCallLog()

	allowed, refused, done := 0, 0, 0
	for _, role := range apikeys.Roles() {
		r0, _ := roles.Builtin(role)
		refill()
		for _, op := range ops {
			o := walk.operation(t, op)
			if o.Public {
				continue
			}
			heads := s.chainHeads()
			r, calls := s.asKey(op, keys[role].Token)
			if !o.Cluster && roles.Allows(r0, o.Need.Resource, o.Need.Action) {
				allowed++
				if blobContent(op) && !r0.ReadsBlobContent() {
					// Admitted to the route, but the role does not read
					// blob bytes (visibility_test.go covers it).
					if r.status != http.StatusForbidden {
						t.Errorf("%s by a %s key (role does not read blob content): %d %s, want 403 withheld", op, role, r.status, r.body)
					} else if op.method != http.MethodHead {
						checkProblem(t, r, http.StatusForbidden, "withheld", "")
					}
					continue
				}
				if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden {
					t.Errorf("%s by a %s key (role holds %s): %d %s", op, role, o.Need, r.status, r.body)
				}
				if r.status < 300 {
					done++
				}
				continue
			}
			refused++
			if r.status != http.StatusForbidden {
				t.Errorf("%s by a %s key (role lacks %s, or a cluster route): %d %s, want 403", op, role, o.Need, r.status, r.body)
				continue
			}
			if op.method != http.MethodHead {
				checkProblem(t, r, http.StatusForbidden, "forbidden", "")
			}
			if beyond := callsBeyondAuth(calls); len(beyond) > 0 {
				t.Errorf("%s by a %s key was refused after reaching %v", op, role, beyond)
			}
			if got := s.chainHeads(); got != heads {
				t.Errorf("%s by a %s key was refused, but a chain moved: %s -> %s", op, role, heads, got)
			}
		}
	}
	walk.checkAllWalked(t)
	// Admitted requests are done, not only let past authorization
	// (some find what an earlier role deleted: 404).
	t.Logf("%d requests admitted (%d answered 2xx), %d refused", allowed, done, refused)
	if allowed < 50 || refused < 100 || done < allowed*9/10 {
		t.Fatalf("only %d admitted and %d refused requests checked", allowed, refused)
	}
}

// A key is created with a role or with permissions: exactly one; the role
// is a built-in tenant role (never the Operator's). Bad input is a 422
// naming the field, and creates nothing.
func TestKeyRoleValidation(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	for _, c := range []struct{ name, body, field string }{
		{"unknown role", `{"name":"k","role":"superuser"}`, "role"},
		{"the operator's role", `{"name":"k","role":"operator"}`, "role"},
		{"empty role", `{"name":"k","role":""}`, "role"},
		{"role in upper case", `{"name":"k","role":"Owner"}`, "role"},
		{"both", `{"name":"k","role":"manager","permissions":["read"]}`, "role"},
		{"both, permissions empty", `{"name":"k","role":"manager","permissions":[]}`, "role"},
		{"neither", `{"name":"k"}`, "permissions"},
		{"neither, permissions empty", `{"name":"k","permissions":[]}`, "permissions"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.state()
			r := e.do("POST", "/v1/tenants/acme/apikeys", c.body)
			p := checkProblem(t, r, http.StatusUnprocessableEntity, "validation", "")
			if !slices.ContainsFunc(p.Errors, func(f api.FieldProblem) bool { return f.Field == c.field }) {
				t.Errorf("%s: problem %+v does not name %s", c.body, p, c.field)
			}
			if after := e.state(); after != before {
				t.Errorf("%s: a refused creation changed the store", c.body)
			}
		})
	}
	if r := e.do("GET", "/v1/tenants/acme/apikeys", ""); !strings.Contains(string(r.body), `"apikeys":[]`) {
		t.Errorf("keys after refused creations: %s", r.body)
	}
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// A key created with a role reads back with it (and no permissions), and
// apikey.create's entry records the role; an old key's records its
// permissions, as before.
func TestKeyRoleCreated(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	k := e.createKey(t, "acme", `{"name":"desk","role":"foh"}`)
	old := e.createKey(t, "acme", `{"name":"app","permissions":["write","read"]}`)
	r := e.do("GET", "/v1/tenants/acme/apikeys", "")
	var list struct {
		APIKeys []map[string]any `json:"apikeys"`
	}
	r.json(t, &list)
	for _, got := range list.APIKeys {
		switch got["id"] {
		case k.ID:
			if got["role"] != "foh" || got["permissions"] != nil {
				t.Errorf("the foh key lists as %v", got)
			}
		case old.ID:
			if got["role"] != nil || len(got["permissions"].([]any)) != 2 {
				t.Errorf("the old key lists as %v", got)
			}
		}
	}
	r = e.do("GET", "/v1/tenants/acme/audit?action=apikey.create", "")
	var chain struct {
		Entries []struct {
			Entry struct {
				Target  string            `json:"target"`
				Details map[string]string `json:"details"`
			} `json:"entry"`
		} `json:"entries"`
	}
	r.json(t, &chain)
	// The operator created both while acme had no Owner user: bootstrap.
	want := map[string]map[string]string{"apikey:" + k.ID: {"role": "foh", "bootstrap": "true"}, "apikey:" + old.ID: {"permissions": "read,write", "bootstrap": "true"}}
	for _, item := range chain.Entries {
		en := item.Entry
		if w, ok := want[en.Target]; ok {
			if !maps.Equal(en.Details, w) {
				t.Errorf("%s: details %v, want %v", en.Target, en.Details, w)
			}
			delete(want, en.Target)
		}
	}
	if len(want) > 0 {
		t.Errorf("no apikey.create entries for %v in %s", want, r.body)
	}
}

// openapi.json's APIKeyRole lists exactly the roles a key may have.
func TestSpecKeyRoles(t *testing.T) {
	doc := specDoc(t)
	s := doc.Components.Schemas["APIKeyRole"]
	if s == nil {
		t.Fatal("components.schemas.APIKeyRole is missing")
	}
	var got []string
	for _, v := range s.Value.Enum {
		got = append(got, v.(string))
	}
	if want := apikeys.Roles(); !slices.Equal(got, want) {
		t.Errorf("APIKeyRole's enum is %v; apikeys.Roles() is %v", got, want)
	}
	for _, name := range []string{"APIKey", "CreatedAPIKey", "CreateAPIKeyRequest"} {
		if p := doc.Components.Schemas[name].Value.Properties["role"]; p == nil || p.Ref != "#/components/schemas/APIKeyRole" {
			t.Errorf("%s has no role of APIKeyRole", name)
		}
	}
}

// blobContent reports whether op reads a blob's content (GET or HEAD of
// the blob itself, not its metadata).
func blobContent(op *specOp) bool {
	return (op.method == http.MethodGet || op.method == http.MethodHead) && op.path == "/v1/tenants/{id}/blobs/{bid}"
}
