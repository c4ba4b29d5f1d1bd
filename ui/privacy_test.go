package ui_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/privacy/receipt"
	"github.com/custos/custos/internal/testkit/uitest"
)

// privacyNode is a dev node with tenant acme, its collection guests
// holding one record for each subject, and its owner signed in.
type privacyNode struct {
	n   *uitest.Node
	api *client.Client // the tenant's owner key
	b   *uitest.Browser
}

func startPrivacy(t *testing.T, subjects ...string) *privacyNode {
	t.Helper()
	n := uitest.Start(t)
	api := n.Tenant(t, "acme")
	ctx := context.Background()
	if _, err := api.PutCollection(ctx, "acme", "guests", map[string]any{"fields": []map[string]any{
		{"name": "email", "type": "string", "classification": "pii"}}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range subjects {
		if _, err := api.CreateRecord(ctx, "acme", "guests", map[string]any{"subject": s, "fields": map[string]any{"email": s + "@example.com"}}); err != nil {
			t.Fatal(err)
		}
	}
	owner := n.User(t, "acme", "olga", "owner", nil, true)
	return &privacyNode{n: n, api: api, b: n.SignInAt(t, owner, "/ui/t/acme/privacy/requests")}
}

// mustProblem checks that p shows a problem with its request id.
func mustProblem(t *testing.T, p *uitest.Page, status int, text string) {
	t.Helper()
	p.Must(t, status)
	txt := p.Text()
	if !strings.Contains(txt, text) || !strings.Contains(txt, "Request id:") {
		t.Fatalf("%s: want a problem saying %q with its request id:\n%s", p, text, txt)
	}
}

func dsr(t *testing.T, api *client.Client, kind, subject string, received time.Time) client.DSR {
	t.Helper()
	in := client.NewDSR{Kind: kind, Subject: subject}
	if !received.IsZero() {
		in.Received = &received
	}
	d, err := api.CreateDSR(context.Background(), "acme", in)
	if err != nil {
		t.Fatalf("create %s request: %v", kind, err)
	}
	return d
}

// TestPrivacyQueue: overdue requests come first, each open one with its
// countdown (right without JavaScript), the summary counts them, and the
// filters select.
func TestPrivacyQueue(t *testing.T) {
	pn := startPrivacy(t, "guest-1", "guest-2", "guest-3")
	fresh := dsr(t, pn.api, "access", "guest-1", time.Time{})
	late := dsr(t, pn.api, "erasure", "guest-2", time.Now().Add(-70*24*time.Hour))
	later := dsr(t, pn.api, "export", "guest-3", time.Now().Add(-100*24*time.Hour))

	p := pn.b.Get(t, "/ui/t/acme/privacy/requests").Must(t, http.StatusOK)
	var order []string
	for _, tr := range p.Elements("tr") {
		if id := uitest.Attr(tr, "data-request"); id != "" {
			order = append(order, id)
		}
	}
	if want := []string{later.ID, late.ID, fresh.ID}; strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("queue order %v, want the most overdue first %v", order, want)
	}
	var overdue, open int
	for _, tm := range p.Elements("time") {
		cls := uitest.Attr(tm, "class")
		if !strings.Contains(cls, "countdown") {
			continue
		}
		if _, err := time.Parse(time.RFC3339, uitest.Attr(tm, "datetime")); err != nil {
			t.Fatalf("countdown datetime %q: %v", uitest.Attr(tm, "datetime"), err)
		}
		text := tm.FirstChild.Data
		switch {
		case strings.Contains(cls, "overdue") && strings.HasPrefix(text, "overdue by "):
			overdue++
		case !strings.Contains(cls, "overdue") && strings.HasPrefix(text, "due in "):
			open++
		default:
			t.Fatalf("countdown class %q says %q", cls, text)
		}
	}
	if overdue != 2 || open != 1 {
		t.Fatalf("countdowns: %d overdue, %d open; want 2 and 1", overdue, open)
	}
	if txt := p.Text(); !strings.Contains(txt, "2 overdue") {
		t.Fatalf("summary: %s", txt)
	}

	p = pn.b.Get(t, "/ui/t/acme/privacy/requests?status=open&kind=access").Must(t, http.StatusOK)
	if txt := p.Text(); !strings.Contains(txt, fresh.ID) || strings.Contains(txt, late.ID) {
		t.Fatalf("kind filter: %s", txt)
	}
	p = pn.b.Get(t, "/ui/t/acme/privacy/requests?status=overdue").Must(t, http.StatusOK)
	if txt := p.Text(); strings.Contains(txt, fresh.ID) || !strings.Contains(txt, late.ID) {
		t.Fatalf("overdue filter: %s", txt)
	}
	mustProblem(t, pn.b.Get(t, "/ui/t/acme/privacy/requests?status=bogus"), http.StatusBadRequest, "Unknown status filter")

	// Recording a request through the form; a refused one keeps the
	// input and shows the API's problem.
	p = pn.b.Post(t, "/ui/t/acme/privacy/requests", url.Values{"kind": {"restriction"}, "subject": {"guest-1"}}).Must(t, http.StatusOK)
	if !strings.Contains(p.Path, "/ui/t/acme/privacy/requests/dsr-") || !strings.Contains(p.Text(), "recorded") {
		t.Fatalf("create: %s %s", p.Path, p.Text())
	}
	p = pn.b.Post(t, "/ui/t/acme/privacy/requests", url.Values{"kind": {"access"}, "subject": {"guest-1"}})
	mustProblem(t, p, http.StatusConflict, fresh.ID)
	if !strings.Contains(p.Body, `value="guest-1"`) {
		t.Fatal("a refused request's form lost the subject typed")
	}
}

// TestPrivacyEmptyPages: every privacy page renders with nothing in it
// and says what to do next.
func TestPrivacyEmptyPages(t *testing.T) {
	pn := startPrivacy(t)
	for path, want := range map[string]string{
		"/ui/t/acme/privacy/requests":  "No request matches",
		"/ui/t/acme/privacy/consent":   "No purposes yet",
		"/ui/t/acme/privacy/retention": "guests",
	} {
		if p := pn.b.Get(t, path).Must(t, http.StatusOK); !strings.Contains(p.Text(), want) {
			t.Errorf("%s: want %q in %s", path, want, p.Text())
		}
	}
}

// TestPrivacyRequestSteps walks a request through the forms: verify with
// evidence, start, complete; another is extended, then rejected.
func TestPrivacyRequestSteps(t *testing.T) {
	pn := startPrivacy(t, "guest-1", "guest-2")
	ctx := context.Background()
	a := dsr(t, pn.api, "access", "guest-1", time.Time{})
	base := "/ui/t/acme/privacy/requests/" + a.ID

	p := pn.b.Get(t, base).Must(t, http.StatusOK)
	if acts := strings.Join(p.Actions(), "\n"); !strings.Contains(acts, "POST /tenants/:id/requests/:rid/transition") {
		t.Fatalf("actions of a received request: %s", acts)
	}
	// Starting before verification is refused by the API: the page
	// shows the problem.
	mustProblem(t, pn.b.Post(t, base+"/transition", url.Values{"to": {"in_progress"}}), http.StatusConflict, "verif")
	pn.b.Post(t, base+"/transition", url.Values{"to": {"verified"}, "method": {"email"}, "evidence": {"replied from the address on file"}}).Must(t, http.StatusOK)
	pn.b.Post(t, base+"/transition", url.Values{"to": {"in_progress"}}).Must(t, http.StatusOK)
	p = pn.b.Post(t, base+"/transition", url.Values{"to": {"completed"}, "note": {"letter sent"}}).Must(t, http.StatusOK)
	got, err := pn.api.DSR(ctx, "acme", a.ID)
	if err != nil || got.Status != "completed" || got.Verification == nil || got.Verification.Method != "email" {
		t.Fatalf("after the forms: %+v %v", got, err)
	}
	txt := p.Text()
	for _, want := range []string{"Identity verified", "Work started", "Completed", "letter sent"} {
		if !strings.Contains(txt, want) {
			t.Errorf("timeline lacks %q: %s", want, txt)
		}
	}

	b := dsr(t, pn.api, "access", "guest-2", time.Time{})
	base = "/ui/t/acme/privacy/requests/" + b.ID
	pn.b.Post(t, base+"/transition", url.Values{"to": {"extended"}, "extension": {"1 month"}, "reason": {"many records"}}).Must(t, http.StatusOK)
	if got, _ := pn.api.DSR(ctx, "acme", b.ID); got.Status != "extended" || got.Extension == nil || !got.Due.After(b.Due) {
		t.Fatalf("extend: %+v", got)
	}
	pn.b.Post(t, base+"/transition", url.Values{"to": {"rejected"}, "reason": {"manifestly unfounded"}}).Must(t, http.StatusOK)
	if got, _ := pn.api.DSR(ctx, "acme", b.ID); got.Status != "rejected" {
		t.Fatalf("reject: %+v", got)
	}
	p = pn.b.Get(t, base).Must(t, http.StatusOK)
	if len(p.Actions()) != 0 || !strings.Contains(p.Text(), "manifestly unfounded") {
		t.Fatalf("a rejected request offers %v: %s", p.Actions(), p.Text())
	}
}

// TestPrivacyErase: an erasure is refused by the UI unless the subject id
// is typed, done with it, and its receipt downloads as a file the CLI's
// verifier accepts.
func TestPrivacyErase(t *testing.T) {
	pn := startPrivacy(t, "guest-9")
	ctx := context.Background()
	e := dsr(t, pn.api, "erasure", "guest-9", time.Time{})
	base := "/ui/t/acme/privacy/requests/" + e.ID
	pn.b.Post(t, base+"/transition", url.Values{"to": {"verified"}, "method": {"in-person"}, "evidence": {"passport seen"}}).Must(t, http.StatusOK)
	if p := pn.b.Get(t, base).Must(t, http.StatusOK); !contains(p.Links(), base+"/erase") {
		t.Fatalf("no link to the erasure on a verified erasure request: %v", p.Links())
	}
	p := pn.b.Get(t, base+"/erase").Must(t, http.StatusOK)
	if !contains(p.Actions(), "POST /tenants/:id/requests/:rid/erase") || strings.Contains(p.Text(), "Not available now") {
		t.Fatalf("erasure page of a verified erasure request: %v %s", p.Actions(), p.Text())
	}

	for _, typed := range []string{"", "guest-", "GUEST-9", e.ID} {
		mustProblem(t, pn.b.Post(t, base+"/erase", url.Values{"confirm": {typed}}), http.StatusBadRequest, "Nothing was erased")
	}
	if got, _ := pn.api.DSR(ctx, "acme", e.ID); got.Status != "verified" {
		t.Fatalf("a refused confirmation changed the request: %s", got.Status)
	}

	p = pn.b.Post(t, base+"/erase", url.Values{"confirm": {"guest-9"}}).Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "Erased") || !strings.Contains(p.Text(), "Download the signed receipt") {
		t.Fatalf("after the erasure: %s", p.Text())
	}
	if got, _ := pn.api.DSR(ctx, "acme", e.ID); got.Status != "completed" {
		t.Fatalf("erasure request: %s", got.Status)
	}

	rc := pn.b.Get(t, base+"/receipt").Must(t, http.StatusOK)
	if cd := rc.Header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") {
		t.Fatalf("receipt download: %q", cd)
	}
	var key bytes.Buffer
	if err := pn.n.API().AuditKey(ctx, &key); err != nil {
		t.Fatal(err)
	}
	r, err := receipt.VerifyReceipt(key.Bytes(), []byte(rc.Body))
	if err != nil {
		t.Fatalf("the downloaded receipt does not verify: %v\n%s", err, rc.Body)
	}
	if r.Request != e.ID || r.Tenant != "acme" {
		t.Fatalf("receipt of %s/%s", r.Tenant, r.Request)
	}
}

