package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/custos/custos/appliance/api"
)

// specParams are an operation's parameters in the description (the path
// item's and its own), by in and name.
func specParams(doc *openapi3.T, path string, op *openapi3.Operation) map[string]*openapi3.Parameter {
	out := map[string]*openapi3.Parameter{}
	for _, refs := range []openapi3.Parameters{doc.Paths.Value(path).Parameters, op.Parameters} {
		for _, ref := range refs {
			out[ref.Value.In+" "+ref.Value.Name] = ref.Value
		}
	}
	return out
}

// TestDeclaredParamsMatchSpec: each route's declared parameters are the
// ones openapi.json gives its operation — every path and query parameter,
// each with the same requiredness, type, format and bounds, and a pattern
// for every id — and every header parameter a route validates is
// described.
func TestDeclaredParamsMatchSpec(t *testing.T) {
	doc := specDoc(t)
	declared := api.DeclaredParams()
	checked := 0
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			key := method + " " + path
			if method == http.MethodHead {
				key = http.MethodGet + " " + path // fiber serves HEAD with the GET route
			}
			decl, ok := declared[key]
			if !ok {
				t.Errorf("%s %s: no route declares it", method, path)
				continue
			}
			spec := specParams(doc, path, op)
			seen := map[string]bool{}
			for _, d := range decl {
				name := d.In + " " + d.Name
				seen[name] = true
				checked++
				sp, ok := spec[name]
				if !ok {
					t.Errorf("%s %s: the route declares %s parameter %s, openapi.json does not", method, path, d.In, d.Name)
					continue
				}
				s := sp.Schema.Value
				switch {
				case sp.Required != d.Required:
					t.Errorf("%s %s: %s: required %v in openapi.json, %v declared", method, path, name, sp.Required, d.Required)
				case !s.Type.Is(d.Schema):
					t.Errorf("%s %s: %s: type %v in openapi.json, %s declared", method, path, name, s.Type, d.Schema)
				case s.Format != d.Format:
					t.Errorf("%s %s: %s: format %q in openapi.json, %q declared", method, path, name, s.Format, d.Format)
				case d.Schema == "integer" && (bound(s.Min) != d.Min || bound(s.Max) != d.Max):
					t.Errorf("%s %s: %s: bounds %v..%v in openapi.json, %d..%d declared", method, path, name, s.Min, s.Max, d.Min, d.Max)
				case d.Pattern && s.Pattern == "":
					t.Errorf("%s %s: %s is an id, but openapi.json gives no pattern", method, path, name)
				}
			}
			for name := range spec {
				if !seen[name] && !strings.HasPrefix(name, "header ") {
					t.Errorf("%s %s: openapi.json describes %s, which the route does not declare", method, path, name)
				}
			}
		}
	}
	if checked < 80 {
		t.Fatalf("only %d parameters checked", checked)
	}
}

// TestDeclaredBodiesMatchSpec: each route's declared body is the one
// openapi.json gives its operation: none (no request body, or the Empty
// one), JSON with the same requiredness and the same top-level members as
// the declared type, or a streamed body of other media types.
func TestDeclaredBodiesMatchSpec(t *testing.T) {
	doc := specDoc(t)
	declared := api.DeclaredBodies()
	compared := 0
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			if method == http.MethodHead {
				continue
			}
			d, ok := declared[method+" "+path]
			if !ok {
				continue // TestDeclaredParamsMatchSpec reports it
			}
			name := method + " " + path
			rb := op.RequestBody
			switch {
			case rb == nil || strings.HasSuffix(rb.Ref, "/Empty"):
				if d.Kind != "none" {
					t.Errorf("%s: openapi.json gives no body, the route declares %s", name, d.Kind)
				}
			case rb.Value.Content.Get("application/json") == nil:
				if d.Kind != "stream" {
					t.Errorf("%s: openapi.json gives a body of %v, the route declares %s", name, rb.Value.Content, d.Kind)
				}
			default:
				if d.Kind != "json" || d.Required != rb.Value.Required {
					t.Errorf("%s: openapi.json gives a JSON body (required %v), the route declares %s (required %v)", name, rb.Value.Required, d.Kind, d.Required)
					continue
				}
				var members []string
				for m := range rb.Value.Content.Get("application/json").Schema.Value.Properties {
					members = append(members, m)
				}
				sort.Strings(members)
				fields := append([]string(nil), d.Fields...)
				sort.Strings(fields)
				if !slices.Equal(members, fields) {
					t.Errorf("%s: openapi.json's body has members %v, the declared type %v", name, members, fields)
				}
				compared++
			}
		}
	}
	if compared < 9 {
		t.Fatalf("only %d JSON bodies compared", compared)
	}
}

