package api_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/custos/custos/appliance/api"
)

// The limits test: every string the description constrains (minLength,
// maxLength, pattern) in a request — path, query and header parameters and
// JSON bodies — is sent at its documented limits, and the server must agree
// with the description about each value. The values come from the
// description itself: the longest and the shortest strings its pattern and
// lengths allow, one repetition past each bounded repeat, one short of each
// required one, and each of those with its first or last character replaced
// by one the description refuses. kin-openapi, which the other tests check
// exchanges with, says which of them the description allows; the server
// must accept exactly those (a 2xx, or the answer the scenario explains,
// such as 412 for a well-formed If-Match of another version) and refuse the
// others as invalid, naming the field (400 or 422; 404 for path ids, as the
// description says).
//
// A constrained string without a scenario fails the test, so a constraint
// added to the description is checked against the server as soon as it is
// added; a scenario whose constraint left the description fails too.

// limitSite is one constrained string of the description.
type limitSite struct {
	key    string           // "parameter TenantId", "CreateTenantRequest.display_name", ...
	in     string           // path, query, header or body
	field  string           // what a problem calls it: the parameter's or the property's name
	schema *openapi3.Schema // what a value is checked against
	str    strLimits
	ops    []string // the operations that take it
}

// strLimits are a string schema's constraints, allOf included.
type strLimits struct {
	min     int
	max     int // -1: none
	pattern string
}

// constrained reports the string constraints of s (and of its allOf), if
// it is a string schema that has any.
func constrained(s *openapi3.Schema) (strLimits, bool) {
	l := strLimits{max: -1}
	var visit func(s *openapi3.Schema) bool
	visit = func(s *openapi3.Schema) bool {
		str := s.Type.Is(openapi3.TypeString)
		l.min = max(l.min, int(s.MinLength))
		if s.MaxLength != nil && (l.max < 0 || int(*s.MaxLength) < l.max) {
			l.max = int(*s.MaxLength)
		}
		if s.Pattern != "" {
			l.pattern = s.Pattern
		}
		for _, sub := range s.AllOf {
			str = visit(sub.Value) || str
		}
		return str
	}
	str := visit(s)
	return l, str && (l.min > 0 || l.max >= 0 || l.pattern != "")
}

// limitSites walks the request side of every operation.
func limitSites(t *testing.T, doc *openapi3.T) map[string]*limitSite {
	t.Helper()
	sites := map[string]*limitSite{}
	add := func(op, key, in, field string, s *openapi3.Schema) {
		l, ok := constrained(s)
		if !ok {
			return
		}
		site := sites[key]
		if site == nil {
			site = &limitSite{key: key, in: in, field: field, schema: s, str: l}
			sites[key] = site
		}
		site.ops = append(site.ops, op)
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			name := method + " " + path
			for _, pr := range append(slices.Clone(item.Parameters), op.Parameters...) {
				p := pr.Value
				if p.Schema == nil {
					continue
				}
				key := "parameter " + strings.TrimPrefix(pr.Ref, "#/components/parameters/")
				if pr.Ref == "" {
					key = fmt.Sprintf("parameter %s %s:%s", name, p.In, p.Name)
				}
				add(name, key, p.In, p.Name, p.Schema.Value)
			}
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			for mt, c := range op.RequestBody.Value.Content {
				if mt != "application/json" || c.Schema == nil {
					continue
				}
				walkBody(t, c.Schema, "", nil, func(key string, s *openapi3.Schema) {
					add(name, key, "body", key[strings.LastIndex(key, ".")+1:], s)
				})
			}
		}
	}
	return sites
}

// walkBody finds the constrained strings of a body schema. Keys are
// relative to the nearest object component: Field.name wherever Field is
// used, [] for array items, {} for map values and {names} for the map
// names of x-custos-property-names (OpenAPI 3.0 has no propertyNames).
func walkBody(t *testing.T, ref *openapi3.SchemaRef, base string, seen []*openapi3.Schema, found func(string, *openapi3.Schema)) {
	s := ref.Value
	if s == nil || slices.Contains(seen, s) {
		return
	}
	seen = append(seen, s)
	if name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/"); ok && s.Type.Is(openapi3.TypeObject) {
		base = name
	}
	if _, ok := constrained(s); ok {
		found(base, s)
		return
	}
	for _, name := range slices.Sorted(maps.Keys(s.Properties)) {
		walkBody(t, s.Properties[name], base+"."+name, seen, found)
	}
	if s.Items != nil {
		walkBody(t, s.Items, base+"[]", seen, found)
	}
	if ap := s.AdditionalProperties.Schema; ap != nil {
		walkBody(t, ap, base+"{}", seen, found)
	}
	if x, ok := s.Extensions["x-custos-property-names"]; ok {
		raw, err := json.Marshal(x)
		var names openapi3.Schema
		if err == nil {
			err = json.Unmarshal(raw, &names)
		}
		if err != nil {
			t.Fatalf("%s: x-custos-property-names is not a schema: %v", base, err)
		}
		found(base+"{names}", &names)
	}
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, sub := range list {
			walkBody(t, sub, base, seen, found)
		}
	}
}