// TestPrivacyExport: an export is built from the request's page and its
// archive downloads through the UI: a zip whose signed manifest verifies.
func TestPrivacyExport(t *testing.T) {
	pn := startPrivacy(t, "guest-5")
	ctx := context.Background()
	x := dsr(t, pn.api, "export", "guest-5", time.Time{})
	base := "/ui/t/acme/privacy/requests/" + x.ID
	pn.b.Post(t, base+"/transition", url.Values{"to": {"verified"}, "method": {"account"}, "evidence": {"signed in"}}).Must(t, http.StatusOK)
	p := pn.b.Post(t, base+"/export", url.Values{"format": {"json"}, "compression": {"zip"}}).Must(t, http.StatusOK)
	var link string
	for _, h := range p.Links() {
		if strings.HasPrefix(h, "/ui/t/acme/privacy/exports/") {
			link = h
		}
	}
	if link == "" {
		t.Fatalf("no download link after the export: %s", p.Text())
	}
	dl := pn.b.Get(t, link).Must(t, http.StatusOK)
	var key bytes.Buffer
	if err := pn.n.API().AuditKey(ctx, &key); err != nil {
		t.Fatal(err)
	}
	files, err := receipt.ZipFS(strings.NewReader(dl.Body), int64(len(dl.Body)))
	if err != nil {
		t.Fatalf("the download is not a zip archive: %v", err)
	}
	m, err := receipt.VerifyExport(key.Bytes(), files)
	if err != nil {
		t.Fatalf("the export does not verify: %v", err)
	}
	if m.Subject == "" || len(m.Files) == 0 {
		t.Fatalf("manifest: %+v", m)
	}
	if got, _ := pn.api.DSR(ctx, "acme", x.ID); got.Status != "completed" {
		t.Fatalf("export request: %s", got.Status)
	}
	mustProblem(t, pn.b.Get(t, "/ui/t/acme/privacy/exports/exp-nothing"), http.StatusNotFound, "no export")
}