func bound(f *float64) uint64 {
	if f == nil {
		return 0
	}
	return uint64(*f)
}

// validValue is a value openapi.json allows for a query parameter.
func validValue(p *openapi3.Parameter) string {
	s := p.Schema.Value
	switch {
	case s.Type.Is("boolean"):
		return "true"
	case s.Type.Is("integer"):
		return strconv.FormatUint(bound(s.Min), 10)
	case s.Format == "date-time":
		return "2026-01-02T15:04:05Z"
	}
	if len(s.Enum) > 0 {
		return s.Enum[0].(string)
	}
	switch p.Name {
	case "collection":
		return "guests"
	case "value":
		return `"jane@example.com"`
	case "attribute":
		return "plan:gold"
	}
	return "acme" // a tenant, record, blob or subject id, or a filter text
}

// companion is the parameter that must go with another.
var companion = map[string]string{"field": "value", "value": "field", "collection": "record", "record": "collection", "before": "newest"}

// badValues are the values every route taking a parameter of p's type
// must refuse with the same problem.
func badValues(p *openapi3.Parameter) []string {
	s := p.Schema.Value
	bad := []string{""} // empty: never "as if absent"
	switch {
	case s.Type.Is("boolean"):
		bad = append(bad, "0", "1", "t", "f", "TRUE", "True", "FALSE", "yes", "on")
	case s.Type.Is("integer"):
		bad = append(bad, "x", "-1", "1.5", "1e3", " 1", "0x10", "99999999999999999999")
		if min := bound(s.Min); min > 0 {
			bad = append(bad, strconv.FormatUint(min-1, 10))
		}
		if max := bound(s.Max); max > 0 {
			bad = append(bad, strconv.FormatUint(max+1, 10))
		}
	case s.Format == "date-time":
		bad = append(bad, "yesterday", "2026-01-02", "2026-13-01T00:00:00Z")
	case s.Pattern != "":
		bad = append(bad, "bad id!", "a/b", strings.Repeat("a", 65), "Ünïcode")
	case s.MaxLength != nil:
		bad = append(bad, strings.Repeat("a", int(*s.MaxLength)+1))
	}
	return bad
}