// fillers are tried in order for a character class; badRunes in order for
// a character the description refuses.
const fillers = "z9ZaA0_-.:"

var badRunes = []rune{'!', ':', 'A', ' ', '\x01', '\u202e'}

// codepoint is the ECMA-262 \uXXXX escape, which Go's regexp spells \x{XXXX}
// (kin-openapi rewrites patterns the same way).
var codepoint = regexp.MustCompile(`\\u([0-9A-F]{4})`)

// generator builds strings a pattern matches, choosing how often each
// repeat repeats.
type generator struct {
	t       *testing.T
	re      *syntax.Regexp
	repeats []*syntax.Regexp // in pre-order
}

func newGenerator(t *testing.T, pattern string) *generator {
	re, err := syntax.Parse(codepoint.ReplaceAllString(pattern, `\x{$1}`), syntax.Perl)
	if err != nil {
		t.Fatalf("pattern %q: %v", pattern, err)
	}
	g := &generator{t: t, re: re}
	var walk func(*syntax.Regexp)
	walk = func(r *syntax.Regexp) {
		if _, _, ok := bounds(r); ok {
			g.repeats = append(g.repeats, r)
		}
		for _, sub := range r.Sub {
			walk(sub)
		}
	}
	walk(re)
	return g
}

// bounds are a repeat's minimum and maximum (-1: unbounded).
func bounds(r *syntax.Regexp) (lo, hi int, ok bool) {
	switch r.Op {
	case syntax.OpStar:
		return 0, -1, true
	case syntax.OpPlus:
		return 1, -1, true
	case syntax.OpQuest:
		return 0, 1, true
	case syntax.OpRepeat:
		return r.Min, r.Max, true
	}
	return 0, 0, false
}

// build generates with count[i] repetitions of repeat i.
func (g *generator) build(count []int) string {
	var b strings.Builder
	var emit func(*syntax.Regexp)
	emit = func(r *syntax.Regexp) {
		if _, _, ok := bounds(r); ok {
			for range count[slices.Index(g.repeats, r)] {
				emit(r.Sub[0])
			}
			return
		}
		switch r.Op {
		case syntax.OpLiteral:
			b.WriteString(string(r.Rune))
		case syntax.OpCharClass:
			b.WriteRune(fill(g.t, r.Rune))
		case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
			b.WriteByte('z')
		case syntax.OpCapture:
			emit(r.Sub[0])
		case syntax.OpConcat:
			for _, sub := range r.Sub {
				emit(sub)
			}
		case syntax.OpAlternate:
			emit(r.Sub[0])
		case syntax.OpEmptyMatch, syntax.OpBeginText, syntax.OpEndText, syntax.OpBeginLine, syntax.OpEndLine:
		default:
			g.t.Fatalf("pattern %s: the generator does not know %v", g.re, r.Op)
		}
	}
	emit(g.re)
	return b.String()
}

// fill picks a character of a class: a plain one when it can.
func fill(t *testing.T, ranges []rune) rune {
	in := func(r rune) bool {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= r && r <= ranges[i+1] {
				return true
			}
		}
		return false
	}
	for _, r := range fillers {
		if in(r) {
			return r
		}
	}
	for r := rune(0x21); r < 0x7f; r++ {
		if in(r) {
			return r
		}
	}
	t.Fatalf("no printable ASCII character in class %q", ranges)
	return 0
}

// counts is the plan "every repeat at its minimum (or maximum)", with the
// first unbounded repeat extended by extra.
func (g *generator) counts(longest bool, extra int) []int {
	c := make([]int, len(g.repeats))
	first := true
	for i, r := range g.repeats {
		lo, hi, _ := bounds(r)
		c[i] = lo
		if longest && hi >= 0 {
			c[i] = hi
		}
		if hi < 0 && first {
			c[i] += extra
			first = false
		}
	}
	return c
}