// TestPrivacyPurposes: a purpose created and edited through the forms;
// an edit from a page shown before someone else's change is refused with
// the API's problem, the person's input kept.
func TestPrivacyPurposes(t *testing.T) {
	pn := startPrivacy(t)
	ctx := context.Background()
	p := pn.b.Post(t, "/ui/t/acme/privacy/purposes", url.Values{"id": {"newsletter"}, "description": {"Monthly news by e-mail"},
		"basis": {"consent"}, "on_withdraw": {"keep"}}).Must(t, http.StatusOK)
	if p.Path != "/ui/t/acme/privacy/purposes/newsletter?done="+url.QueryEscape("Purpose newsletter created at policy version 1.") {
		t.Fatalf("after create: %s", p.Path)
	}
	mustProblem(t, pn.b.Post(t, "/ui/t/acme/privacy/purposes", url.Values{"id": {"Bad Id"}, "description": {"x"}, "basis": {"consent"}}), http.StatusUnprocessableEntity, "id")

	pn.b.Post(t, "/ui/t/acme/privacy/purposes/newsletter", url.Values{"version": {"1"}, "description": {"Weekly news by e-mail"}, "basis": {"consent"}}).Must(t, http.StatusOK)
	got, err := pn.api.Purpose(ctx, "acme", "newsletter")
	if err != nil || got.PolicyVersion != 2 || got.Description != "Weekly news by e-mail" {
		t.Fatalf("after edit: %+v %v", got, err)
	}
	// The form still says version 1: someone else's change (version 2)
	// is not overwritten.
	p = pn.b.Post(t, "/ui/t/acme/privacy/purposes/newsletter", url.Values{"version": {"1"}, "description": {"Daily news"}, "basis": {"consent"}})
	mustProblem(t, p, http.StatusPreconditionFailed, "")
	if !strings.Contains(p.Body, "Daily news") {
		t.Fatal("the refused edit lost the text typed")
	}
	if got, _ := pn.api.Purpose(ctx, "acme", "newsletter"); got.PolicyVersion != 2 {
		t.Fatalf("a stale edit changed the purpose: %+v", got)
	}
	p = pn.b.Get(t, "/ui/t/acme/privacy/purposes/newsletter").Must(t, http.StatusOK)
	if txt := p.Text(); !strings.Contains(txt, "Monthly news") || !strings.Contains(txt, "Weekly news") {
		t.Fatalf("versions: %s", txt)
	}
	if p = pn.b.Get(t, "/ui/t/acme/privacy/consent").Must(t, http.StatusOK); !strings.Contains(p.Text(), "newsletter") {
		t.Fatalf("consent page: %s", p.Text())
	}
}

