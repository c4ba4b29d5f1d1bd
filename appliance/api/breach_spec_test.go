package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/custos/custos/internal/apispec"
)

// What the breach suite (breach_test.go) reads from the OpenAPI
// description, and the attacker's values for what it finds there: a
// valid body per request schema, a victim-flavoured value per parameter.
// A body schema or a parameter the suite has no value for fails it, so the
// suite grows with the description.

// specOp is one operation of the description.
type specOp struct {
	method, path string
	params       []*openapi3.Parameter // path-level and operation-level
	access       string                // public, operator or tenant
	perm         string                // x-custos-apikey-permission: the old key permission that admits an old key
	need         string                // x-custos-permission: the permission of the roles table
	bodySchema   string                // component name of the JSON body's schema
	rawBody      bool                  // a raw (non-JSON) body: the blob upload
	creates      bool                  // documents 201
}

func (o *specOp) String() string { return o.method + " " + o.path }

func (o *specOp) hasPathParam(name string) bool {
	return slices.ContainsFunc(o.params, func(p *openapi3.Parameter) bool { return p.In == "path" && p.Name == name })
}

// loadSpecOps lists the operations of the description, in a stable order.
func loadSpecOps(t *testing.T) (*openapi3.T, []*specOp) {
	t.Helper()
	doc, err := apispec.LoadDoc(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ops []*specOp
	paths := doc.Paths.Map()
	names := make([]string, 0, len(paths))
	for p := range paths {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, path := range names {
		item := paths[path]
		methods := item.Operations()
		ms := make([]string, 0, len(methods))
		for m := range methods {
			ms = append(ms, m)
		}
		sort.Strings(ms)
		for _, m := range ms {
			op := methods[m]
			so := &specOp{method: m, path: path}
			byKey := map[string]*openapi3.Parameter{}
			var order []string
			for _, list := range []openapi3.Parameters{item.Parameters, op.Parameters} {
				for _, pr := range list {
					p := pr.Value
					k := p.In + ":" + p.Name
					if _, ok := byKey[k]; !ok {
						order = append(order, k)
					}
					byKey[k] = p
				}
			}
			for _, k := range order {
				so.params = append(so.params, byKey[k])
			}
			sec := doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			switch {
			case len(sec) == 0:
				so.access = "public"
			case op.Extensions["x-custos-session"] != nil:
				// A user's own session: no permission applies.
				so.access = "session"
			case slices.ContainsFunc(sec, func(r openapi3.SecurityRequirement) bool { _, ok := r["apiKey"]; return ok }):
				so.access = "tenant"
				if !strings.HasPrefix(path, "/v1/tenants/{id}") {
					t.Fatalf("%s accepts API keys but is not under /v1/tenants/{id}", so)
				}
			default:
				so.access = "operator"
			}
			so.perm, so.need = specString(op, "x-custos-apikey-permission"), specString(op, "x-custos-permission")
			if so.access != "public" && so.access != "session" && so.need == "" {
				t.Fatalf("%s needs a token but names no x-custos-permission", so)
			}
			if rb := op.RequestBody; rb != nil && rb.Value != nil {
				if mt := rb.Value.Content["application/json"]; mt != nil && mt.Schema != nil {
					ref := mt.Schema.Ref
					name, ok := strings.CutPrefix(ref, "#/components/schemas/")
					if !ok {
						t.Fatalf("%s: the JSON body schema is inline (%q); give it a component so the suite has a fixture for it", so, ref)
					}
					so.bodySchema = name
				} else if rb.Value.Content.Get("audio/wav") != nil {
					// The blob upload: raw bytes of the media types it lists
					// (audio/* among them), sent as audio/wav.
					so.rawBody = true
				} else {
					t.Fatalf("%s: a request body of a media type the suite does not know", so)
				}
			}
			so.creates = op.Responses.Status(http.StatusCreated) != nil
			ops = append(ops, so)
		}
	}
	if len(ops) < 40 {
		t.Fatalf("the description has only %d operations", len(ops))
	}
	return doc, ops
}

// bodyFixtures are valid bodies, by the component name of their schema;
// each is checked against its schema, and every JSON body schema in the
// description must have one. They are the attacker's own, valid content:
// aimed at its own tenant they succeed (or find nothing).
var bodyFixtures = map[string]string{
	"Empty":                    `{}`,
	"TransferLeaderRequest":    `{}`,
	"LogoutRequest":            `{}`,
	"CreateTenantRequest":      `{"id":"acme-two","display_name":"Acme two"}`,
	"UpdateTenantRequest":      `{"display_name":"Acme renamed"}`,
	"KeyProviderRequest":       `{"key_provider":"age"}`,
	"CreateAPIKeyRequest":      `{"name":"minted by acme","permissions":["admin"]}`,
	"CollectionDefinition":     guestsV1,
	"RecordInput":              `{"subject":"as-1","attributes":{"tier":"bronze"},"fields":{"email":"mallory@acme.test","stay":"short"}}`,
	"RecordPatch":              `{"fields":{"stay":"long"}}`,
	"BreakGlassRequest":        `{"reason":"a support case of acme"}`,
	"ExportOptions":            `{"format":"json"}`,
	"BreakGlassPolicy":         `{"auto_approve":false,"max_duration_seconds":3600}`,
	"SSOSettings":              `{"issuer":"http://127.0.0.1:9/idp","client_id":"custos","redirect_url":"http://127.0.0.1:9/cb","default_role":"read-only"}`,
	"SSOCallbackRequest":       `{"state":"acme.` + strings.Repeat("A", 43) + `","code":"c","binding":"b"}`,
	"LoginRequest":             `{"tenant":"nowhere","username":"mallory","password":"mallory's long password"}`,
	"RefreshRequest":           `{"refresh_token":"crt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`,
	"ConfirmMFARequest":        `{"code":"123456"}`,
	"CreateUserRequest":        `{"username":"minted by acme","password":"mallory's long password","role":"foh"}`,
	"CreateOperatorRequest":    `{"username":"minted by acme","password":"mallory's long password"}`,
	"BackupRecipients":         `{"recipients":["age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"]}`,
	"PatchUserRequest":         `{"role":"foh"}`,
	"CustomRole":               `{"name":"minted","permissions":["records:read"],"visibility":{"pii":"clear","sensitive":"clear","internal":"clear"}}`,
	"GenerateRootTokenRequest": `{"nonce":"not-the-sealed-nonce"}`,
	"NewDSR":                   `{"kind":"access","subject":"as-1"}`,
	"DSRTransition":            `{"to":"rejected","reason":"not verifiable"}`,
	"PurposeRequest":           `{"id":"call-recording","description":"Recording of calls","basis":"consent"}`,
	"BlobKindRequest":          `{"purposes":[]}`,
	"ConsentRequest":           `{"purposes":["call-recording"],"source":"api"}`,
	"ConsentFlagRequest":       `{"flag":"do-not-sell","on":true,"source":"api"}`,
}

// massAssignment are the fields phase 5 adds to valid bodies.
var massAssignment = []struct{ key, value string }{
	{"tenant", victimTenant},
	{"tenant_id", victimTenant},
	{"subject", vSubject},
	{"id", vRecord},
	{"collection", vCollection},
}

// injections are the headers and query parameters of phase 4: none of
// them is part of the API; each names the victim.
var injections = []struct{ header, value, query string }{
	{header: "X-Tenant-Id", value: victimTenant},
	{header: "X-Custos-Tenant", value: victimTenant},
	{header: "X-Tenant", value: victimTenant},
	{header: "Forwarded", value: "for=203.0.113.9;host=globex;proto=https"},
	{header: "X-Forwarded-Host", value: victimTenant},
	{header: "X-Forwarded-For", value: "10.0.0.1"},
	{header: "X-Original-URL", value: "/v1/tenants/globex/blobs"},
	{header: "X-Rewrite-URL", value: "/v1/tenants/globex/collections"},
	{header: "X-HTTP-Method-Override", value: "DELETE"},
	{header: "Custos-Content-SHA256", value: strings.Repeat("0f", 32)},
	{query: "tenant=globex"},
	{query: "tenant_id=globex"},
}

// paramSet is one setting of an operation's parameters.
type paramSet struct {
	query   url.Values
	headers [][2]string
}

func queryParams(kv ...string) paramSet {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return paramSet{query: v}
}

func headerParam(k, v string) paramSet { return paramSet{headers: [][2]string{{k, v}}} }

// paramValues are the victim-flavoured values of a declared parameter.
// A parameter the suite has no value for fails it: a new parameter in the
// spec must be attacked too.
func (b *breach) paramValues(op *specOp, p *openapi3.Parameter) []paramSet {
	integer := p.Schema != nil && p.Schema.Value != nil && p.Schema.Value.Type.Is("integer")
	switch p.In + ":" + p.Name {
	case "query:subject":
		return []paramSet{queryParams("subject", vSubject)}
	case "query:after":
		switch {
		case integer:
			return []paramSet{queryParams("after", "0")}
		case strings.Contains(op.path, "/blobs"):
			return []paramSet{queryParams("after", b.vBlob), queryParams("after", "0")}
		case strings.Contains(op.path, "/records"):
			return []paramSet{queryParams("after", vRecord), queryParams("after", "0")}
		default:
			return []paramSet{queryParams("after", victimTenant), queryParams("after", "aa")}
		}
	case "query:limit":
		return []paramSet{queryParams("limit", "500")}
	case "query:status": // data-subject requests
		return []paramSet{queryParams("status", "open"), queryParams("status", "overdue")}
	case "query:kind":
		return []paramSet{queryParams("kind", "erasure")}
	case "query:stale":
		return []paramSet{queryParams("stale", "true")}
	case "query:field", "query:value":
		return []paramSet{queryParams("field", "email", "value", `"`+vEmail+`"`)}
	case "query:attribute":
		return []paramSet{queryParams("attribute", "tier:"+vAttribute)}
	case "query:collection", "query:record":
		return []paramSet{queryParams("collection", "guests", "record", vRecord), queryParams("collection", vCollection, "record", vRecord)}
	case "query:actor":
		return []paramSet{queryParams("actor", b.victim["admin"].ID), queryParams("actor", "operator")}
	case "query:action":
		return []paramSet{queryParams("action", "record.read")}
	case "query:target":
		return []paramSet{queryParams("target", "tenant:"+victimTenant), queryParams("target", "record:guests/"+vRecord)}
	case "query:from", "query:to":
		return []paramSet{queryParams("from", "2000-01-01T00:00:00Z", "to", "2100-01-01T00:00:00Z")}
	case "query:index":
		return []paramSet{queryParams("index", "0"), queryParams("index", "1")}
	case "query:size", "query:new":
		return []paramSet{queryParams(p.Name, "1")}
	case "query:old":
		return []paramSet{queryParams("old", "1")}
	case "query:newest":
		return []paramSet{queryParams("newest", "true"), queryParams("newest", "false")}
	case "query:before":
		return []paramSet{queryParams("newest", "true", "before", "2")}
	case "query:days":
		return []paramSet{queryParams("days", "366")}
	case "query:version":
		return []paramSet{queryParams("version", "1")}
	case "query:mask":
		return []paramSet{queryParams("mask", "false"), queryParams("mask", "true")}
	case "query:reason": // why the attacker reads: the victim's subject or tenant named in it
		return []paramSet{queryParams("reason", victimTenant), queryParams("reason", vSubject)}
	case "query:tenant": // a sign-in at the victim's provider
		return []paramSet{queryParams("tenant", victimTenant)}
	case "query:redirect_uri", "query:redirect":
		return []paramSet{queryParams("redirect_uri", "http://127.0.0.1:1/cb", "redirect", "true")}
	case "query:state", "query:code": // a made-up sign-in of the victim's
		return []paramSet{queryParams("state", victimTenant+"."+strings.Repeat("A", 43), "code", "c")}
	case "query:error", "query:error_description", "query:error_uri", "query:iss", "query:session_state",
		"query:scope", "query:authuser", "query:prompt", "query:hd":
		return []paramSet{queryParams(p.Name, victimTenant)}
	case "query:at": // the victim's subject's consent as of a past moment
		return []paramSet{queryParams("at", "2026-01-02T15:04:05Z")}
	case "header:X-Request-Id":
		return []paramSet{headerParam("X-Request-Id", victimTenant), headerParam("X-Request-Id", b.victim["admin"].ID)}
	case "header:If-Match":
		return []paramSet{headerParam("If-Match", `"1"`)}
	case "header:Range":
		return []paramSet{headerParam("Range", "bytes=0-3"), headerParam("Range", "bytes=99999999-"), headerParam("Range", "bytes=-1")}
	case "header:If-Range":
		return []paramSet{{headers: [][2]string{{"Range", "bytes=0-3"}, {"If-Range", `"` + strings.Repeat("0", 64) + `"`}}}}
	case "header:Custos-Content-SHA256":
		sum := sha256.Sum256([]byte("a body of the attacker"))
		return []paramSet{headerParam("Custos-Content-SHA256", hex.EncodeToString(sum[:]))}
	}
	b.t.Errorf("%s: the suite has no victim value for %s parameter %s", op, p.In, p.Name)
	return []paramSet{{}}
}
