package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// allTypes is a collection with one field of every type, a required field
// and records that must belong to a subject.
const allTypes = `{"fields":[
 {"name":"req","type":"string","required":true,"classification":"pii","index":true},
 {"name":"s","type":"string","classification":"pii"},
 {"name":"num","type":"number","classification":"internal","index":true},
 {"name":"flag","type":"bool","classification":"internal"},
 {"name":"at","type":"time","classification":"internal"},
 {"name":"doc","type":"json","classification":"sensitive"},
 {"name":"kind","type":"enum","classification":"internal","values":["a","b"]}],
 "subject_required":true}`

// recordBadCase is one bad record request: what it sends and the problem
// it must get back.
type recordBadCase struct {
	name   string
	method string // POST (create) when empty
	target string // the create route when empty
	body   string // sent as is (raw bytes: it may be invalid UTF-8)
	opts   []reqOpt
	status int
	slug   string
	// field is the path errors[0].field must name. noField marks the cases
	// where the API refuses the request as a whole, before it has a field
	// to name: a body that is not well-formed JSON (truncated, or deeper
	// than encoding/json reads).
	field   string
	noField bool
}

func recordBadCases() []recordBadCase {
	const coll = "/v1/tenants/acme/collections/all/records"
	const one = coll + "/r1"
	// body is a create body with subject s1 and the required field, plus
	// the given fields (a JSON object's members, may be empty).
	body := func(fields string) string {
		if fields != "" {
			fields = "," + fields
		}
		return `{"subject":"s1","fields":{"req":"x@y.z"` + fields + `}}`
	}
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	ifMatch := func(v string) []reqOpt { return []reqOpt{withHeader("If-Match", v)} }
	return []recordBadCase{
		// Wrong type, per field type: 422 with the field's path.
		{name: "string given a number", body: body(`"s":5`), status: 422, slug: "validation", field: "fields.s"},
		{name: "string given an object", body: body(`"s":{"a":1}`), status: 422, slug: "validation", field: "fields.s"},
		{name: "string given an array", body: body(`"s":["a"]`), status: 422, slug: "validation", field: "fields.s"},
		{name: "required string given a bool", body: `{"subject":"s1","fields":{"req":true}}`, status: 422, slug: "validation", field: "fields.req"},
		{name: "number given a string", body: body(`"num":"5"`), status: 422, slug: "validation", field: "fields.num"},
		{name: "number given a bool", body: body(`"num":false`), status: 422, slug: "validation", field: "fields.num"},
		{name: "number out of float64 range", body: body(`"num":1e999`), status: 422, slug: "validation", field: "fields.num"},
		{name: "bool given a string", body: body(`"flag":"true"`), status: 422, slug: "validation", field: "fields.flag"},
		{name: "bool given a number", body: body(`"flag":1`), status: 422, slug: "validation", field: "fields.flag"},
		{name: "time given a number", body: body(`"at":1700000000`), status: 422, slug: "validation", field: "fields.at"},
		{name: "time not RFC 3339", body: body(`"at":"2024-01-02"`), status: 422, slug: "validation", field: "fields.at"},
		{name: "time garbage", body: body(`"at":"yesterday"`), status: 422, slug: "validation", field: "fields.at"},
		{name: "enum given a number", body: body(`"kind":1`), status: 422, slug: "validation", field: "fields.kind"},
		{name: "enum value not listed", body: body(`"kind":"c"`), status: 422, slug: "validation", field: "fields.kind"},
		{name: "enum value in another case", body: body(`"kind":"A"`), status: 422, slug: "validation", field: "fields.kind"},
		// json fields take any JSON, but not nested deeper than 32.
		{name: "json nested 33 deep", body: body(`"doc":` + deep(33)), status: 422, slug: "validation", field: "fields.doc"},
		{name: "json objects nested 33 deep", body: body(`"doc":` + strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33)), status: 422, slug: "validation", field: "fields.doc"},
		// Deeper than encoding/json's own limit (10000): refused as a body
		// that cannot be read, never a 500.
		{name: "json nested 20000 deep", body: body(`"doc":` + deep(20000)), status: 400, slug: "bad-request", noField: true},
		// Shape of the fields object.
		{name: "unknown field", body: body(`"colour":"red"`), status: 422, slug: "validation", field: "fields.colour"},
		{name: "field name in another case", body: body(`"S":"x"`), status: 422, slug: "validation", field: "fields.S"},
		{name: "fields not an object", body: `{"subject":"s1","fields":["req"]}`, status: 400, slug: "bad-request", field: "fields"},
		{name: "fields a string", body: `{"subject":"s1","fields":"req"}`, status: 400, slug: "bad-request", field: "fields"},
		// Top-level keys.
		{name: "unknown top-level key", body: `{"subject":"s1","colour":"red","fields":{"req":"x@y.z"}}`, status: 400, slug: "unknown-field", field: "colour"},
		{name: "top-level key in another case", body: `{"Subject":"s1","fields":{"req":"x@y.z"}}`, status: 400, slug: "unknown-field", field: "Subject"},
		{name: "duplicate top-level key", body: `{"subject":"s1","subject":"s2","fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "subject"},
		{name: "null top-level key", body: `{"subject":null,"fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "subject"},
		{name: "id not a string", body: `{"id":5,"subject":"s1","fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "id"},
		{name: "id with a slash", body: `{"id":"a/b","subject":"s1","fields":{"req":"x@y.z"}}`, status: 422, slug: "validation", field: "id"},
		{name: "id too long", body: `{"id":"` + strings.Repeat("a", 65) + `","subject":"s1","fields":{"req":"x@y.z"}}`, status: 422, slug: "validation", field: "id"},
		// Oversized values (the limit is 64 KiB per value).
		{name: "string value over 64 KiB", body: body(`"s":"` + strings.Repeat("x", 64<<10+1) + `"`), status: 422, slug: "validation", field: "fields.s"},
		{name: "json value over 64 KiB", body: body(`"doc":["` + strings.Repeat("x", 64<<10) + `"]`), status: 422, slug: "validation", field: "fields.doc"},
		// Invalid UTF-8, as raw bytes: refused with the path of the string
		// that holds it (a key by the path it would have, invalid bytes
		// shown as U+FFFD).
		{name: "invalid UTF-8 in a string value", body: body("\"s\":\"ab\xffcd\""), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "invalid UTF-8 in a field name", body: body("\"s\xc3\x28\":\"x\""), status: 400, slug: "bad-request", field: "fields.s\uFFFD("},
		{name: "invalid UTF-8 in an attribute value", body: "{\"subject\":\"s1\",\"attributes\":{\"k\":\"\xed\xa0\x80\"},\"fields\":{\"req\":\"x@y.z\"}}", status: 400, slug: "bad-request", field: "attributes.k"},
		{name: "invalid UTF-8 in the subject", body: "{\"subject\":\"s\xff1\",\"fields\":{\"req\":\"x@y.z\"}}", status: 400, slug: "bad-request", field: "subject"},
		{name: "invalid UTF-8 inside a json value", body: body("\"doc\":{\"a\":[1,\"\xc0\xaf\"]}"), status: 400, slug: "bad-request", field: "fields.doc.a[1]"},
		{name: "invalid UTF-8 in a truncated body", body: "{\"subject\":\"s\xff1\",\"fields\":{\"req\":\"x@y.z\"", status: 400, slug: "bad-request", noField: true},
		// Escapes encoding/json would store as U+FFFD or refuse as a whole:
		// refused with the path of the string.
		{name: "lone low surrogate", body: body(`"s":"a\udc00b"`), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "lone high surrogate", body: body(`"s":"\uD800"`), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "high surrogate before a non-surrogate", body: body(`"s":"\ud800\u0041"`), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "two high surrogates", body: body(`"s":"\ud800\ud800"`), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "reversed surrogate pair", body: body(`"s":"\ude00\ud83d"`), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "lone surrogate in the required field", body: `{"subject":"s1","fields":{"req":"\udfff"}}`, status: 400, slug: "bad-request", field: "fields.req"},
		{name: "lone surrogate in an attribute value", body: `{"subject":"s1","attributes":{"k":"\udc00"},"fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "attributes.k"},
		{name: "lone surrogate in an attribute name", body: `{"subject":"s1","attributes":{"k\udc00":"v"},"fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "attributes.k\uFFFD"},
		{name: "lone surrogate inside a json value", body: body(`"doc":{"n":["ok","\udc00"]}`), status: 400, slug: "bad-request", field: "fields.doc.n[1]"},
		{name: "lone surrogate in the subject", body: `{"subject":"\ud800","fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "subject"},
		{name: "invalid escape letter", body: body(`"s":"a\x41"`), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "invalid unicode escape", body: body(`"s":"\u12G4"`), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "short unicode escape", body: body(`"s":"\u12"`), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "raw control character", body: body("\"s\":\"a\tb\""), status: 400, slug: "bad-request", field: "fields.s"},
		// Duplicate keys at any depth: refused with the key's path (the
		// last one would silently win).
		{name: "duplicate field", body: `{"subject":"s1","fields":{"req":"a@b.c","req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "fields.req"},
		{name: "duplicate field, one escaped", body: `{"subject":"s1","fields":{"req":"a@b.c","r\u0065q":"x@y.z"}}`, status: 400, slug: "bad-request", field: "fields.req"},
		{name: "duplicate field removed by null", body: body(`"s":"x","s":null`), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "duplicate attribute", body: `{"subject":"s1","attributes":{"k":"a","k":"b"},"fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "attributes.k"},
		{name: "duplicate key in a json value", body: body(`"doc":{"x":1,"x":2}`), status: 400, slug: "bad-request", field: "fields.doc.x"},
		{name: "duplicate key deep in a json value", body: body(`"doc":[{"a":1},{"b":{"c":[0,{"d":1,"e":2,"d":3}]}}]`), status: 400, slug: "bad-request", field: "fields.doc[1].b.c[1].d"},
		{name: "duplicate after an unknown top-level key", body: `{"colour":{"a":1},"subject":"s1","fields":{"req":"a","req":"b"}}`, status: 400, slug: "unknown-field", field: "colour"},
		{name: "duplicate in a truncated body", body: `{"subject":"s1","fields":{"req":"a","req":"b"`, status: 400, slug: "bad-request", noField: true},
		{name: "bad string before a duplicate", body: `{"subject":"s1","fields":{"req":"a","req":"b","s":"\udc00"}}`, status: 400, slug: "bad-request", field: "fields.s"},
		// Required values.
		{name: "missing required field", body: `{"subject":"s1","fields":{"s":"x"}}`, status: 422, slug: "validation", field: "fields.req"},
		{name: "required field null", body: `{"subject":"s1","fields":{"req":null}}`, status: 422, slug: "validation", field: "fields.req"},
		{name: "no fields at all", body: `{"subject":"s1"}`, status: 422, slug: "validation", field: "fields.req"},
		{name: "subject required but absent", body: `{"fields":{"req":"x@y.z"}}`, status: 422, slug: "validation", field: "subject"},
		{name: "subject empty", body: `{"subject":"","fields":{"req":"x@y.z"}}`, status: 422, slug: "validation", field: "subject"},
		{name: "subject malformed", body: `{"subject":"a b","fields":{"req":"x@y.z"}}`, status: 422, slug: "validation", field: "subject"},
		{name: "subject not a string", body: `{"subject":7,"fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "subject"},
		// Attributes.
		{name: "attribute name with a space", body: `{"subject":"s1","attributes":{"Bad Key":"v"},"fields":{"req":"x@y.z"}}`, status: 422, slug: "validation", field: "attributes.Bad Key"},
		{name: "attribute name upper case", body: `{"subject":"s1","attributes":{"Prop":"v"},"fields":{"req":"x@y.z"}}`, status: 422, slug: "validation", field: "attributes.Prop"},
		{name: "attribute value over 128 bytes", body: `{"subject":"s1","attributes":{"prop":"` + strings.Repeat("v", 129) + `"},"fields":{"req":"x@y.z"}}`, status: 422, slug: "validation", field: "attributes.prop"},
		{name: "attribute value not a string", body: `{"subject":"s1","attributes":{"prop":5},"fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "attributes.prop"},
		{name: "attribute value an object", body: `{"subject":"s1","attributes":{"a":"v","prop":{"x":"y"}},"fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "attributes.prop"},
		{name: "attribute value a bool after a string", body: `{"subject":"s1","attributes":{"prop":"v" , "q":true},"fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "attributes.q"},
		{name: "attribute value null", body: `{"subject":"s1","attributes":{"prop":null},"fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "attributes.prop"},
		{name: "attributes not an object", body: `{"subject":"s1","attributes":["prop"],"fields":{"req":"x@y.z"}}`, status: 400, slug: "bad-request", field: "attributes"},
		{name: "too many attributes", body: `{"subject":"s1","attributes":{` + manyAttrs(17) + `},"fields":{"req":"x@y.z"}}`, status: 422, slug: "validation", field: "attributes"},

		// Replace and patch: the same checks, plus If-Match and the path.
		{name: "replace: wrong type", method: "PUT", target: one, body: body(`"num":"x"`), status: 422, slug: "validation", field: "fields.num"},
		{name: "replace: id differs from the path", method: "PUT", target: one, body: `{"id":"r2","subject":"s1","fields":{"req":"x@y.z"}}`, status: 422, slug: "validation", field: "id"},
		{name: "replace: missing required field", method: "PUT", target: one, body: `{"subject":"s1","fields":{}}`, status: 422, slug: "validation", field: "fields.req"},
		{name: "replace: If-Match not a number", method: "PUT", target: one, body: body(""), opts: ifMatch(`"abc"`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "replace: If-Match zero", method: "PUT", target: one, body: body(""), opts: ifMatch(`"0"`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "replace: If-Match weak", method: "PUT", target: one, body: body(""), opts: ifMatch(`W/"1"`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "replace: If-Match star", method: "PUT", target: one, body: body(""), opts: ifMatch(`*`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "replace: If-Match negative", method: "PUT", target: one, body: body(""), opts: ifMatch(`"-1"`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "replace: If-Match unquoted", method: "PUT", target: one, body: body(""), opts: ifMatch(`1`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "replace: If-Match half-quoted", method: "PUT", target: one, body: body(""), opts: ifMatch(`"1`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "replace: If-Match leading zero", method: "PUT", target: one, body: body(""), opts: ifMatch(`"01"`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "replace: If-Match sign", method: "PUT", target: one, body: body(""), opts: ifMatch(`"+1"`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "replace: If-Match empty quotes", method: "PUT", target: one, body: body(""), opts: ifMatch(`""`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "replace: If-Match past uint64", method: "PUT", target: one, body: body(""), opts: ifMatch(`"99999999999999999999"`), status: 400, slug: "bad-request", field: "If-Match"},
		{name: "patch: wrong type", method: "PATCH", target: one, body: `{"fields":{"flag":"yes"}}`, status: 422, slug: "validation", field: "fields.flag"},
		{name: "patch: unknown field", method: "PATCH", target: one, body: `{"fields":{"colour":"red"}}`, status: 422, slug: "validation", field: "fields.colour"},
		{name: "patch: removing a required field", method: "PATCH", target: one, body: `{"fields":{"req":null}}`, status: 422, slug: "validation", field: "fields.req"},
		{name: "patch: removing the subject", method: "PATCH", target: one, body: `{"subject":""}`, status: 422, slug: "validation", field: "subject"},
		{name: "patch: id is not a patch key", method: "PATCH", target: one, body: `{"id":"r1","fields":{}}`, status: 400, slug: "unknown-field", field: "id"},
		{name: "patch: bad attribute", method: "PATCH", target: one, body: `{"attributes":{"Bad Key":"v"}}`, status: 422, slug: "validation", field: "attributes.Bad Key"},
		{name: "patch: attribute value not a string", method: "PATCH", target: one, body: `{"attributes":{"prop":[1]}}`, status: 400, slug: "bad-request", field: "attributes.prop"},
		{name: "patch: duplicate field", method: "PATCH", target: one, body: `{"fields":{"s":"a","s":"b"}}`, status: 400, slug: "bad-request", field: "fields.s"},
		{name: "patch: duplicate attribute", method: "PATCH", target: one, body: `{"attributes":{"prop":"a","prop":"b"}}`, status: 400, slug: "bad-request", field: "attributes.prop"},
		{name: "patch: attribute value null", method: "PATCH", target: one, body: `{"attributes":{"prop":null}}`, status: 400, slug: "bad-request", field: "attributes.prop"},
		{name: "patch: lone surrogate", method: "PATCH", target: one, body: `{"fields":{"s":"\udc00"}}`, status: 400, slug: "bad-request", field: "fields.s"},
		{name: "replace: duplicate key in a json value", method: "PUT", target: one, body: body(`"doc":{"x":1,"x":2}`), status: 400, slug: "bad-request", field: "fields.doc.x"},
		{name: "replace: lone surrogate", method: "PUT", target: one, body: body(`"s":"\udc00"`), status: 400, slug: "bad-request", field: "fields.s"},
		{name: "patch: If-Match not a number", method: "PATCH", target: one, body: `{"fields":{"s":"x"}}`, opts: ifMatch(`"v1"`), status: 400, slug: "bad-request", field: "If-Match"},

		// Search and list parameters.
		{name: "find: value not JSON", method: "GET", target: coll + "?field=req&value=" + url.QueryEscape(`x@y.z`), status: 422, slug: "validation", field: "value"},
		{name: "find: value of the wrong type", method: "GET", target: coll + "?field=num&value=" + url.QueryEscape(`"five"`), status: 422, slug: "validation", field: "value"},
		{name: "find: field without an index", method: "GET", target: coll + "?field=s&value=" + url.QueryEscape(`"x"`), status: 422, slug: "validation", field: "field"},
		{name: "find: unknown field", method: "GET", target: coll + "?field=colour&value=" + url.QueryEscape(`"x"`), status: 422, slug: "validation", field: "field"},
		{name: "find: field without value", method: "GET", target: coll + "?field=req", status: 400, slug: "validation", field: "field"},
		{name: "list: attribute without a value", method: "GET", target: coll + "?attribute=prop", status: 400, slug: "validation", field: "attribute"},
		{name: "list: attribute with field", method: "GET", target: coll + "?attribute=prop:v&field=req&value=%22x%22", status: 400, slug: "validation", field: "attribute"},
		{name: "list: limit zero", method: "GET", target: coll + "?limit=0", status: 400, slug: "validation", field: "limit"},
		{name: "list: limit over 500", method: "GET", target: coll + "?limit=501", status: 400, slug: "validation", field: "limit"},
		{name: "list: limit not a number", method: "GET", target: coll + "?limit=ten", status: 400, slug: "validation", field: "limit"},
		{name: "list: bad after", method: "GET", target: coll + "?after=" + url.QueryEscape("a/b"), status: 400, slug: "validation", field: "after"},
		{name: "list: unknown parameter", method: "GET", target: coll + "?sort=id", status: 400, slug: "validation", field: "sort"},
		{name: "list: repeated parameter", method: "GET", target: coll + "?limit=1&limit=2", status: 400, slug: "validation", field: "limit"},
		{name: "get: bad mask", method: "GET", target: one + "?mask=maybe", status: 400, slug: "validation", field: "mask"},
	}
}

func manyAttrs(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"a` + string(rune('a'+i)) + `":"v"`)
	}
	return b.String()
}

// TestRecordsBadInput (issue 5, acceptance 6): every kind of bad record
// input is a problem+json with the right status and type and, where the
// request has a field to blame, errors[0].field naming it by its JSON
// path. Nothing is ever a 5xx, no refused request writes anything, and the
// record r1 is unchanged at the end.
func TestRecordsBadInput(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/all", allTypes); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	good := `{"id":"r1","subject":"s1","attributes":{"prop":"v"},"fields":{"req":"x@y.z","s":"text","num":1.5,"flag":true,"at":"2024-01-02T03:04:05Z","doc":{"a":[1,2]},"kind":"a"}}`
	if r := e.do("POST", "/v1/tenants/acme/collections/all/records", good); r.status != http.StatusCreated {
		t.Fatalf("valid record: %d %s", r.status, r.body)
	}
	r1 := e.do("GET", "/v1/tenants/acme/collections/all/records/r1", "").body
	before := recordsState(t, e)
	for _, c := range recordBadCases() {
		t.Run(c.name, func(t *testing.T) {
			method, target := c.method, c.target
			if method == "" {
				method = "POST"
			}
			if target == "" {
				target = "/v1/tenants/acme/collections/all/records"
			}
			r := e.do(method, target, c.body, c.opts...)
			if r.status >= 500 {
				t.Fatalf("%s %s: status %d: %s", method, target, r.status, r.body)
			}
			path, _, _ := strings.Cut(target, "?")
			p := checkProblem(t, r, c.status, c.slug, path)
			switch {
			case c.noField && len(p.Errors) != 0:
				t.Errorf("errors %+v, want none", p.Errors)
			case !c.noField && (len(p.Errors) != 1 || p.Errors[0].Field != c.field || p.Errors[0].Reason == ""):
				t.Errorf("errors %+v, want one naming %q with a reason", p.Errors, c.field)
			}
			if strings.Contains(p.Detail, "json:") || strings.Contains(p.Detail, "api:") || strings.Contains(p.Detail, "records:") {
				t.Errorf("detail carries internal error text: %q", p.Detail)
			}
			if after := recordsState(t, e); after != before {
				t.Errorf("a refused request changed state: %+v -> %+v", before, after)
			}
		})
	}
	if got := e.do("GET", "/v1/tenants/acme/collections/all/records/r1", "").body; string(got) != string(r1) {
		t.Errorf("r1 changed:\n%s\n->\n%s", r1, got)
	}
	// The valid forms of the refused requests are accepted, so the table
	// did not pass because every request fails.
	for _, ok := range []struct{ method, target, body string }{
		{"POST", "/v1/tenants/acme/collections/all/records", `{"id":"r2","subject":"s1","attributes":{"` + strings.Repeat("p", 63) + `":"` + strings.Repeat("v", 128) + `"},"fields":{"req":"x@y.z","s":"` + strings.Repeat("x", 64<<10-2) + `","doc":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `,"at":"2024-01-02T03:04:05.123+02:00","num":-0.5e3}}`},
		{"PUT", "/v1/tenants/acme/collections/all/records/r2", `{"id":"r2","subject":"s1","fields":{"req":"x@y.z","kind":"b"}}`},
		{"PATCH", "/v1/tenants/acme/collections/all/records/r2", `{"fields":{"flag":false}}`},
		{"GET", "/v1/tenants/acme/collections/all/records?field=num&value=1.5", ""},
		{"GET", "/v1/tenants/acme/collections/all/records?attribute=prop:v&limit=500", ""},
	} {
		if r := e.do(ok.method, ok.target, ok.body); r.status != http.StatusOK && r.status != http.StatusCreated {
			t.Errorf("valid %s %s: %d %s", ok.method, ok.target, r.status, r.body)
		}
	}
	var rec struct {
		Version uint64                     `json:"version"`
		Fields  map[string]json.RawMessage `json:"fields"`
	}
	e.do("GET", "/v1/tenants/acme/collections/all/records/r2", "").json(t, &rec)
	if rec.Version != 3 || string(rec.Fields["flag"]) != "false" || string(rec.Fields["kind"]) != `"b"` {
		t.Errorf("r2 after replace and patch: %+v", rec)
	}
}

// recordsState is what a refused record request must leave unchanged: the
// store's revision and acme's audit chain head.
type recordsStateT struct {
	revision uint64
	seq      uint64
	head     [32]byte
}

func recordsState(t *testing.T, e *env) recordsStateT {
	t.Helper()
	var st recordsStateT
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.store.View(ctx, raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		st.revision = tx.Revision()
		st.seq, st.head = tx.ChainHead([]byte(tenancy.ChainOf("acme")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRecordsBodyTooLarge: a record body over the API's body limit is 413
// payload-too-large problem+json, on every record route that takes a body,
// and writes nothing. On a real listener: the body is refused unread.
func TestRecordsBodyTooLarge(t *testing.T) {
	const limit = 4096
	e := newEnv(t, api.Options{BodyLimit: limit})
	e.mustCreate("acme", "Acme")
	if r := e.do("PUT", "/v1/tenants/acme/collections/all", allTypes); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/tenants/acme/collections/all/records", `{"id":"r1","subject":"s1","fields":{"req":"x@y.z"}}`); r.status != http.StatusCreated {
		t.Fatalf("record: %d %s", r.status, r.body)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.app.Listener(ln) }()
	t.Cleanup(func() { _ = e.app.ShutdownWithTimeout(5 * time.Second) })
	before := recordsState(t, e)
	client := &http.Client{Timeout: 10 * time.Second}
	owner := e.ownerKey("acme")
	send := func(method, path, body string) response {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+ln.Addr().String()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+owner)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return response{status: res.StatusCode, header: res.Header, body: b}
	}
	big := `{"subject":"s1","fields":{"req":"x@y.z","s":"` + strings.Repeat("x", 2*limit) + `"}}`
	for _, rt := range []struct{ method, path string }{
		{"POST", "/v1/tenants/acme/collections/all/records"},
		{"PUT", "/v1/tenants/acme/collections/all/records/r1"},
		{"PATCH", "/v1/tenants/acme/collections/all/records/r1"},
	} {
		p := checkProblem(t, send(rt.method, rt.path, big), http.StatusRequestEntityTooLarge, "payload-too-large", rt.path)
		if strings.Contains(p.Detail, "xxxx") {
			t.Errorf("%s %s: the problem echoes the body", rt.method, rt.path)
		}
	}
	if after := recordsState(t, e); after != before {
		t.Errorf("oversized requests changed state: %+v -> %+v", before, after)
	}
	// Just under the limit is read (and validated).
	if r := send("PATCH", "/v1/tenants/acme/collections/all/records/r1", `{"fields":{"s":"`+strings.Repeat("y", limit-100)+`"}}`); r.status != http.StatusOK {
		t.Errorf("body under the limit: %d %s", r.status, r.body)
	}
}