// TestPrivacySubjectConsent: a subject found through the search box, a
// grant and a withdrawal recorded with evidence through the forms.
func TestPrivacySubjectConsent(t *testing.T) {
	pn := startPrivacy(t, "guest-7")
	ctx := context.Background()
	if _, err := pn.api.CreatePurpose(ctx, "acme", client.NewPurpose{ID: "newsletter", Description: "News", Basis: "consent"}); err != nil {
		t.Fatal(err)
	}
	p := pn.b.Get(t, "/ui/t/acme/privacy/consent?subject=guest-7").Must(t, http.StatusOK)
	if p.Path != "/ui/t/acme/privacy/consent/guest-7" || !strings.Contains(p.Text(), "No consent event yet") {
		t.Fatalf("search: %s %s", p.Path, p.Text())
	}
	base := "/ui/t/acme/privacy/consent/guest-7"
	if got := consentRate(t, pn.b, "newsletter"); got != "—" {
		t.Fatalf("rate before any decision: %q", got)
	}
	mustProblem(t, pn.b.Post(t, base+"/grant", url.Values{"source": {"web"}}), http.StatusBadRequest, "Choose at least one purpose")
	pn.b.Post(t, base+"/grant", url.Values{"purpose": {"newsletter"}, "source": {"ivr"}, "evidence": {"Caller said yes to the newsletter"}}).Must(t, http.StatusOK)
	st, err := pn.api.ConsentState(ctx, "acme", "guest-7", time.Time{})
	if err != nil || !st.Allowed("newsletter") {
		t.Fatalf("after the grant: %+v %v", st, err)
	}
	// The chart moves: today's rate of newsletter is 100 % now, and the
	// chart's values table says so.
	if got := consentRate(t, pn.b, "newsletter"); got != "100%" {
		t.Fatalf("rate after the grant: %q", got)
	}
	p = pn.b.Post(t, base+"/withdraw", url.Values{"all": {"on"}, "source": {"web"}, "evidence": {"unsubscribed"}}).Must(t, http.StatusOK)
	if st, _ = pn.api.ConsentState(ctx, "acme", "guest-7", time.Time{}); st.Allowed("newsletter") {
		t.Fatal("withdrawal of all left newsletter allowed")
	}
	txt := p.Text()
	for _, want := range []string{"Granted", "Caller said yes to the newsletter", "Withdrew every purpose", "unsubscribed"} {
		if !strings.Contains(txt, want) {
			t.Errorf("history lacks %q: %s", want, txt)
		}
	}
	mustProblem(t, pn.b.Get(t, "/ui/t/acme/privacy/consent/nobody-here"), http.StatusNotFound, "")
	if got := consentRate(t, pn.b, "newsletter"); got != "0%" {
		t.Fatalf("rate after the withdrawal: %q", got)
	}
}

