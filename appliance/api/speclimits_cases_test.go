package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/internal/tenancy"
)

// limitFixture is what the limits test's scenarios work in: tenant acme
// with collection plain (one optional string field s) and its record r1, an
// API key and a blob.
type limitFixture struct {
	t      *testing.T
	e      *env
	key    string // an API key id of acme
	blob   string // a blob id of acme
	user   string // a user id of tenant people (a Manager)
	sess   string // a session id of that user
	owner  string // the access token of people's Owner
	export string // an export id of people (a tenant export)
	op     string // an operator user's id
	n      int    // for fresh names
}

const limitPlain = `{"fields":[{"name":"s","type":"string","classification":"internal","index":true}]}`

func newLimitFixture(t *testing.T) *limitFixture {
	e := newEnv(t, api.Options{})
	f := &limitFixture{t: t, e: e}
	f.must("POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`)
	f.must("PUT", "/v1/tenants/acme/collections/plain", limitPlain)
	f.must("POST", "/v1/tenants/acme/collections/plain/records", `{"id":"r1","fields":{"s":"x"}}`)
	f.key = e.createKey(t, "acme", `{"name":"limits","permissions":["read"]}`).ID
	r, b := e.upload(t, "", "text/plain", []byte("a blob"))
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	f.blob = b.ID
	// People in a tenant of their own: acme stays bootstrapping (its Owner
	// key mints the keys of other scenarios).
	f.must("POST", "/v1/tenants", `{"id":"people","display_name":"People"}`)
	e.ownerKey("people") // while it bootstraps: e.do sends it on people's routes
	owner := e.user(t, operatorPrincipal, "people", "olivia", "owner")
	g, _ := e.enrolled(t, "people", "olivia")
	f.owner = g.AccessToken
	f.user = e.user(t, audit.Principal{Kind: audit.ActorUser, ID: owner.ID, Tenant: "people", Role: "owner"}, "people", "max", "manager").ID
	f.sess = e.session(t, "people", "max").Session.ID
	var op struct{ ID string }
	f.must("POST", "/v1/sys/operators", `{"username":"ada","password":"`+peoplePass+`"}`).json(t, &op)
	f.op = op.ID
	var x struct{ ID string }
	f.must("POST", "/v1/tenants/people/export", "", bearer(f.owner)).json(t, &x)
	f.export = x.ID
	return f
}

func (f *limitFixture) must(method, target, body string, opts ...reqOpt) response {
	f.t.Helper()
	r := f.e.do(method, target, body, opts...)
	if r.status >= 300 {
		f.t.Fatalf("%s %s: %d %s", method, target, r.status, r.body)
	}
	return r
}

// grant is a new pending break-glass grant of acme, requested by the
// operator.
func (f *limitFixture) grant() string {
	f.t.Helper()
	var g struct{ ID string }
	f.must("POST", "/v1/tenants/acme/breakglass", `{"reason":"limits"}`).json(f.t, &g)
	return g.ID
}

// erased returns the id of an erasure request of acme carried out.
func (f *limitFixture) erased() string {
	f.t.Helper()
	ctx := context.Background()
	rq := requests.New(tenancy.New(f.e.store), f.e.keys)
	r, err := rq.Create(ctx, operatorPrincipal, "acme", requests.Input{Kind: requests.Erasure, Subject: f.fresh("erased")})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := rq.Transition(ctx, operatorPrincipal, "acme", r.ID, requests.TransitionInput{To: requests.Verified, Evidence: &requests.Evidence{Method: "document", Text: "checked"}}); err != nil {
		f.t.Fatal(err)
	}
	f.must("POST", "/v1/tenants/acme/requests/"+r.ID+"/erase", "")
	return r.ID
}

// fresh returns a name not used before.
func (f *limitFixture) fresh(prefix string) string {
	f.n++
	return fmt.Sprintf("%s%d", prefix, f.n)
}

// seg puts v into a path: as it is where a path segment allows it (fiber
// does not unescape paths), escaped otherwise.
func seg(v string) string {
	if strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~:!", r))
	}) < 0 {
		return v
	}
	return url.PathEscape(v)
}

func query(kv ...string) string {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return "?" + q.Encode()
}

// js is v as JSON.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func one(r response) []response { return []response{r} }

