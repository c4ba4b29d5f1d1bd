package ui_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/net/html"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/uitest"
)

// auditEnv is a node with tenant acme whose chain holds, after the
// entries of its creation, 120 seeded entries (three actions, five
// actors, over the last four days), and an Owner and a Manager signed in.
type auditEnv struct {
	n              *uitest.Node
	owner, manager *uitest.Browser
	seeded         []audit.Entry
}

var auditActions = []string{"record.read", "record.write", "consent.grant"}

func newAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	n := uitest.Start(t)
	n.Tenant(t, "acme")
	e := &auditEnv{n: n}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for i := range 120 {
		e.seeded = append(e.seeded, audit.Entry{
			Time:   today.Add(-time.Duration(3-i/30) * 24 * time.Hour).Add(time.Duration(i) * time.Second),
			Actor:  audit.Actor{Type: audit.ActorUser, ID: fmt.Sprintf("u-%d", i%5)},
			Action: auditActions[i%3], Target: fmt.Sprintf("record:guests/g%d", i), Outcome: audit.OutcomeSuccess,
			RequestID: fmt.Sprintf("req-%d", i), Source: "10.0.0.7",
			Details: map[string]string{"n": fmt.Sprint(i), "collection": "guests"},
		})
	}
	n.AppendAudit(t, "acme", e.seeded...)
	e.owner = n.SignInAt(t, n.User(t, "acme", "olga", "owner", nil, true), "/ui/t/acme/audit")
	e.manager = n.SignInAt(t, n.User(t, "acme", "max", "manager", nil, true), "/ui/t/acme/audit")
	return e
}

// all lists every entry of acme's chain through the API.
func (e *auditEnv) all(t *testing.T) []audit.Item {
	t.Helper()
	var out []audit.Item
	f := client.AuditFilter{Limit: 1000}
	for {
		p, err := e.n.OwnerAPI("acme").Audit(context.Background(), "acme", f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Entries...)
		if p.Next == 0 {
			return out
		}
		f.After = p.Next
	}
}

// sign makes the cluster sign a checkpoint of acme's chain now (an export
// covers every entry with one).
func (e *auditEnv) sign(t *testing.T) {
	t.Helper()
	var b bytes.Buffer
	if err := e.n.API().AuditExport(context.Background(), "acme", "", "", &b); err != nil {
		t.Fatal(err)
	}
}