// TestQueryParamsOneRule (issue 10, defect 3): one validator for every
// route. Driven by openapi.json, every operation gets an unknown
// parameter, and every query parameter of every operation gets the empty
// value, a repeat, and the wrong values of its type (0, 1, t, TRUE for
// booleans; malformed ids; out-of-range integers; ...): each is 400
// validation naming the parameter, on every route alike. A bad path id is
// 404 on every route (the documented path-id rule). A valid value is not
// refused.
func TestQueryParamsOneRule(t *testing.T) {
	doc := specDoc(t)
	e := newEnv(t, api.Options{})
	// acme exists, so that its Owner key (which e.do sends on its data
	// routes) is of the path's tenant: the parameters are then the only
	// fault.
	e.mustCreate("acme", "Acme")
	ids := strings.NewReplacer("{id}", "acme", "{kid}", "aaaaaaaaaaaaaaaa", "{name}", "guests", "{rid}", "r1", "{sid}", "s1", "{bid}", "b1", "{gid}", "aaaaaaaaaaaaaaaa", "{uid}", "usr_aaaaaaaaaaaaaaaa", "{session}", "aaaaaaaaaaaaaaaaaaaaaa", "{pid}", "call-recording", "{kind}", "recording", "{role}", "foh", "{eid}", "xaaaaaaaaaaaaaaaa")
	// The routes of a user's own session take a user's access token.
	e.mustCreate("people", "People")
	e.user(t, operatorPrincipal, "people", "olivia", "owner")
	own := e.session(t, "people", "olivia").AccessToken
	refused := func(method, target string) (api.Problem, int) {
		t.Helper()
		var opts []reqOpt
		if strings.HasPrefix(target, "/v1/auth/") && !strings.HasPrefix(target, "/v1/auth/login") && !strings.HasPrefix(target, "/v1/auth/refresh") {
			opts = append(opts, bearer(own))
		}
		r := e.do(method, target, "", opts...)
		if r.header.Get("Content-Type") != api.ProblemContentType {
			return api.Problem{}, r.status
		}
		var p api.Problem
		r.json(t, &p)
		return p, r.status
	}
	expect := func(method, target, param string, status int, slug string) {
		t.Helper()
		p, got := refused(method, target)
		field := ""
		if len(p.Errors) > 0 {
			field = p.Errors[0].Field
		}
		wantField := param
		if status != http.StatusBadRequest {
			wantField = ""
		}
		if got != status || p.Type != api.ProblemTypeBase+slug || field != wantField {
			t.Errorf("%s %s: %d %s field %q, want %d %s field %q (%s)", method, target, got, p.Type, field, status, slug, wantField, p.Detail)
		}
	}
	cases := 0
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			if method == http.MethodHead {
				continue // no body to read a problem from; GET is the same route
			}
			base := ids.Replace(path)
			if strings.HasPrefix(path, "/v1/operator/raft/peers/") {
				base = "/v1/operator/raft/peers/n9" // never a member
			}
			if strings.HasPrefix(path, "/v1/sys/operators/{uid}") {
				base = strings.Replace(path, "{uid}", "op_aaaaaaaaaaaaaaaa", 1) // an operator user's id
			}
			params := specParams(doc, path, op)
			names := make([]string, 0, len(params))
			for k := range params {
				names = append(names, k)
			}
			sort.Strings(names)
			// The required query parameters, valid: the case under test
			// is then the only fault.
			requiredQuery := url.Values{}
			for _, k := range names {
				if p := params[k]; p.In == "query" && p.Required {
					requiredQuery.Set(p.Name, validValue(p))
				}
			}
			target := func(q url.Values) string {
				if len(q) == 0 {
					return base
				}
				return base + "?" + q.Encode()
			}
			// with is the required parameters and name=value, with the
			// parameter that must go with name, valid.
			with := func(name, value string) url.Values {
				q := url.Values{}
				for k, v := range requiredQuery {
					q[k] = v
				}
				if other, ok := companion[name]; ok {
					if p, ok := params["query "+other]; ok {
						q.Set(other, validValue(p))
					}
				}
				q.Set(name, value)
				return q
			}
			unknown := with("nope", "1")
			expect(method, target(unknown), "nope", http.StatusBadRequest, "validation")
			cases++
			for _, k := range names {
				p := params[k]
				switch p.In {
				case "path":
					bad := strings.Replace(path, "{"+p.Name+"}", "bad!id", 1)
					bad = ids.Replace(bad)
					if strings.HasPrefix(path, "/v1/operator/raft/peers/") {
						bad = "/v1/operator/raft/peers/bad!id"
					}
					expect(method, bad+"?"+url.Values(requiredQuery).Encode(), p.Name, http.StatusNotFound, "not-found")
					cases++
					continue
				case "query":
				default:
					continue
				}
				for _, v := range badValues(p) {
					expect(method, target(with(p.Name, v)), p.Name, http.StatusBadRequest, "validation")
					cases++
				}
				q := with(p.Name, validValue(p))
				expect(method, target(q)+"&"+url.QueryEscape(p.Name)+"="+url.QueryEscape(validValue(p)), p.Name, http.StatusBadRequest, "validation")
				cases++
				if method == http.MethodGet {
					if pr, status := refused(method, target(q)); status == http.StatusBadRequest && len(pr.Errors) > 0 && pr.Errors[0].Field == p.Name {
						t.Errorf("%s %s: a valid %s is refused: %s", method, target(q), p.Name, pr.Detail)
					}
					if p.Schema.Value.Type.Is("boolean") {
						q.Set(p.Name, "false")
						if pr, status := refused(method, target(q)); status == http.StatusBadRequest {
							t.Errorf("%s %s: false is refused: %s", method, target(q), pr.Detail)
						}
					}
				}
			}
		}
	}
	t.Logf("%d cases", cases)
	if cases < 300 {
		t.Fatalf("only %d cases: is the description's parameter list gone?", cases)
	}
}