// scenarios are keyed as limitSites keys the sites. Prepare steps (such as
// creating the tenant a GET then reads) are sent whatever the value, and
// their answers are not judged: the judged request is the last.
func (f *limitFixture) scenarios() map[string]limitScenario {
	e := f.e
	const plain = "/v1/tenants/acme/collections/plain"
	upload := func(q string, opts ...reqOpt) response {
		return e.do("POST", "/v1/tenants/acme/blobs"+q, "blob bytes", append([]reqOpt{withHeader("Content-Type", "text/plain")}, opts...)...)
	}
	status := func(s ...int) outcome { return outcome{status: s} }
	return map[string]limitScenario{
		// Path ids: a malformed one is 404, like one that names nothing.
		"parameter TenantId": {send: func(v string) []response {
			e.do("POST", "/v1/tenants", js(map[string]string{"id": v, "display_name": "T"}))
			return one(e.do("GET", "/v1/tenants/"+seg(v), ""))
		}},
		"parameter PeerId": {send: func(v string) []response {
			return one(e.do("DELETE", "/v1/operator/raft/peers/"+seg(v), "")) // never a member: 204
		}},
		"parameter APIKeyId": {made: func() []string { return []string{f.key} }, send: func(v string) []response {
			return one(e.do("GET", "/v1/tenants/acme/apikeys/"+seg(v), ""))
		}},
		"parameter GrantId": {made: func() []string { return []string{f.grant()} }, send: func(v string) []response {
			return one(e.do("POST", "/v1/tenants/acme/breakglass/"+seg(v)+"/revoke", ""))
		}, ok: []outcome{{status: []int{200}}, {status: []int{409}, slug: []string{"conflict"}}}},
		"parameter UserId": {made: func() []string { return []string{f.user} }, send: func(v string) []response {
			return one(e.do("GET", "/v1/tenants/people/users/"+seg(v), "", bearer(f.owner)))
		}},
		"parameter OperatorId": {made: func() []string { return []string{f.op} }, send: func(v string) []response {
			return one(e.do("GET", "/v1/sys/operators/"+seg(v), ""))
		}},
		"parameter SessionId": {made: func() []string { return []string{f.sess} }, send: func(v string) []response {
			return one(e.do("DELETE", "/v1/tenants/people/users/"+f.user+"/sessions/"+seg(v), "", bearer(f.owner)))
		}},
		"parameter RoleName": {made: func() []string { return []string{"foh", "read-only"} },
			send: func(v string) []response { return one(e.do("GET", "/v1/tenants/acme/roles/"+seg(v), "")) }},
		"parameter DSRId": {made: func() []string {
			var r struct{ ID string }
			e.do("POST", "/v1/tenants/acme/requests", js(map[string]string{"kind": "access", "subject": f.fresh("dsr")})).json(e.t, &r)
			return []string{r.ID}
		}, send: func(v string) []response {
			return one(e.do("GET", "/v1/tenants/acme/requests/"+seg(v), ""))
		}},
		"parameter PurposeId": {send: func(v string) []response {
			e.do("POST", "/v1/tenants/acme/purposes", js(map[string]any{"id": v, "description": "Limits", "basis": "consent"}))
			return one(e.do("GET", "/v1/tenants/acme/purposes/"+seg(v), ""))
		}},
		"parameter BlobKindQuery": {send: func(v string) []response {
			e.do("PUT", "/v1/tenants/acme/blob-kinds/"+seg(v), `{"purposes":[]}`)
			return one(upload(query("kind", v)))
		}},
		"parameter BlobKind": {send: func(v string) []response {
			return one(e.do("PUT", "/v1/tenants/acme/blob-kinds/"+seg(v), `{"purposes":[]}`))
		}},
		"PurposeRequest.description": {send: func(v string) []response {
			return one(e.do("POST", "/v1/tenants/acme/purposes", js(map[string]any{"id": f.fresh("limits-"), "description": v, "basis": "consent"})))
		}},
		"Evidence.text": {send: func(v string) []response {
			e.do("POST", "/v1/tenants/acme/purposes", `{"id":"limits","description":"Limits","basis":"consent"}`)
			e.do("POST", plain+"/records", `{"id":"limits-r","subject":"limits-s","fields":{"s":"y"}}`)
			return one(e.do("POST", "/v1/tenants/acme/consent/limits-s/grant", js(map[string]any{"purposes": []string{"limits"}, "source": "api", "evidence": map[string]string{"text": v}})))
		}, bad: &outcome{status: []int{422}, slug: []string{"validation"}, field: []string{"evidence.text"}}},
		"parameter BlobId": {made: func() []string { return []string{f.blob} }, send: func(v string) []response {
			return one(e.do("GET", "/v1/tenants/acme/blobs/"+seg(v)+"/metadata", ""))
		}},
		"parameter ExportId": {made: func() []string { return []string{f.export} }, send: func(v string) []response {
			return one(e.do("GET", "/v1/tenants/people/exports/"+seg(v), "", bearer(f.owner)))
		}},
		"parameter CollectionName": {send: func(v string) []response {
			return one(e.do("PUT", "/v1/tenants/acme/collections/"+seg(v), limitPlain))
		}},
		"parameter RecordId": {send: func(v string) []response {
			e.do("POST", plain+"/records", js(map[string]string{"id": v}))
			return one(e.do("GET", plain+"/records/"+seg(v), ""))
		}},
		"parameter ErasureRequestId": {made: func() []string { return []string{f.erased()} }, send: func(v string) []response {
			return one(e.do("GET", "/v1/tenants/acme/requests/"+seg(v)+"/receipt", ""))
		}},
		"parameter SubjectId": {send: func(v string) []response {
			e.do("POST", plain+"/records", js(map[string]string{"subject": v}))
			return one(e.do("GET", "/v1/tenants/acme/subjects/"+seg(v), ""))
		}},

		// Query parameters.
		"parameter SSOTenant": {send: func(v string) []response { return one(e.do("GET", "/v1/auth/oidc/start"+query("tenant", v), "")) },
			ok: []outcome{{status: []int{404}, slug: []string{"not-found"}}}}, // no tenant has single sign-on here
		"parameter TenantAfter": {send: func(v string) []response { return one(e.do("GET", "/v1/tenants"+query("after", v), "")) }},
		"parameter AuditActor":  {send: func(v string) []response { return one(e.do("GET", "/v1/sys/audit"+query("actor", v), "")) }},
		"parameter AuditAction": {send: func(v string) []response { return one(e.do("GET", "/v1/sys/audit"+query("action", v), "")) }},
		"parameter AuditTarget": {send: func(v string) []response { return one(e.do("GET", "/v1/sys/audit"+query("target", v), "")) }},
		"parameter RecordAfter": {send: func(v string) []response { return one(e.do("GET", plain+"/records"+query("after", v), "")) }},
		"parameter RecordAttribute": {send: func(v string) []response {
			return one(e.do("GET", plain+"/records"+query("attribute", v), ""))
		}},
		"parameter RecordField": {send: func(v string) []response {
			// A collection whose indexed fields are s and, if it can be
			// one, v.
			c := "/v1/tenants/acme/collections/" + f.fresh("find")
			e.do("PUT", c, limitPlain)
			e.do("PUT", c, js(map[string]any{"fields": []map[string]any{
				{"name": "s", "type": "string", "classification": "internal", "index": true},
				{"name": v, "type": "string", "classification": "internal", "index": true},
			}}))
			return one(e.do("GET", c+"/records"+query("field", v, "value", `"x"`), ""))
		}},
		"parameter DSRAfter": {send: func(v string) []response {
			return one(e.do("GET", "/v1/tenants/acme/requests"+query("after", v), ""))
		}},
		"parameter ReadReason": {send: func(v string) []response {
			e.do("POST", plain+"/records", `{"id":"reasoned","subject":"reasoned-s","fields":{"s":"y"}}`)
			return []response{e.do("GET", plain+"/records/reasoned"+query("reason", v), ""), e.do("GET", "/v1/tenants/acme/subjects/reasoned-s"+query("reason", v), "")}
		}},
		"parameter BlobAfter": {send: func(v string) []response {
			return one(e.do("GET", "/v1/tenants/acme/blobs"+query("after", v), ""))
		}},
		"parameter DSRSubject": {send: func(v string) []response {
			e.do("POST", "/v1/tenants/acme/requests", js(map[string]string{"kind": "access", "subject": v}))
			return one(e.do("GET", "/v1/tenants/acme/requests"+query("subject", v), ""))
		}},
		"parameter BlobSubject": {send: func(v string) []response {
			return []response{e.do("GET", "/v1/tenants/acme/blobs"+query("subject", v), ""), upload(query("subject", v))}
		}},
		"parameter BlobCollection": {
			send: func(v string) []response {
				e.do("PUT", "/v1/tenants/acme/collections/"+seg(v), limitPlain)
				e.do("POST", "/v1/tenants/acme/collections/"+seg(v)+"/records", `{"id":"linked"}`)
				return one(upload(query("collection", v, "record", "linked")))
			},
		},
		"parameter BlobRecord": {send: func(v string) []response {
			e.do("POST", plain+"/records", js(map[string]string{"id": v}))
			return one(upload(query("collection", "plain", "record", v)))
		}},

		// Headers.
		"parameter IfMatch": {
			send: func(v string) []response {
				return one(e.do("PUT", plain+"/records/r1", `{"fields":{"s":"x"}}`, withHeader("If-Match", v)))
			},
			ok:  []outcome{status(200), {status: []int{412}, slug: []string{"precondition-failed"}}}, // r1 is at another version
			bad: &outcome{status: []int{400}, slug: []string{"bad-request"}, field: []string{"If-Match"}},
		},
		"parameter ContentSHA256": {
			send: func(v string) []response { return one(upload("", withHeader("Custos-Content-SHA256", v))) },
			// A well-formed digest that is not the body's.
			ok: []outcome{{status: []int{422}, field: []string{"Custos-Content-SHA256"}, reason: "does not match the body"}},
			// The blob service checks the header's form and names it
			// sha256, with 422 (not yet the 400 naming the header that
			// the declared parameters give).
			bad: &outcome{status: []int{400, 422}, slug: []string{"validation", "bad-request"}, field: []string{"Custos-Content-SHA256", "sha256"}},
		},

		// Bodies.
		"TransferLeaderRequest.id": {
			send: func(v string) []response {
				return one(e.do("POST", "/v1/operator/raft/transfer-leader", js(map[string]string{"id": v})))
			},
			ok: []outcome{
				{status: []int{422}, field: []string{"id"}, reason: "is not a member of the cluster"}, // well formed, no such voter
				{status: []int{409}, slug: []string{"conflict"}},                                      // empty: any other voter, and there is none
			},
		},
		"CreateTenantRequest.id": {send: func(v string) []response {
			return one(e.do("POST", "/v1/tenants", js(map[string]string{"id": v, "display_name": "T"})))
		}, ok: []outcome{status(201), {status: []int{409}, slug: []string{"conflict"}}}}, // the TenantId scenario may have made it
		"CreateTenantRequest.display_name": {send: func(v string) []response {
			return one(e.do("POST", "/v1/tenants", js(map[string]string{"display_name": v})))
		}},
		"CreateTenantRequest.region": {
			send: func(v string) []response {
				return one(e.do("POST", "/v1/tenants", js(map[string]string{"display_name": "T", "region": v})))
			},
			// A region name, but not the cluster's (empty: the cluster's).
			ok:  []outcome{status(201), {status: []int{422}, slug: []string{"region-mismatch"}}},
			bad: &outcome{status: []int{422}, slug: []string{"validation"}, field: []string{"region"}},
		},
		"UpdateTenantRequest.display_name": {send: func(v string) []response {
			return one(e.do("PATCH", "/v1/tenants/acme", js(map[string]string{"display_name": v})))
		}},
		"GenerateRootTokenRequest.nonce": {send: func(v string) []response {
			return one(e.do("POST", "/v1/sys/root-token/generate", js(map[string]any{"nonce": v})))
		}, ok: []outcome{{status: []int{422}, slug: []string{"validation"}, field: []string{"nonce"}, reason: "does not answer"}},
			bad: &outcome{status: []int{422}, slug: []string{"validation"}, field: []string{"nonce"}, reason: "at most"}},
		"BreakGlassRequest.reason": {send: func(v string) []response {
			return one(e.do("POST", "/v1/tenants/acme/breakglass", js(map[string]any{"reason": v})))
		}},
		"CreateAPIKeyRequest.name": {send: func(v string) []response {
			return one(e.do("POST", "/v1/tenants/acme/apikeys", js(map[string]any{"name": v, "permissions": []string{"read"}})))
		}},
		"CreateAPIKeyRequest.client_cert_cn": {send: func(v string) []response {
			return one(e.do("POST", "/v1/tenants/acme/apikeys", js(map[string]any{"name": "mtls", "role": "read-only", "client_cert_cn": v})))
		}},
		"Field.name": {
			send: func(v string) []response {
				return one(e.do("PUT", "/v1/tenants/acme/collections/"+f.fresh("fname"),
					js(map[string]any{"fields": []map[string]any{{"name": v, "type": "string", "classification": "internal"}}})))
			},
			bad: &outcome{status: []int{422}, slug: []string{"validation"}, field: []string{"fields[0].name"}},
		},
		"Field.collection": {
			send: func(v string) []response {
				return one(e.do("PUT", "/v1/tenants/acme/collections/"+f.fresh("fref"),
					js(map[string]any{"fields": []map[string]any{{"name": "r", "type": "ref", "classification": "internal", "collection": v}}})))
			},
			bad: &outcome{status: []int{422}, slug: []string{"validation"}, field: []string{"fields[0].collection"}},
		},
		"Field.values[]": {
			send: func(v string) []response {
				return one(e.do("PUT", "/v1/tenants/acme/collections/"+f.fresh("fvalues"),
					js(map[string]any{"fields": []map[string]any{{"name": "e", "type": "enum", "classification": "internal", "values": []string{v}}}})))
			},
			bad: &outcome{status: []int{422}, slug: []string{"validation"}, field: []string{"fields[0].values"}},
		},
		"RecordInput.id": {send: func(v string) []response {
			c := "/v1/tenants/acme/collections/" + f.fresh("ids")
			e.do("PUT", c, limitPlain)
			return one(e.do("POST", c+"/records", js(map[string]string{"id": v})))
		}},
		"RecordInput.subject": {send: func(v string) []response {
			return one(e.do("POST", plain+"/records", js(map[string]string{"subject": v})))
		}},
		"RecordPatch.subject": {send: func(v string) []response {
			return one(e.do("PATCH", plain+"/records/r1", js(map[string]string{"subject": v})))
		}},
		"Attributes{}": {
			send: func(v string) []response {
				return one(e.do("POST", plain+"/records", js(map[string]any{"attributes": map[string]string{"a": v}})))
			},
			bad: &outcome{status: []int{422}, slug: []string{"validation"}, field: []string{"attributes.a"}},
		},
		"Attributes{names}": {
			send: func(v string) []response {
				return one(e.do("POST", plain+"/records", js(map[string]any{"attributes": map[string]string{v: "x"}})))
			},
			bad: &outcome{status: []int{422}, slug: []string{"validation"}, field: []string{"attributes.{v}"}},
		},
		"Scopes{}[]": {
			send: func(v string) []response {
				return one(e.do("POST", "/v1/tenants/acme/apikeys", js(map[string]any{"name": "scoped", "role": "concierge", "scopes": map[string][]string{"property": {v}}})))
			},
			bad: &outcome{status: []int{422}, slug: []string{"validation"}, field: []string{"scopes.property"}},
		},
		"Scopes{names}": {
			send: func(v string) []response {
				return one(e.do("POST", "/v1/tenants/acme/apikeys", js(map[string]any{"name": "scoped", "role": "concierge", "scopes": map[string][]string{v: {"x"}}})))
			},
			bad: &outcome{status: []int{422}, slug: []string{"validation"}, field: []string{"scopes.{v}"}},
		},
	}
}