// sized builds the plan and stretches its first unbounded repeat (one
// character per repetition, as in every pattern of the description) until
// the string is n characters long; n < 0 leaves it as it is.
func (g *generator) sized(longest bool, n int) (string, []int) {
	c := g.counts(longest, 0)
	s := g.build(c)
	if n < 0 || utf8.RuneCountInString(s) == n {
		return s, c
	}
	c = g.counts(longest, n-utf8.RuneCountInString(s))
	if s = g.build(c); utf8.RuneCountInString(s) != n || slices.ContainsFunc(c, func(x int) bool { return x < 0 }) {
		g.t.Fatalf("pattern %s: cannot build a string of %d characters (got %q)", g.re, n, s)
	}
	return s, c
}

// limitValues are the strings near the limits of l: the longest and
// shortest allowed (as the pattern and the lengths say), one past each
// bound, and those with a first or last character replaced by one the
// description refuses. Which of them it allows is decided by ok.
func limitValues(t *testing.T, l strLimits, ok func(string) bool) []string {
	var out []string
	var longest, shortest string
	if l.pattern == "" {
		longN := l.max
		if longN < 0 {
			longN = max(l.min, 8)
		}
		longest, shortest = strings.Repeat("z", longN), strings.Repeat("z", l.min)
		out = append(out, longest, shortest, strings.Repeat("z", longN+1))
		if l.min > 0 {
			out = append(out, strings.Repeat("z", l.min-1))
		}
	} else {
		g := newGenerator(t, l.pattern)
		longN := l.max
		if longN < 0 && slices.ContainsFunc(g.repeats, func(r *syntax.Regexp) bool { _, hi, _ := bounds(r); return hi < 0 }) {
			longN = utf8.RuneCountInString(g.build(g.counts(true, 0))) + 7 // unbounded: a longer typical value
		}
		var lc, sc []int
		longest, lc = g.sized(true, longN)
		shortest, sc = g.sized(false, max(l.min, utf8.RuneCountInString(g.build(g.counts(false, 0)))))
		out = append(out, longest, shortest)
		if l.min > 0 {
			out = append(out, strings.Repeat("z", l.min-1))
		}
		for i, r := range g.repeats {
			lo, hi, _ := bounds(r)
			c := slices.Clone(lc)
			if hi < 0 {
				if l.max >= 0 {
					c[i]++ // past maxLength
				}
			} else {
				c[i] = hi + 1
			}
			out = append(out, g.build(c))
			if lo > 0 || (hi < 0 && sc[i] > lo) {
				c = slices.Clone(sc)
				c[i]--
				out = append(out, g.build(c))
			}
		}
	}
	for _, base := range []string{longest, shortest} {
		runes := []rune(base)
		if len(runes) == 0 {
			continue
		}
		for _, at := range []int{0, len(runes) - 1} {
			for _, bad := range badRunes {
				v := slices.Clone(runes)
				v[at] = bad
				if !ok(string(v)) {
					out = append(out, string(v))
					break
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// derivedValues are, for ids only the server makes (API key and blob ids),
// the made ones and the values one edit away from them that the
// description refuses. A well-formed id the server did not make names
// nothing and is answered 404 exactly as a malformed one is, so only made
// ids tell the server's acceptance apart.
func derivedValues(made []string, ok func(string) bool) []string {
	out := slices.Clone(made)
	for _, m := range made {
		runes := []rune(m)
		cands := []string{m + "z", string(runes[:len(runes)-1])}
		for _, at := range []int{0, len(runes) - 1} {
			for _, bad := range badRunes {
				v := slices.Clone(runes)
				v[at] = bad
				cands = append(cands, string(v))
			}
		}
		for _, c := range cands {
			if !ok(c) {
				out = append(out, c)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// outcome is an answer a scenario expects; zero fields match anything.
type outcome struct {
	status []int
	slug   []string
	field  []string // one of the problem's errors names one of these ({v}: the value)
	reason string   // ...with a reason containing this
}

func (o outcome) match(r response, v string) bool {
	if len(o.status) > 0 && !slices.Contains(o.status, r.status) {
		return false
	}
	if len(o.slug) == 0 && len(o.field) == 0 && o.reason == "" {
		return true
	}
	var p api.Problem
	if json.Unmarshal(r.body, &p) != nil {
		return false
	}
	if len(o.slug) > 0 && !slices.Contains(o.slug, strings.TrimPrefix(p.Type, api.ProblemTypeBase)) {
		return false
	}
	if len(o.field) == 0 {
		return o.reason == "" || strings.Contains(p.Detail, o.reason)
	}
	for _, f := range p.Errors {
		for _, want := range o.field {
			if f.Field == strings.ReplaceAll(want, "{v}", v) && strings.Contains(f.Reason, o.reason) {
				return true
			}
		}
	}
	return false
}

func (o outcome) String() string {
	return fmt.Sprintf("status %v slug %v field %v reason %q", o.status, o.slug, o.field, o.reason)
}

// limitScenario sends a value at one site and says what the server must
// answer.
type limitScenario struct {
	send func(v string) []response
	// ok are the answers a value the description allows may get; none
	// given: any 2xx.
	ok []outcome
	// bad is the answer to a value it refuses; none given: 404 not-found
	// for path parameters, otherwise 400 or 422 validation (or
	// bad-request) naming the field.
	bad *outcome
	// made, for ids only the server makes, returns such ids.
	made func() []string
}

// TestSpecLimits is the limits test; see the comment at the top.
func TestSpecLimits(t *testing.T) {
	doc := specDoc(t)
	sites := limitSites(t, doc)
	f := newLimitFixture(t)
	scenarios := f.scenarios()
	for _, key := range slices.Sorted(maps.Keys(scenarios)) {
		if sites[key] == nil {
			t.Errorf("a scenario covers %q, where openapi.json states no string constraint (any more): drop the scenario, or restore the constraint", key)
		}
	}
	checked := 0
	for _, key := range slices.Sorted(maps.Keys(sites)) {
		site := sites[key]
		sc, ok := scenarios[key]
		if !ok {
			t.Errorf("openapi.json constrains the string %s (%s, used by %s) but the limits test has no scenario for it: add one to limitFixture.scenarios", key, site.in, strings.Join(site.ops, ", "))
			continue
		}
		t.Run(strings.ReplaceAll(key, " ", "_"), func(t *testing.T) {
			allowed := func(v string) bool { return site.schema.VisitJSON(v) == nil }
			var values []string
			if sc.made != nil {
				values = derivedValues(sc.made(), allowed)
			} else {
				values = limitValues(t, site.str, allowed)
			}
			var good, refused int
			for _, v := range values {
				if v == "" && (site.in == "path" || site.in == "header") {
					// An empty path segment is another route; an empty
					// header is the header left out.
					continue
				}
				if allowed(v) {
					good++
					f.checkAllowed(t, site, sc, v)
				} else {
					refused++
					f.checkRefused(t, site, sc, v)
				}
				checked++
			}
			if good == 0 || refused == 0 {
				t.Errorf("%s: %d allowed and %d refused values (%q): the test says nothing about this constraint", key, good, refused, values)
			}
		})
	}
	if len(sites) < 30 {
		t.Errorf("only %d constrained strings found: is the walk broken?", len(sites))
	}
	t.Logf("%d constrained strings, %d values sent", len(sites), checked)
}

func (f *limitFixture) checkAllowed(t *testing.T, site *limitSite, sc limitScenario, v string) {
	t.Helper()
	for _, r := range sc.send(v) {
		good := len(sc.ok) == 0 && r.status >= 200 && r.status < 300
		for _, o := range sc.ok {
			good = good || o.match(r, v)
		}
		if !good {
			t.Errorf("%s = %q (%d characters) is allowed by openapi.json, but the server answered %d %s; want %v", site.key, clipValue(v), utf8.RuneCountInString(v), r.status, r.body, okWanted(sc))
		}
	}
}

func (f *limitFixture) checkRefused(t *testing.T, site *limitSite, sc limitScenario, v string) {
	t.Helper()
	bad := outcome{status: []int{http.StatusBadRequest, http.StatusUnprocessableEntity}, slug: []string{"validation", "bad-request"}, field: []string{site.field}}
	if site.in == "path" {
		bad = outcome{status: []int{http.StatusNotFound}, slug: []string{"not-found"}}
	}
	if sc.bad != nil {
		bad = *sc.bad
	}
	for _, r := range sc.send(v) {
		refused := bad.match(r, v)
		for _, o := range sc.ok {
			refused = refused && !o.match(r, v)
		}
		if !refused {
			t.Errorf("%s = %q (%d characters) is refused by openapi.json, but the server answered %d %s; want %v", site.key, clipValue(v), utf8.RuneCountInString(v), r.status, r.body, bad)
		}
	}
}

func okWanted(sc limitScenario) string {
	if len(sc.ok) == 0 {
		return "a 2xx"
	}
	return fmt.Sprint(sc.ok)
}

func clipValue(v string) string {
	if len(v) > 80 {
		return v[:40] + "…" + v[len(v)-20:]
	}
	return v
}