// TestAuditList browses acme's chain: pages of 50, newest first and
// oldest first, each filter of the form, a filter the API refuses shown
// with its request id and the form kept, and the empty states.
func TestAuditList(t *testing.T) {
	e := newAuditEnv(t)
	all := e.all(t)
	for _, order := range []string{"", "oldest"} {
		start := "/ui/t/acme/audit"
		if order != "" {
			start += "?order=" + order
		}
		var got []string
		for next := start; next != ""; next = linkText(e.owner.Get(t, next), "Next page »") {
			rows := bodyRows(e.owner.Get(t, next).Must(t, http.StatusOK))
			if len(rows) != min(50, len(all)-len(got)) {
				t.Fatalf("%s: %d rows after %d", next, len(rows), len(got))
			}
			for _, r := range rows {
				got = append(got, r[0])
			}
		}
		var want []string
		for _, it := range all {
			want = append(want, fmt.Sprint(it.Seq))
		}
		if order == "" {
			slices.Reverse(want)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("order %q: pages held %v, want %v", order, got, want)
		}
	}
	if p := e.owner.Get(t, "/ui/t/acme/audit"); !contains(p.Links(), "/ui/t/acme/audit?order=oldest") {
		t.Fatalf("no link to the other order: %v", p.Links())
	}

	cases := []struct {
		name  string
		query url.Values
		want  func(audit.Entry) bool
	}{
		{"action", url.Values{"action": {"record.write"}}, func(x audit.Entry) bool { return x.Action == "record.write" }},
		{"action prefix", url.Values{"action": {"record."}}, func(x audit.Entry) bool { return strings.HasPrefix(x.Action, "record.") }},
		{"actor", url.Values{"actor": {"u-3"}}, func(x audit.Entry) bool { return x.Actor.ID == "u-3" }},
		{"target", url.Values{"target": {"record:guests/g7"}}, func(x audit.Entry) bool { return x.Target == "record:guests/g7" }},
		{"days", url.Values{"from": {day(-2)}, "to": {day(-1)}}, func(x audit.Entry) bool {
			d := x.Time.UTC().Format(time.DateOnly)
			return d >= day(-2) && d <= day(-1)
		}},
		{"nothing", url.Values{"actor": {"nobody"}}, func(audit.Entry) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for _, it := range slices.Backward(all) {
				if c.want(it.Entry) {
					want = append(want, fmt.Sprint(it.Seq))
				}
			}
			p := e.owner.Get(t, "/ui/t/acme/audit?"+c.query.Encode()).Must(t, http.StatusOK)
			var got []string
			for _, r := range bodyRows(p) {
				got = append(got, r[0])
			}
			if len(want) > 50 {
				want = want[:50]
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("got %v, want %v", got, want)
			}
			if len(want) == 0 && !strings.Contains(p.Text(), "No entry matches these filters") {
				t.Fatalf("empty state: %s", p.Text())
			}
			for k, v := range c.query {
				if !hasInputValue(p, k, v[0]) {
					t.Fatalf("the form lost %s=%s", k, v[0])
				}
			}
		})
	}

	long := strings.Repeat("<x>", 100)
	bad := e.owner.Get(t, "/ui/t/acme/audit?actor="+url.QueryEscape(long))
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Text(), "Request id") || !hasInputValue(bad, "actor", long) {
		t.Fatalf("a filter the API refuses: %s: %s", bad, bad.Text())
	}
	if p := e.owner.Get(t, "/ui/t/acme/audit?from=yesterday"); p.Status != http.StatusBadRequest || !strings.Contains(p.Text(), "2026-01-31") {
		t.Fatalf("a bad date: %s: %s", p, p.Text())
	}

	// The system chain, for an operator; a tenant's user has no such page.
	op := e.n.SignInToken(t)
	sys := op.Get(t, "/ui/audit").Must(t, http.StatusOK)
	if !strings.Contains(sys.Text(), "tenant.create") || !strings.Contains(sys.Text(), "tenant:acme") {
		t.Fatalf("system chain: %s", sys.Text())
	}
	if p := e.owner.Get(t, "/ui/audit"); p.Status != http.StatusForbidden {
		t.Fatalf("a tenant's owner on the system chain: %s", p)
	}

	// An empty chain.
	e.n.Tenant(t, "empty")
	n := len(e.allOf(t, "empty"))
	ep := op.Get(t, "/ui/t/empty/audit?action=consent.grant").Must(t, http.StatusOK)
	if n == 0 || len(bodyRows(ep)) != 0 || !strings.Contains(ep.Text(), "No entry matches") {
		t.Fatalf("no match in a chain of %d: %s", n, ep.Text())
	}
}