// TestSpecBlobMediaTypes: the media types the upload documents are the
// blob service's defaults, each is accepted, and a type outside them is
// 415, as the description says.
func TestSpecBlobMediaTypes(t *testing.T) {
	doc := specDoc(t)
	body := doc.Paths.Value("/v1/tenants/{id}/blobs").Post.RequestBody.Value
	var documented []string
	for mt := range body.Content {
		documented = append(documented, mt)
	}
	slices.Sort(documented)
	defaults := blobs.DefaultContentTypes()
	slices.Sort(defaults)
	if !slices.Equal(documented, defaults) {
		t.Errorf("openapi.json documents the upload's media types %q; the blob service's defaults are %q", documented, defaults)
	}
	e := blobEnv(t, blobs.Config{})
	for _, mt := range documented {
		concrete := strings.Replace(mt, "*", "x-limits", 1)
		if r, _ := e.upload(t, "", concrete, []byte("bytes")); r.status != http.StatusCreated {
			t.Errorf("%s (documented as %s): %d %s", concrete, mt, r.status, r.body)
		}
	}
	for _, mt := range []string{"application/zip", "font/woff2", "application/json"} {
		if body.Content.Get(mt) != nil {
			t.Fatalf("%s is documented: pick another undocumented type", mt)
		}
		r, _ := e.upload(t, "", mt, []byte("bytes"))
		checkProblem(t, r, http.StatusUnsupportedMediaType, "unsupported-media-type", "/v1/tenants/acme/blobs")
	}
}
