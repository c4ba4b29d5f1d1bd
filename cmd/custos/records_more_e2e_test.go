package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/e2e"
)

// ---- helpers of the record end-to-end tests (this file and
// integrity_e2e_test.go) ----

// rxClient calls the record API of a cluster's nodes — a tenant's data
// with its Owner key (the operator reads none), the rest with the
// operator token — failing the test when a node cannot be reached.
type rxClient struct {
	t   testing.TB
	ctx context.Context
	c   *e2e.Cluster
	hc  *http.Client
}

func newRxClient(t testing.TB, ctx context.Context, c *e2e.Cluster) *rxClient {
	return &rxClient{t: t, ctx: ctx, c: c, hc: c.HTTPClient(15 * time.Second)}
}

// token is the credential of a request to path: the Owner key of the
// tenant whose data it names, else the operator token.
func (x *rxClient) token(path string) string {
	rest, ok := strings.CutPrefix(path, "/v1/tenants/")
	tenant, sub, more := strings.Cut(rest, "/")
	if !ok || !more || strings.HasPrefix(sub, "apikeys") || strings.HasPrefix(sub, "keys") || strings.HasPrefix(sub, "audit") {
		return x.c.Token
	}
	return x.c.OwnerKey(tenant)
}

// call sends method path to the node at apiAddr; body (if not "") is sent
// as JSON, as it is; hdr are header name/value pairs.
func (x *rxClient) call(apiAddr, method, path, body string, hdr ...string) *client.Response {
	x.t.Helper()
	var raw any
	if body != "" {
		raw = json.RawMessage(body)
	}
	var headers []client.Header
	for i := 0; i+1 < len(hdr); i += 2 {
		headers = append(headers, client.Header{Name: hdr[i], Value: hdr[i+1]})
	}
	r, err := client.New(apiAddr, client.Options{Token: x.token(path), HTTPClient: x.hc}).Send(x.ctx, method, path, raw, headers...)
	if err != nil {
		x.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// must calls and fails the test unless the status is want.
func (x *rxClient) must(apiAddr, method, path, body string, want int, hdr ...string) *client.Response {
	x.t.Helper()
	r := x.call(apiAddr, method, path, body, hdr...)
	if r.Status != want {
		x.t.Fatalf("%s %s via %s: HTTP %d, want %d: %s", method, path, apiAddr, r.Status, want, r.Body)
	}
	return r
}

// rxCheckProblem checks that r is an RFC 9457 problem of the given status
// and type slug (https://custos.dev/problems/<slug>), served as
// application/problem+json.
func rxCheckProblem(t testing.TB, what string, r *client.Response, status int, slug string) client.Problem {
	t.Helper()
	var p client.Problem
	if r.Status != status {
		t.Errorf("%s: HTTP %d, want %d: %s", what, r.Status, status, r.Body)
	}
	if ct := r.ContentType(); ct != "application/problem+json" {
		t.Errorf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Errorf("%s: problem is not JSON: %v: %s", what, err, r.Body)
		return p
	}
	if p.Slug() != slug || p.Type != client.ProblemTypeBase+slug || p.Status != status || p.Title == "" || p.Detail == "" {
		t.Errorf("%s: problem %+v, want type .../%s and status %d", what, p, slug, status)
	}
	return p
}

// rxRecord is a record as the API answers it.
type rxRecord struct {
	ID         string                     `json:"id"`
	Subject    string                     `json:"subject"`
	Attributes map[string]string          `json:"attributes"`
	Fields     map[string]json.RawMessage `json:"fields"`
	Version    uint64                     `json:"version"`
}

func rxDecodeRecord(t testing.TB, r *client.Response) rxRecord {
	t.Helper()
	var rec rxRecord
	if err := json.Unmarshal(r.Body, &rec); err != nil {
		t.Fatalf("record: %v: %s", err, r.Body)
	}
	return rec
}

// walk lists every page of query (a query string without after) through
// the nodes in turn (page i through nodes[i%len(nodes)]) and returns the
// ids and the size of each page. It fails on a duplicate id or a next
// that is not the page's last id.
func (x *rxClient) walk(nodes []*e2e.Node, base, query string) (ids []string, sizes []int) {
	x.t.Helper()
	seen := map[string]bool{}
	after := ""
	for page := 0; ; page++ {
		if page > 100 {
			x.t.Fatalf("walk %s?%s: more than 100 pages", base, query)
		}
		q := query
		if after != "" {
			q += "&after=" + url.QueryEscape(after)
		}
		n := nodes[page%len(nodes)]
		r := x.must(n.APIAddr, "GET", base+"?"+strings.TrimPrefix(q, "&"), "", http.StatusOK)
		var p client.RecordIDs
		if err := json.Unmarshal(r.Body, &p); err != nil {
			x.t.Fatalf("page: %v: %s", err, r.Body)
		}
		for _, id := range p.IDs {
			if seen[id] {
				x.t.Fatalf("walk %s?%s via %s: %s appears twice (page %d: %s)", base, query, n.ID, id, page, r.Body)
			}
			seen[id] = true
		}
		ids = append(ids, p.IDs...)
		sizes = append(sizes, len(p.IDs))
		if p.Next == "" {
			return ids, sizes
		}
		if len(p.IDs) == 0 || p.Next != p.IDs[len(p.IDs)-1] {
			x.t.Fatalf("walk %s?%s via %s: next %q is not the page's last id: %s", base, query, n.ID, p.Next, r.Body)
		}
		after = p.Next
	}
}

// TestE2ERecordsMoreThreeNodes (issue 5, acceptance 1, the parts
// TestE2ERecordsThreeNodes leaves out): on a three-node cluster, with
// every write sent to a follower unless said otherwise and every read made
// through every node —
//   - list with cursor pagination: 25 records, limit 10, three pages of
//     10, 10 and 5, none missing, none twice, the pages read through
//     different nodes;
//   - blind-index search (?field=&value=), normalized, paginated;
//   - attribute filter (?attribute=name:value), paginated;
//   - PATCH and PUT through followers with If-Match, seen at once by every
//     node, the blind index and the attribute filter following the change;
//   - DELETE through a follower: 404 problem+json on every node, gone from
//     lists and searches, the id reusable;
//   - 409 on a duplicate id and 412 on a stale If-Match (PUT and PATCH) as
//     problem+json: status, type and Content-Type;
//   - concurrent creates of one id and concurrent patches of one version
//     through the three nodes: exactly one wins, the others get 409 / 412.
func TestE2ERecordsMoreThreeNodes(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartCluster(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	x := newRxClient(t, ctx, c)
	leader := c.WaitLeader(30 * time.Second)
	fol := c.Others(leader)
	f1, f2 := fol[0], fol[1]
	all := c.Nodes
	t.Logf("leader %s, followers %s and %s", leader.ID, f1.ID, f2.ID)

	x.must(f1.APIAddr, "POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`, http.StatusCreated)
	x.must(f2.APIAddr, "PUT", "/v1/tenants/acme/collections/guests", `{"fields":[
		{"name":"email","type":"string","required":true,"classification":"pii","index":true},
		{"name":"tier","type":"enum","classification":"internal","index":true,"values":["gold","silver"]},
		{"name":"n","type":"number","classification":"internal"}]}`, http.StatusCreated)
	const coll = "/v1/tenants/acme/collections/guests/records"

	// 25 records, created in an order other than their ids' through all
	// three nodes. email: five records share each address (in varied case);
	// property: villa_a for even numbers, villa_b for odd ones.
	type want struct{ email, property, tier string }
	wants := map[string]want{}
	var ids []string
	for i := 1; i <= 25; i++ {
		ids = append(ids, fmt.Sprintf("r%02d", i))
	}
	order := slices.Clone(ids)
	slices.Reverse(order)
	for k, id := range order {
		var i int
		fmt.Sscanf(id, "r%d", &i)
		email := fmt.Sprintf("user%d@x.test", i%5)
		if i%2 == 0 {
			email = strings.ToUpper(email[:1]) + email[1:]
		}
		prop, tier := "villa_a", "gold"
		if i%2 == 1 {
			prop = "villa_b"
		}
		if i%3 == 0 {
			tier = "silver"
		}
		wants[id] = want{email, prop, tier}
		body := fmt.Sprintf(`{"id":%q,"attributes":{"property":%q},"fields":{"email":%q,"tier":%q,"n":%d}}`, id, prop, email, tier, i)
		r := x.must(all[k%3].APIAddr, "POST", coll, body, http.StatusCreated)
		if r.Header.Get("ETag") != `"1"` || r.Header.Get("Location") != coll+"/"+id {
			t.Fatalf("create %s: ETag %q, Location %q", id, r.Header.Get("ETag"), r.Header.Get("Location"))
		}
	}
	// matching lists the ids, in order, whose want satisfies f.
	matching := func(f func(id string, w want) bool) []string {
		var out []string
		for _, id := range ids {
			if w, ok := wants[id]; ok && f(id, w) {
				out = append(out, id)
			}
		}
		return out
	}
	checkWalk := func(what string, nodes []*e2e.Node, query string, wantIDs []string, wantSizes []int) {
		t.Helper()
		got, sizes := x.walk(nodes, coll, query)
		if !slices.Equal(got, wantIDs) {
			t.Errorf("%s: ids %v, want %v", what, got, wantIDs)
		}
		if wantSizes != nil && !slices.Equal(sizes, wantSizes) {
			t.Errorf("%s: page sizes %v, want %v", what, sizes, wantSizes)
		}
	}

	// Pagination: the three pages through three different nodes (starting
	// with a follower), then the whole walk through each node alone.
	checkWalk("list, pages through f1, f2, leader", []*e2e.Node{f1, f2, leader}, "limit=10", ids, []int{10, 10, 5})
	for _, n := range all {
		checkWalk("list via "+n.ID, []*e2e.Node{n}, "limit=10", ids, []int{10, 10, 5})
		checkWalk("list, limit 25, via "+n.ID, []*e2e.Node{n}, "limit=25", ids, []int{25})
		checkWalk("list, default limit, via "+n.ID, []*e2e.Node{n}, "", ids, []int{25})
	}
	// A cursor that is not an id of the collection continues after it.
	var mid client.RecordIDs
	json.Unmarshal(x.must(f2.APIAddr, "GET", coll+"?limit=3&after=r12x", "", http.StatusOK).Body, &mid)
	if strings.Join(mid.IDs, ",") != "r13,r14,r15" || mid.Next != "r15" {
		t.Errorf("after r12x: %+v", mid)
	}

	// Blind-index search through every node: normalized (case, spaces),
	// paginated, and nothing for an absent value.
	user3 := matching(func(_ string, w want) bool { return strings.EqualFold(w.email, "user3@x.test") })
	if len(user3) != 5 {
		t.Fatalf("fixture: %v", user3)
	}
	for _, n := range all {
		checkWalk("find email via "+n.ID, []*e2e.Node{n}, "field=email&value="+url.QueryEscape(`"  USER3@x.test "`), user3, []int{5})
		checkWalk("find email, limit 2, via "+n.ID, []*e2e.Node{n}, "field=email&value="+url.QueryEscape(`"user3@x.test"`)+"&limit=2", user3, []int{2, 2, 1})
		checkWalk("find tier via "+n.ID, []*e2e.Node{n}, "field=tier&value="+url.QueryEscape(`"silver"`)+"&limit=3",
			matching(func(_ string, w want) bool { return w.tier == "silver" }), nil)
		checkWalk("find absent email via "+n.ID, []*e2e.Node{n}, "field=email&value="+url.QueryEscape(`"nobody@x.test"`), nil, []int{0})
	}
	// Attribute filter through every node, paginated.
	villaB := matching(func(_ string, w want) bool { return w.property == "villa_b" })
	for _, n := range all {
		checkWalk("attribute via "+n.ID, []*e2e.Node{n}, "attribute=property:villa_b&limit=4", villaB, nil)
		checkWalk("absent attribute value via "+n.ID, []*e2e.Node{n}, "attribute=property:villa_c", nil, []int{0})
	}

	// PATCH through a follower, with If-Match: every node reads the new
	// version at once, and the index follows the new value.
	r := x.must(f1.APIAddr, "PATCH", coll+"/r05", `{"fields":{"email":"moved@x.test","n":null}}`, http.StatusOK, "If-Match", `"1"`)
	if rec := rxDecodeRecord(t, r); r.Header.Get("ETag") != `"2"` || rec.Version != 2 || string(rec.Fields["email"]) != `"moved@x.test"` || rec.Fields["n"] != nil || string(rec.Fields["tier"]) != `"gold"` {
		t.Fatalf("patch via follower: %s %s", r.Header.Get("ETag"), r.Body)
	}
	w := wants["r05"]
	w.email = "moved@x.test"
	wants["r05"] = w
	for _, n := range all {
		r := x.must(n.APIAddr, "GET", coll+"/r05", "", http.StatusOK)
		if rec := rxDecodeRecord(t, r); rec.Version != 2 || string(rec.Fields["email"]) != `"moved@x.test"` || rec.Attributes["property"] != "villa_b" || r.Header.Get("ETag") != `"2"` {
			t.Errorf("r05 via %s after the patch: %s", n.ID, r.Body)
		}
		checkWalk("find the old email via "+n.ID, []*e2e.Node{n}, "field=email&value="+url.QueryEscape(`"user0@x.test"`),
			matching(func(_ string, w want) bool { return strings.EqualFold(w.email, "user0@x.test") }), nil)
		checkWalk("find the new email via "+n.ID, []*e2e.Node{n}, "field=email&value="+url.QueryEscape(`"moved@x.test"`), []string{"r05"}, nil)
	}
	// A stale If-Match, on PATCH and PUT, through both followers: 412.
	for _, n := range fol {
		rxCheckProblem(t, "stale PATCH via "+n.ID, x.call(n.APIAddr, "PATCH", coll+"/r05", `{"fields":{"email":"lost@x.test"}}`, "If-Match", `"1"`), http.StatusPreconditionFailed, "precondition-failed")
		rxCheckProblem(t, "stale PUT via "+n.ID, x.call(n.APIAddr, "PUT", coll+"/r05", `{"fields":{"email":"lost@x.test"}}`, "If-Match", `"1"`), http.StatusPreconditionFailed, "precondition-failed")
		rxCheckProblem(t, "future If-Match via "+n.ID, x.call(n.APIAddr, "PUT", coll+"/r05", `{"fields":{"email":"lost@x.test"}}`, "If-Match", `"3"`), http.StatusPreconditionFailed, "precondition-failed")
	}
	// PUT through the other follower: a new attribute, which the filter
	// follows on every node.
	r = x.must(f2.APIAddr, "PUT", coll+"/r05", `{"attributes":{"property":"villa_a"},"fields":{"email":"moved@x.test","tier":"gold"}}`, http.StatusOK, "If-Match", `"2"`)
	if r.Header.Get("ETag") != `"3"` {
		t.Fatalf("replace via follower: ETag %q: %s", r.Header.Get("ETag"), r.Body)
	}
	w = wants["r05"]
	w.property = "villa_a"
	wants["r05"] = w
	for _, n := range all {
		if rec := rxDecodeRecord(t, x.must(n.APIAddr, "GET", coll+"/r05", "", http.StatusOK)); rec.Version != 3 || rec.Attributes["property"] != "villa_a" {
			t.Errorf("r05 via %s after the replace: %+v", n.ID, rec)
		}
		checkWalk("attribute after the replace via "+n.ID, []*e2e.Node{n}, "attribute=property:villa_b&limit=4",
			matching(func(_ string, w want) bool { return w.property == "villa_b" }), nil)
	}
	for _, n := range all {
		if body := x.must(n.APIAddr, "GET", coll+"/r05", "", http.StatusOK).Body; bytes.Contains(body, []byte("lost@x.test")) {
			t.Errorf("a refused write reached r05 on %s: %s", n.ID, body)
		}
	}

	// DELETE through a follower: 404 problem+json everywhere, gone from
	// the list and the index; a second delete is 404; the id is reusable.
	delEmail := wants["r10"].email
	x.must(f2.APIAddr, "DELETE", coll+"/r10", "", http.StatusNoContent)
	delete(wants, "r10")
	for _, n := range all {
		rxCheckProblem(t, "get deleted via "+n.ID, x.call(n.APIAddr, "GET", coll+"/r10", ""), http.StatusNotFound, "not-found")
		checkWalk("list after delete via "+n.ID, []*e2e.Node{n}, "limit=10", matching(func(string, want) bool { return true }), []int{10, 10, 4})
		checkWalk("find after delete via "+n.ID, []*e2e.Node{n}, "field=email&value="+url.QueryEscape(`"`+delEmail+`"`),
			matching(func(_ string, w want) bool { return strings.EqualFold(w.email, delEmail) }), nil)
	}
	rxCheckProblem(t, "delete again via f1", x.call(f1.APIAddr, "DELETE", coll+"/r10", ""), http.StatusNotFound, "not-found")
	rxCheckProblem(t, "patch deleted via f1", x.call(f1.APIAddr, "PATCH", coll+"/r10", `{"fields":{"n":1}}`), http.StatusNotFound, "not-found")
	r = x.must(f1.APIAddr, "POST", coll, `{"id":"r10","fields":{"email":"again@x.test"}}`, http.StatusCreated)
	if rec := rxDecodeRecord(t, r); rec.Version != 1 || rec.Attributes != nil {
		t.Errorf("recreated r10: %s", r.Body)
	}

	// A duplicate id: 409 problem+json through every node, the record
	// unchanged.
	before := x.must(leader.APIAddr, "GET", coll+"/r01", "", http.StatusOK).Body
	for _, n := range all {
		rxCheckProblem(t, "duplicate id via "+n.ID, x.call(n.APIAddr, "POST", coll, `{"id":"r01","fields":{"email":"dup@x.test"}}`), http.StatusConflict, "conflict")
	}
	for _, n := range all {
		if got := x.must(n.APIAddr, "GET", coll+"/r01", "", http.StatusOK).Body; !bytes.Equal(got, before) {
			t.Errorf("r01 via %s changed by refused duplicates:\n%s\n%s", n.ID, before, got)
		}
	}

	// Concurrent creates of one id through the three nodes: one 201, two
	// 409; concurrent patches of one version: one 200, two 412.
	race := func(what, method, path string, body func(i int) string, hdr []string, win, lose int, slug string) {
		t.Helper()
		var wg sync.WaitGroup
		res := make([]*client.Response, len(all))
		for i, n := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = x.call(n.APIAddr, method, path, body(i), hdr...)
			}()
		}
		wg.Wait()
		wins := 0
		for i, r := range res {
			if r.Status == win {
				wins++
				continue
			}
			rxCheckProblem(t, fmt.Sprintf("%s via %s", what, all[i].ID), r, lose, slug)
		}
		if wins != 1 {
			t.Errorf("%s: %d winners, want 1", what, wins)
		}
	}
	race("concurrent creates", "POST", coll, func(i int) string {
		return fmt.Sprintf(`{"id":"r99","fields":{"email":"racer%d@x.test"}}`, i)
	}, nil, http.StatusCreated, http.StatusConflict, "conflict")
	race("concurrent patches", "PATCH", coll+"/r99", func(i int) string {
		return fmt.Sprintf(`{"fields":{"n":%d}}`, i)
	}, []string{"If-Match", `"1"`}, http.StatusOK, http.StatusPreconditionFailed, "precondition-failed")
	// Every node agrees on the winner.
	var first []byte
	for _, n := range all {
		r := x.must(n.APIAddr, "GET", coll+"/r99", "", http.StatusOK)
		rec := rxDecodeRecord(t, r)
		if rec.Version != 2 || rec.Fields["n"] == nil {
			t.Errorf("r99 via %s: %s", n.ID, r.Body)
		}
		body, _ := json.Marshal(rec.Fields)
		if first == nil {
			first = body
		} else if !bytes.Equal(first, body) {
			t.Errorf("r99 differs between nodes: %s vs %s", first, body)
		}
	}
}