func (e *auditEnv) allOf(t *testing.T, tenant string) []audit.Item {
	t.Helper()
	p, err := e.n.API().Audit(context.Background(), tenant, client.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return p.Entries
}

// TestAuditEntry shows one entry with every field, its details, its leaf
// hash and links; an entry beyond the chain is a 404.
func TestAuditEntry(t *testing.T) {
	e := newAuditEnv(t)
	all := e.all(t)
	var it audit.Item
	for _, x := range all {
		if x.Entry.Target == "record:guests/g41" {
			it = x
		}
	}
	p := e.owner.Get(t, fmt.Sprintf("/ui/t/acme/audit/entry/%d", it.Seq)).Must(t, http.StatusOK)
	leaf := tlog.RecordHash(it.Raw)
	text := p.Text()
	for _, want := range []string{fmt.Sprintf("Audit entry %d", it.Seq), fmt.Sprintf("tree index %d", it.Seq-1), auditActions[41%3], "u-1",
		"record:guests/g41", "req-41", "10.0.0.7", "collection guests", "n 41", base64.StdEncoding.EncodeToString(leaf[:]), string(it.Raw)} {
		if !strings.Contains(text, want) {
			t.Fatalf("entry page lacks %q: %s", want, text)
		}
	}
	links := strings.Join(p.Links(), " ")
	for _, want := range []string{"/ui/t/acme/audit?target=record%3Aguests%2Fg41", "/ui/t/acme/data/guests", "/ui/t/acme/audit?actor=u-1",
		fmt.Sprintf("/ui/t/acme/audit/verify?from=%d&to=%d", it.Seq, it.Seq)} {
		if !strings.Contains(links, want) {
			t.Fatalf("entry page lacks the link %s: %s", want, links)
		}
	}
	if p := e.owner.Get(t, fmt.Sprintf("/ui/t/acme/audit/entry/%d", len(all)+10)); p.Status != http.StatusNotFound || !strings.Contains(p.Text(), "no entry") {
		t.Fatalf("beyond the chain: %s: %s", p, p.Text())
	}
}

// TestAuditVerify verifies ranges in the browser session with the
// module's verifier: a range of the chain, an entry, against a checkpoint
// kept from earlier; and names what fails for a range beyond the signed
// checkpoint, a backwards one and another chain's kept checkpoint.
func TestAuditVerify(t *testing.T) {
	e := newAuditEnv(t)
	e.sign(t)
	kept := e.owner.Post(t, "/ui/t/acme/audit/checkpoint", nil).Must(t, http.StatusOK).Body
	form := e.owner.Get(t, "/ui/t/acme/audit/verify").Must(t, http.StatusOK)
	if !strings.Contains(form.Text(), "Latest signed checkpoint") || !hasInputValue(form, "to", fmt.Sprint(len(e.all(t)))) {
		t.Fatalf("verify form: %s", form.Text())
	}
	p := e.owner.Get(t, "/ui/t/acme/audit/verify?from=1&to=100").Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "Verified 100 entries (sequence numbers 1 to 100)") || !strings.Contains(p.Text(), "/tenant:acme") {
		t.Fatalf("verify 1..100: %s", p.Text())
	}

	e.n.AppendAudit(t, "acme", e.seeded[:7]...)
	e.sign(t)
	q := url.Values{"from": {"120"}, "to": {"121"}, "kept": {kept}}
	p = e.owner.Get(t, "/ui/t/acme/audit/verify?"+q.Encode()).Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "Verified 2 entries") || !strings.Contains(p.Text(), "Extends your checkpoint") {
		t.Fatalf("verify against a kept checkpoint: %s", p.Text())
	}

	e.n.Tenant(t, "other")
	var otherCP bytes.Buffer
	if err := e.n.API().AuditExport(context.Background(), "other", "", "", io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := e.n.API().AuditCheckpoint(context.Background(), "other", &otherCP); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		query url.Values
		want  string
	}{
		{"beyond the checkpoint", url.Values{"from": {"400"}, "to": {"500"}}, "Not verified range : entry 500 is beyond the signed checkpoint"},
		{"backwards", url.Values{"from": {"9"}, "to": {"3"}}, "Not verified range : 9..3 is not a range"},
		{"another chain's kept checkpoint", url.Values{"from": {"1"}, "to": {"2"}, "kept": {otherCP.String()}}, "Not verified kept checkpoint : origin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := e.owner.Get(t, "/ui/t/acme/audit/verify?"+c.query.Encode()).Must(t, http.StatusOK)
			if !strings.Contains(p.Text(), c.want) || strings.Contains(p.Text(), "Verified ") {
				t.Fatalf("want %q: %s", c.want, p.Text())
			}
		})
	}
	if p := e.owner.Get(t, "/ui/t/acme/audit/verify?from=1&to=1000"); p.Status != http.StatusBadRequest || !strings.Contains(p.Text(), "At most 200") {
		t.Fatalf("too long a range: %s: %s", p, p.Text())
	}
}

