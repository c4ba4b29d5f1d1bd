package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// scanResult is what checkObject said about a body: "" when accepted, else
// the slug and the field it names (if any).
func scanResult(body string, typ reflect.Type) string {
	err := checkObject([]byte(body), typ)
	if err == nil {
		return ""
	}
	var re *requestError
	if !errors.As(err, &re) {
		return "not a requestError: " + err.Error()
	}
	slug, _, _ := re.kind.spec()
	if len(re.fields) == 0 {
		return slug
	}
	return slug + " " + re.fields[0].Field + ": " + re.fields[0].Reason
}

// scanAny is a body of three keys that take any JSON.
type scanAny struct {
	A      any `json:"a"`
	B      any `json:"b"`
	Fields any `json:"fields"`
}

func TestCheckObject(t *testing.T) {
	allowed := reflect.TypeFor[scanAny]()
	for _, c := range []struct{ body, want string }{
		{`{}`, ""},
		{` {"a":1,"b":[true,false,null,-0.5e+3,"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]} `, ""},
		{`{"fields":{"x":{"y":1},"y":{"y":2},"X":3}}`, ""}, // the same key in different objects, or another case
		{`{"fields":[{"k":1},{"k":2}]}`, ""},
		{`{"a":1,"a":2}`, "bad-request a: duplicate field"},
		{`{"a":1,"\u0061":2}`, "bad-request a: duplicate field"},
		{`{"fields":{"k":1,"k":2}}`, "bad-request fields.k: duplicate field"},
		{`{"fields":{"n":{"x":1,"y":2,"x":3}}}`, "bad-request fields.n.x: duplicate field"},
		{`{"fields":[[],[{},{"x":1,"x":1}]]}`, "bad-request fields[1][1].x: duplicate field"},
		{`{"fields":{"":1,"":2}}`, "bad-request fields.: duplicate field"},
		{`{"c":1}`, "unknown-field c: unknown field"},
		{`{"c":1,"c":2}`, "unknown-field c: unknown field"}, // the first problem in body order
		{`{"a":null}`, "bad-request a: must not be null"},
		{`{"fields":{"x":null}}`, ""}, // null is refused at the top level only
		{`{"fields":{"x":1,"x":2},"c":1}`, "bad-request fields.x: duplicate field"},
		{`{"c":1,"fields":"\udc00"}`, "bad-request fields: has an unpaired surrogate escape"}, // bad strings outrank key problems
		{`{"fields":"\ud800\udbff"}`, "bad-request fields: has an unpaired surrogate escape"},
		{`{"fields":"\ud800\n"}`, "bad-request fields: has an unpaired surrogate escape"},
		{`{"fields":"\q"}`, "bad-request fields: has an invalid escape"},
		{`{"fields":"\u00"}`, `bad-request fields: has an invalid \u escape`},
		{"{\"fields\":\"a\x00\"}", "bad-request fields: has a control character that is not escaped"},
		{"{\"fields\":\"\xe2\x82\"}", "bad-request fields: is not valid UTF-8"},
		{"{\"fields\":{\"\xff\":1}}", "bad-request fields.\uFFFD: name is not valid UTF-8"},
		{`{"\udc00":1}`, "bad-request \uFFFD: name has an unpaired surrogate escape"},
		{`["\udc00"]`, "bad-request [0]: has an unpaired surrogate escape"},
		{`"\udc00"`, "bad-request"},
		{`[{"a":1,"a":1}]`, "bad-request"}, // not an object outranks key problems
		{`[]`, "bad-request"},
		{`5`, "bad-request"},
		// Syntax errors outrank everything and name no field.
		{``, "bad-request"},
		{` `, "bad-request"},
		{`{`, "bad-request"},
		{`{"a":1,"a":2`, "bad-request"},
		{"{\"fields\":\"\xff\"", "bad-request"},
		{`{"fields":"\udc00`, "bad-request"},
		{`{"a" 1}`, "bad-request"},
		{`{"a":1,}`, "bad-request"},
		{`{"a":[1,]}`, "bad-request"},
		{`{"a":[1}`, "bad-request"},
		{`{"a":{]}`, "bad-request"},
		{`{"a":[}`, "bad-request"},
		{`{"a":01}`, "bad-request"},
		{`{"a":1.}`, "bad-request"},
		{`{"a":.5}`, "bad-request"},
		{`{"a":-}`, "bad-request"},
		{`{"a":1e}`, "bad-request"},
		{`{"a":+1}`, "bad-request"},
		{`{"a":tru}`, "bad-request"},
		{`{"a":truex}`, "bad-request"},
		{`{"a":NaN}`, "bad-request"},
		{`{a:1}`, "bad-request"},
		{`{'a':1}`, "bad-request"},
		{`{} {}`, "bad-request"},
		{`{}x`, "bad-request"},
		{"\xef\xbb\xbf{}", "bad-request"},
		{`{"a":"x\`, "bad-request"},
	} {
		if got := scanResult(c.body, allowed); got != c.want {
			t.Errorf("%q: %q, want %q", c.body, got, c.want)
		}
	}
}

// TestCheckObjectTyped: the scanner follows the destination type into the
// body: struct keys must be exact json names at any depth, and no value is
// null unless it takes any JSON.
func TestCheckObjectTyped(t *testing.T) {
	type inner struct {
		Name string   `json:"name"`
		Vals []string `json:"vals,omitempty"`
		Skip string   `json:"-"`
		Go   int
	}
	type embedded struct {
		Extra string `json:"extra"`
	}
	type req struct {
		embedded
		Sub   *inner                     `json:"sub"`
		List  []inner                    `json:"list"`
		Attrs *map[string]string         `json:"attrs"`
		Raw   map[string]json.RawMessage `json:"raw"`
		Any   []any                      `json:"any"`
		When  *time.Time                 `json:"when"`
		//lint:ignore U1000 an unexported field: the scanner must refuse its name
		hide string
	}
	typ := reflect.TypeFor[req]()
	for _, c := range []struct{ body, want string }{
		{`{"extra":"x","sub":{"name":"a","vals":["v"],"Go":1},"list":[{"name":"b"}],"attrs":{"K":"v"},"raw":{"r":null,"s":{"T":null}},"any":[null,{"x":null}],"when":"2024-01-02T03:04:05Z"}`, ""},
		{`{"sub":{"Name":"a"}}`, "unknown-field sub.Name: unknown field"},
		{`{"sub":{"name":"a","NAME":"b"}}`, "unknown-field sub.NAME: unknown field"},
		{`{"list":[{"name":"a"},{"nme":"b"}]}`, "unknown-field list[1].nme: unknown field"},
		{`{"sub":{"Skip":"x"}}`, "unknown-field sub.Skip: unknown field"},
		{`{"sub":{"go":1}}`, "unknown-field sub.go: unknown field"},
		{`{"hide":"x"}`, "unknown-field hide: unknown field"},
		{`{"Extra":"x"}`, "unknown-field Extra: unknown field"},
		{`{"embedded":{}}`, "unknown-field embedded: unknown field"},
		{`{"sub":{"name":null}}`, "bad-request sub.name: must not be null"},
		{`{"sub":{"vals":null}}`, "bad-request sub.vals: must not be null"},
		{`{"sub":{"vals":["a",null]}}`, "bad-request sub.vals[1]: must not be null"},
		{`{"list":[null]}`, "bad-request list[0]: must not be null"},
		{`{"attrs":{"k":null}}`, "bad-request attrs.k: must not be null"},
		{`{"attrs":null}`, "bad-request attrs: must not be null"},
		{`{"raw":null}`, "bad-request raw: must not be null"},
		{`{"when":null}`, "bad-request when: must not be null"},
		// A value of another shape is not followed: encoding/json reports
		// its type.
		{`{"sub":[{"Name":null}]}`, ""},
		{`{"attrs":[null]}`, ""},
		{`{"list":{"x":null}}`, ""},
		{`{"when":{"x":null}}`, ""},
		// Key problems in body order, after bad strings.
		{`{"sub":{"Name":1,"name":2,"name":3}}`, "unknown-field sub.Name: unknown field"},
		{`{"sub":{"name":1,"name":2,"Name":3}}`, "bad-request sub.name: duplicate field"},
		{`{"sub":{"Name":1},"list":["\udc00"]}`, "bad-request list[0]: has an unpaired surrogate escape"},
	} {
		if got := scanResult(c.body, typ); got != c.want {
			t.Errorf("%s: %q, want %q", c.body, got, c.want)
		}
	}
}

// TestCheckObjectDepth: nesting is walked without recursion, up to
// encoding/json's limit, and beyond it refused as a whole, for bodies as
// large as the body limit.
func TestCheckObjectDepth(t *testing.T) {
	allowed := reflect.TypeFor[struct {
		A json.RawMessage `json:"a"`
	}]()
	nest := func(n int, open, close string) string {
		return `{"a":` + strings.Repeat(open, n) + "1" + strings.Repeat(close, n) + `}`
	}
	for _, c := range []struct {
		body string
		want string
	}{
		{nest(maxBodyDepth-1, "[", "]"), ""},
		{nest(maxBodyDepth, "[", "]"), "bad-request"},
		{nest(maxBodyDepth-1, `{"a":`, "}"), ""},
		{nest(maxBodyDepth, `{"a":`, "}"), "bad-request"},
		{`{"a":` + strings.Repeat("[", 1<<20), "bad-request"},
		{strings.Repeat(`{"a":`, 1<<18), "bad-request"},
	} {
		if got := scanResult(c.body, allowed); got != c.want {
			t.Errorf("%d bytes: %q, want %q", len(c.body), got, c.want)
		}
		if c.want == "" && !json.Valid([]byte(c.body)) {
			t.Errorf("%d bytes: accepted, but encoding/json refuses it", len(c.body))
		}
	}
	// A duplicate key at depth 9999 is found and named.
	body := `{"a":` + strings.Repeat("[", maxBodyDepth-3) + `{"k":1,"k":2}` + strings.Repeat("]", maxBodyDepth-3) + `}`
	got := scanResult(body, allowed)
	if !strings.HasPrefix(got, "bad-request a[0][0]") || !strings.HasSuffix(got, "…: duplicate field") {
		t.Errorf("deep duplicate: %q", got)
	}
}

// TestCheckObjectWide: a body of many keys at the body limit is scanned
// (and its duplicates found) in one pass.
func TestCheckObjectWide(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"a":{`)
	n := 0
	for b.Len() < 1<<20-100 {
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"%x":%d`, n, n)
		n++
	}
	wide := b.String()
	typ := reflect.TypeFor[struct {
		A map[string]int `json:"a"`
	}]()
	if got := scanResult(wide+`}}`, typ); got != "" {
		t.Fatalf("%d keys: %q", n, got)
	}
	if got, want := scanResult(wide+`,"7":0}}`, typ), "bad-request a.7: duplicate field"; got != want {
		t.Fatalf("%d keys: %q, want %q", n, got, want)
	}
}

func TestPathAt(t *testing.T) {
	body := ` {"subject":"s","attributes":{"a":"x","p":5,"o":{"z":[1,{"y":true}]}},"f":[ "q" , 2.5e3 ]} `
	for _, c := range []struct {
		at   string // the first occurrence of this text holds the offset
		skip int    // bytes into it
		want string
	}{
		{`"s"`, 0, "subject"},
		{`"s"`, 2, "subject"},
		{`5`, 0, "attributes.p"},
		{`{"z"`, 0, "attributes.o"},
		{`[1,`, 0, "attributes.o.z"},
		{`1,{`, 0, "attributes.o.z[0]"},
		{`true`, 3, "attributes.o.z[1].y"},
		{`"q"`, 1, "f[0]"},
		{`2.5e3`, 4, "f[1]"},
		{`{"a"`, 0, "attributes"},
	} {
		off := strings.Index(body, c.at) + c.skip
		if got, ok := pathAt([]byte(body), off); !ok || got != c.want {
			t.Errorf("%q+%d: %q %v, want %q", c.at, c.skip, got, ok, c.want)
		}
	}
	for _, off := range []int{-1, 0, 1, strings.Index(body, `:"s"`), strings.Index(body, `"a"`) + 1, strings.Index(body, ` ,`), len(body) - 1, len(body)} {
		if got, ok := pathAt([]byte(body), off); ok {
			t.Errorf("offset %d (%q): %q, want none", off, body[max(off, 0):min(off+3, len(body))], got)
		}
	}
}

// TestTypeErrorPath: the path given for a wrong type is the value's own,
// and never contradicts encoding/json's field.
func TestTypeErrorPath(t *testing.T) {
	type elem struct {
		Name string   `json:"name"`
		Vals []string `json:"vals"`
	}
	type req struct {
		Subject    string            `json:"subject"`
		Attributes map[string]string `json:"attributes"`
		Elems      []elem            `json:"elems"`
	}
	for _, c := range []struct{ body, want string }{
		{`{"subject":7}`, "subject"},
		{`{"attributes":{"a":"x","b":5}}`, "attributes.b"},
		{`{"attributes":{"b":{"c":"d"}}}`, "attributes.b"},
		{`{"attributes":{"b":["x"]}}`, "attributes.b"},
		{`{"attributes":{"a.b":false}}`, "attributes.a.b"},
		{`{"attributes":[]}`, "attributes"},
		{`{"elems":[{"name":"a"},{"name":5}]}`, "elems[1].name"},
		{`{"elems":[{"vals":["a",{}]}]}`, "elems[0].vals[1]"},
		{`{"elems":{}}`, "elems"},
	} {
		var r req
		err := json.NewDecoder(strings.NewReader(c.body)).Decode(&r)
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			t.Fatalf("%s: %v", c.body, err)
		}
		if got := typeErrorPath([]byte(c.body), te); got != c.want {
			t.Errorf("%s: %q (encoding/json: %q at %d), want %q", c.body, got, te.Field, te.Offset, c.want)
		}
	}
	// An offset that does not lead into a value under te.Field: te.Field.
	te := &json.UnmarshalTypeError{Field: "attributes", Offset: 3}
	if got := typeErrorPath([]byte(`{"subject":"x","attributes":{"a":1}}`), te); got != "attributes" {
		t.Errorf("stray offset: %q", got)
	}
}

// refDuplicate reports whether a valid JSON text has an object with a key
// twice, walking it with encoding/json's tokens.
func refDuplicate(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		keys   map[string]bool
		expKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false
		}
		if err != nil {
			panic(err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expKey {
			if d, ok := tok.(json.Delim); !ok || d != '}' {
				k := tok.(string)
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.expKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.object {
				top.expKey = true
			}
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, expKey: true})
		case json.Delim('['):
			if top != nil && top.object {
				top.expKey = true
			}
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && top.object {
				top.expKey = true
			}
		}
	}
}

// FuzzCheckObject compares the scanner with encoding/json: what it accepts
// encoding/json reads, and, for bodies whose strings have nothing to
// refuse (valid UTF-8, no escapes), it accepts exactly the objects that
// encoding/json reads and that have no duplicate key. pathAt never fails
// on an accepted body.
func FuzzCheckObject(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a":1,"a":2}`, `{"a":{"b":[1,{"c":2,"c":3}]}}`, `{"a":"\udc00"}`, `{"a":"\ud83d\ude00"}`,
		`{"a":-0.0e-0,"b":[true,false,null]}`, `[]`, `{"a":1} x`, `{"a":01}`, "{\"a\":\"\xff\"}",
		`{"a":[[[[]]]]}`, `{"a":"\u0041","\u0061":1}`, ` { "a" : [ 1 , 2 ] } `,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		b := []byte(body)
		err := checkObject(b, nil)
		typed := checkObject(b, reflect.TypeFor[scanAny]())
		if err != nil && typed == nil {
			t.Fatalf("%q: refused untyped (%v), accepted typed", body, err)
		}
		var re *requestError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("%q: %v", body, err)
		}
		valid := json.Valid(b)
		if err == nil {
			if !valid {
				t.Fatalf("%q: accepted, but encoding/json refuses it", body)
			}
			var m map[string]json.RawMessage
			if json.Unmarshal(b, &m) != nil || m == nil {
				t.Fatalf("%q: accepted, but it is not an object", body)
			}
			for off := range b {
				pathAt(b, off)
			}
		}
		if valid && utf8.Valid(b) && !strings.Contains(body, `\`) {
			object := bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
			if want := object && !refDuplicate(b); (err == nil) != want {
				t.Fatalf("%q: scanner says %v, encoding/json (object, no duplicate) %v", body, err, want)
			}
		}
	})
}