// consentRate is today's rate of purpose on the consent page, as its
// table and its chart's values table show it.
func consentRate(t *testing.T, b *uitest.Browser, purpose string) string {
	t.Helper()
	p := b.Get(t, "/ui/t/acme/privacy/consent?days=7").Must(t, http.StatusOK)
	rate := ""
	for _, tr := range p.Elements("tr") {
		if uitest.Attr(tr, "data-purpose") == purpose {
			for c := tr.LastChild; c != nil; c = c.PrevSibling {
				if c.Type == html.ElementNode && c.FirstChild != nil {
					rate = c.FirstChild.Data
					break
				}
			}
		}
	}
	if rate == "" {
		t.Fatalf("no consent rate of %s on the consent page: %s", purpose, p.Text())
	}
	if rate != "—" {
		// The chart's own table: the last row (today) holds the rate.
		var rows []string
		for _, fig := range p.Elements("figure") {
			for _, tr := range below(fig, "tr") {
				rows = append(rows, textOf(tr))
			}
		}
		if len(rows) == 0 || !strings.Contains(rows[len(rows)-1], rate) {
			t.Fatalf("the chart's values table does not end with %s: %v", rate, rows)
		}
	}
	return rate
}

// TestPrivacyRetention: the tenant's privacy settings are the
// operator's (tenants:update): the owner sees them without a form; the
// operator changes them through the form (PATCH), a bad time zone is the
// API's problem, and each collection is listed with its retention.
func TestPrivacyRetention(t *testing.T) {
	pn := startPrivacy(t)
	ctx := context.Background()
	p := pn.b.Get(t, "/ui/t/acme/privacy/retention").Must(t, http.StatusOK)
	if len(p.Actions()) != 0 || !strings.Contains(p.Text(), "365 days") {
		t.Fatalf("owner's retention page offers %v: %s", p.Actions(), p.Text())
	}
	op := pn.n.SignInToken(t)
	p = op.Post(t, "/ui/t/acme/privacy/retention", url.Values{"regulation": {"ccpa"}, "time_zone": {"America/Los_Angeles"}, "retention_days": {"730"}}).Must(t, http.StatusOK)
	tn, err := pn.api.Tenant(ctx, "acme")
	if err != nil || tn.Regulation != "ccpa" || tn.TimeZone != "America/Los_Angeles" || tn.RetentionDays != 730 {
		t.Fatalf("after the form: %+v %v", tn, err)
	}
	if txt := p.Text(); !strings.Contains(txt, "730 days") || !strings.Contains(txt, "guests") {
		t.Fatalf("retention page: %s", txt)
	}
	p = op.Post(t, "/ui/t/acme/privacy/retention", url.Values{"time_zone": {"Mars/Olympus"}})
	mustProblem(t, p, http.StatusUnprocessableEntity, "time_zone")
	if !strings.Contains(p.Body, "Mars/Olympus") {
		t.Fatal("the refused form lost the zone typed")
	}
}

// below are the elements named tag under n, in document order.
func below(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.Data == tag {
			out = append(out, c)
		}
		out = append(out, below(c, tag)...)
	}
	return out
}

// textOf is n's text, whitespace collapsed.
func textOf(n *html.Node) string {
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