// TestAuditDownloads: the signed checkpoint and the export bundle are the
// API's, as attachments — the checkpoint byte for byte and opening with
// the cluster's key, the bundle verifying — offered only to a role with
// audit:export; a Manager (audit:read only) sees no export and is refused
// it.
func TestAuditDownloads(t *testing.T) {
	e := newAuditEnv(t)
	ctx := context.Background()
	e.sign(t)
	var keyText, want bytes.Buffer
	if err := e.n.API().AuditKey(ctx, &keyText); err != nil {
		t.Fatal(err)
	}
	v, err := audit.Verifier(keyText.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.n.API().AuditCheckpoint(ctx, "acme", &want); err != nil {
		t.Fatal(err)
	}
	cp := e.owner.Post(t, "/ui/t/acme/audit/checkpoint", nil).Must(t, http.StatusOK)
	if cp.Body != want.String() || !strings.HasPrefix(cp.Header.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("checkpoint download: %q %q, want %q", cp.Header.Get("Content-Disposition"), cp.Body, want.String())
	}
	if _, err := audit.OpenCheckpoint([]byte(cp.Body), v); err != nil {
		t.Fatalf("the downloaded checkpoint: %v", err)
	}

	list := e.owner.Get(t, "/ui/t/acme/audit").Must(t, http.StatusOK)
	for _, a := range []string{"GET /tenants/:id/audit/export", "GET /tenants/:id/audit/checkpoint", "GET /tenants/:id/audit/proof/inclusion"} {
		if !contains(list.Actions(), a) {
			t.Fatalf("the owner's page lacks %s: %v", a, list.Actions())
		}
	}
	bundle := e.owner.Post(t, "/ui/t/acme/audit/export", url.Values{"from": {day(-2)}}).Must(t, http.StatusOK)
	if bundle.Header.Get("Content-Type") != "application/gzip" || !strings.Contains(bundle.Header.Get("Content-Disposition"), `filename="audit-tenant-acme.tar.gz"`) {
		t.Fatalf("export headers: %v", bundle.Header)
	}
	rep, err := audit.Verify(strings.NewReader(bundle.Body), v, []byte(cp.Body))
	if err != nil {
		t.Fatalf("the downloaded bundle: %v", err)
	}
	if rep == nil {
		t.Fatal("no report")
	}
	exports, err := e.n.API().Audit(ctx, "acme", client.AuditFilter{Action: "audit.export", Actor: "", Limit: 10})
	if err != nil || len(exports.Entries) < 2 || exports.Entries[len(exports.Entries)-1].Entry.Actor.Type != audit.ActorUser {
		t.Fatalf("the UI's export is not on record as the person's: %+v %v", exports, err)
	}

	mlist := e.manager.Get(t, "/ui/t/acme/audit").Must(t, http.StatusOK)
	if contains(mlist.Actions(), "GET /tenants/:id/audit/export") || !contains(mlist.Actions(), "GET /tenants/:id/audit/checkpoint") {
		t.Fatalf("a manager's actions: %v", mlist.Actions())
	}
	if p := e.manager.Post(t, "/ui/t/acme/audit/export", nil); p.Status != http.StatusForbidden || !strings.Contains(p.Text(), "Request id") {
		t.Fatalf("a manager's export: %s: %s", p, p.Text())
	}
}

// day is the date (UTC) of today plus d days.
func day(d int) string { return time.Now().UTC().AddDate(0, 0, d).Format(time.DateOnly) }

// bodyRows are the text of the cells of each row of the page's table
// bodies, but the charts' values tables.
func bodyRows(p *uitest.Page) [][]string {
	var out [][]string
	for _, tb := range p.Elements("tbody") {
		if inFigure(tb) {
			continue
		}
		for tr := tb.FirstChild; tr != nil; tr = tr.NextSibling {
			if tr.Type != html.ElementNode || tr.Data != "tr" {
				continue
			}
			var row []string
			for td := tr.FirstChild; td != nil; td = td.NextSibling {
				if td.Type == html.ElementNode {
					row = append(row, nodeText(td))
				}
			}
			out = append(out, row)
		}
	}
	return out
}

func inFigure(n *html.Node) bool {
	for ; n != nil; n = n.Parent {
		if n.Type == html.ElementNode && n.Data == "figure" {
			return true
		}
	}
	return false
}

func nodeText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data + " ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// linkText is the href of the page's link whose text is text ("" when none).
func linkText(p *uitest.Page, text string) string {
	for _, a := range p.Elements("a") {
		if nodeText(a) == text {
			return uitest.Attr(a, "href")
		}
	}
	return ""
}

// hasInputValue: the page has an input named name holding value.
func hasInputValue(p *uitest.Page, name, value string) bool {
	for _, in := range p.Elements("input") {
		if uitest.Attr(in, "name") == name && uitest.Attr(in, "value") == value {
			return true
		}
	}
	return false
}

// TestAuditChart: the chart of events per day by action holds, for each
// day and action, the number of entries of the chain — counted from the
// entries themselves through the API — and its periods are links.
func TestAuditChart(t *testing.T) {
	e := newAuditEnv(t)
	all := e.all(t)
	p := e.owner.Get(t, "/ui/t/acme/audit?days=7").Must(t, http.StatusOK)
	if len(p.Elements("svg")) != 1 || !strings.Contains(p.Text(), "Entries per day by action") {
		t.Fatalf("no chart: %s", p.Text())
	}
	// The values table: a header of actions, a row per day.
	var head []string
	for _, th := range p.Elements("th") {
		if uitest.Attr(th, "scope") == "col" && uitest.Attr(th, "class") == "num" {
			head = append(head, nodeText(th))
		}
	}
	want := map[string]map[string]int{} // day (MM-DD) → action → n
	perDay := map[string]int{}
	for _, it := range all {
		d := it.Entry.Time.UTC()
		if d.Before(time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -6)) {
			continue
		}
		k := d.Format("01-02")
		if want[k] == nil {
			want[k] = map[string]int{}
		}
		want[k][it.Entry.Action]++
		perDay[k]++
	}
	rows := chartRows(p)
	if len(rows) != 7 || rows[6][0] != time.Now().UTC().Format("01-02") {
		t.Fatalf("want 7 days ending today, got %v", rows)
	}
	for _, r := range rows {
		sum := 0
		for i, v := range r[1:] {
			n, _ := strconv.Atoi(v)
			sum += n
			if a := head[i]; a != "other" && n != want[r[0]][a] {
				t.Errorf("%s %s: chart %d, entries %d", r[0], a, n, want[r[0]][a])
			}
		}
		if sum != perDay[r[0]] {
			t.Errorf("%s: chart total %d, entries %d", r[0], sum, perDay[r[0]])
		}
	}
	for _, a := range auditActions {
		if !contains(head, a) {
			t.Errorf("the chart has no series %s: %v", a, head)
		}
	}
	if !contains(p.Links(), "/ui/t/acme/audit?days=30") {
		t.Fatalf("period links: %v", p.Links())
	}
	if p := e.owner.Get(t, "/ui/t/acme/audit?before=50"); len(p.Elements("svg")) != 0 {
		t.Fatal("a later page draws the chart again")
	}
}

// chartRows are the rows of the chart's values table: the day, then a
// value per series.
func chartRows(p *uitest.Page) [][]string {
	var out [][]string
	for _, fig := range p.Elements("figure") {
		for _, tr := range elementsUnder(fig, "tr") {
			var row []string
			for c := tr.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") && uitest.Attr(c, "scope") != "col" {
					row = append(row, nodeText(c))
				}
			}
			if len(row) > 0 {
				out = append(out, row)
			}
		}
	}
	return out
}

func elementsUnder(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.Data == tag {
			out = append(out, c)
		}
		out = append(out, elementsUnder(c, tag)...)
	}
	return out
}
