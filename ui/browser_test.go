package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"

	"github.com/custos/custos/internal/testkit/browser"
	"github.com/custos/custos/internal/testkit/uitest"
)

// TestBrowserScenario is issue 15's acceptance in a real browser: Debian's
// headless Chromium (internal/testkit/browser) against the real custos
// binary, a one-node cluster serving TLS. Every page the people visit is
// checked as it loads — the CSP on every response, no inline script or
// style in the HTML the server sent, no request off the node's origin,
// axe-core with no serious or critical violation — and saved as a
// screenshot (browser.ArtifactsDir: ui/testdata/artifacts, or
// $CUSTOS_UI_ARTIFACTS). One browser and one node serve every step.
func TestBrowserScenario(t *testing.T) {
	start := time.Now()
	lap := func(what string) { t.Logf("phase %s done at: %v", what, time.Since(start).Round(time.Millisecond)) }
	n := browser.StartNode(t)
	lap("node")
	b := browser.Start(t, n.URL)
	lap("browser")
	ctx := context.Background()

	// Acceptance 1: an operator user signs in with password and TOTP.
	ada := n.Operator(t, "ada-operator")
	op := b.NewSession(t, "operator")
	if p := op.Open(t, "/ui/cluster"); !strings.HasPrefix(p.Path, "/ui/login") {
		t.Fatalf("no session: the cluster page answered at %s", p.Path)
	}
	lap("operator user")
	home := op.SignIn(t, ada)
	lap("operator signed in")
	if home.Path != "/ui/cluster" {
		t.Errorf("an operator's start page is %s, want /ui/cluster", home.Path)
	}
	checkSessionCookie(t, op)

	// The tenant the rest of the scenario works in, created by the
	// operator on the tenants page.
	const tenant = "villa"
	createTenant(t, n, op, tenant)
	lap("tenant")
	owner := n.TenantUser(t, tenant, "olga-owner", "owner", nil)
	lap("owner user")
	own := b.NewSession(t, "owner")
	if p := own.SignIn(t, owner); p.Path != "/ui/t/"+tenant+"/" || p.Status != http.StatusOK {
		t.Errorf("the owner's start page: HTTP %d at %s, want 200 at /ui/t/%s/", p.Status, p.Path, tenant)
	}
	checkSessionCookie(t, own)

	// Acceptance 2: every page of the navigation, clicked through as each
	// person (the checks run on every page as it loads).
	lap("owner signed in")
	clickThrough(t, op, "/ui/cluster")
	lap("operator clicked through")
	clickThrough(t, own, "/ui/account")
	lap("owner clicked through")

	// A record made through the API is masked in the UI; revealed with a
	// reason, and the reveal is in the audit log.
	maskedReveal(t, n, own, tenant)
	lap("masked and revealed")

	// A Concierge scoped to property=villa-a sees only villa-a's records.
	scopedConcierge(t, n, b, tenant)
	lap("scoped concierge")

	// The subject whose recording, consent and requests the next steps
	// handle, with a record.
	const subject = "s-dsr"
	if _, err := n.Owner(tenant).CreateRecord(ctx, tenant, "guests", map[string]any{"id": "d1", "subject": subject,
		"fields": map[string]any{"email": "grace.hopper@example.com", "room": "7"}}); err != nil {
		t.Fatalf("record d1: %v", err)
	}
	// A recording uploaded through the form plays in the page (ranges).
	recording(t, n, own, tenant, subject)
	lap("recording uploaded and played")
	// Consent recorded through the forms moves the chart.
	consentChart(t, n, own, tenant, []string{"s-ada", subject}, subject)
	lap("consent charted")
	// A data-subject request: exported, erased, the receipt verified
	// with the CLI.
	subjectRequest(t, n, own, tenant, subject)
	lap("subject request")

	// Acceptance 2: forged form posts are refused and change nothing.
	forgedPosts(t, n, op)
	lap("forged")

	// Every request of every page went to the node (each page's were
	// checked as it loaded; this is the whole session's list).
	for _, s := range []*browser.Session{op, own} {
		for _, o := range s.Origins() {
			if o != n.URL && o != "data:" {
				t.Errorf("a request went to %s (only %s is allowed)", o, n.URL)
			}
		}
	}
	// Chromium's own services, which no page's events show, were
	// stopped at its proxy.
	if out := b.Outside(); len(out) > 0 {
		t.Logf("Chromium's own requests, stopped by its proxy: %v", out)
	}
	_ = ctx
}

// checkSessionCookie: the session cookie is __Host-custos with the
// issue's flags, and the CSRF cookie is host-only too.
func checkSessionCookie(t *testing.T, s *browser.Session) {
	t.Helper()
	var session *network.Cookie
	for _, c := range s.Cookies(t) {
		if c.Name == "__Host-custos" {
			session = c
		}
		if strings.Contains(c.Name, "custos") && !strings.HasPrefix(c.Name, "__Host-") {
			t.Errorf("cookie %s has no __Host- prefix", c.Name)
		}
	}
	if session == nil {
		t.Fatalf("no __Host-custos session cookie after sign-in: %v", cookieNames(s.Cookies(t)))
	}
	if !session.Secure || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Path != "/" || session.Domain != "127.0.0.1" {
		t.Errorf("session cookie flags: secure=%v httponly=%v samesite=%q path=%q domain=%q; want Secure, HttpOnly, SameSite=Strict, Path=/, host-only",
			session.Secure, session.HTTPOnly, session.SameSite, session.Path, session.Domain)
	}
}

func cookieNames(cs []*network.Cookie) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// navLinks are the hrefs of the page's main navigation, now.
func navLinks(t *testing.T, s *browser.Session) []string {
	t.Helper()
	return browser.MustEval[[]string](t, s, `Array.from(document.querySelectorAll('nav[aria-label="Main"] a')).map(a => a.getAttribute("href"))`)
}

// clickThrough clicks every link of the main navigation of start in
// turn (back at start when a page has no navigation: an error page).
func clickThrough(t *testing.T, s *browser.Session, start string) {
	t.Helper()
	s.Open(t, start)
	links := navLinks(t, s)
	if len(links) == 0 {
		t.Errorf("%s has no navigation links", start)
	}
	for _, href := range links {
		if !slices.Contains(navLinks(t, s), href) {
			s.Open(t, start)
		}
		if p := s.Click(t, `nav[aria-label="Main"] a[href="`+href+`"]`); p.Status != http.StatusOK {
			t.Errorf("navigation link %s: HTTP %d at %s: %s", href, p.Status, p.Path, browserClip(s.Text(t)))
		}
	}
}

func browserClip(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

// createTenant creates tenant as the operator through the tenants page's
// form, and checks through the API that it exists.
func createTenant(t *testing.T, n *browser.Node, op *browser.Session, tenant string) {
	t.Helper()
	if p := op.Open(t, "/ui/tenants"); p.Status != http.StatusOK {
		t.Fatalf("the tenants page: HTTP %d at %s", p.Status, p.Path)
	}
	const form = `form[data-api="POST /tenants"]`
	op.Submit(t, form, "id", tenant, "display_name", "Villa "+tenant)
	if _, err := n.Owner(tenant).Tenant(context.Background(), tenant); err != nil {
		t.Fatalf("the tenant created through the UI: %v", err)
	}
}

// forgedPosts: a form posted without its CSRF token, and one from another
// origin, are refused with 403 and change nothing (the session is still
// there: sign-out was the forged action).
func forgedPosts(t *testing.T, n *browser.Node, s *browser.Session) {
	t.Helper()
	back := s.Open(t, "/ui/cluster")
	if back.Status != http.StatusOK {
		t.Fatalf("cluster page: HTTP %d", back.Status)
	}
	// The sign-out form, its CSRF field removed in the page.
	browser.MustEval[bool](t, s, `(() => { const f = document.querySelector('form[action="/ui/logout"]'); f.querySelector('[name="csrf"]').remove(); return true })()`)
	p := s.Click(t, `form[action="/ui/logout"] [type="submit"]`)
	if p.Status != http.StatusForbidden {
		t.Errorf("a sign-out without its CSRF token: HTTP %d at %s, want 403", p.Status, p.Path)
	}
	if p := s.Open(t, "/ui/cluster"); p.Path != "/ui/cluster" {
		t.Errorf("after the refused post the session is gone: %s", p.Path)
	}

	// From another origin: the same form with the right token (copied
	// from the browser's cookie, which a real attacker cannot read) sent
	// with the attacker's Origin.
	var csrf, sess string
	for _, c := range s.Cookies(t) {
		switch c.Name {
		case "__Host-custos-csrf":
			csrf = c.Value
		case "__Host-custos":
			sess = c.Value
		}
	}
	form := url.Values{"csrf": {csrf}}
	req, _ := http.NewRequest(http.MethodPost, n.URL+"/ui/logout", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.AddCookie(&http.Cookie{Name: "__Host-custos-csrf", Value: csrf})
	req.AddCookie(&http.Cookie{Name: "__Host-custos", Value: sess})
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a sign-out from another origin: HTTP %d, want 403", resp.StatusCode)
	}
	if p := s.Open(t, "/ui/cluster"); p.Path != "/ui/cluster" {
		t.Errorf("after the refused cross-origin post the session is gone: %s", p.Path)
	}
}

var _ = slices.Contains[[]string]
var _ = uitest.Password

// maskedReveal: the guests collection defined through the collections
// page's form; a record created through the API shows masked on its
// page; revealed with a reason it shows in clear, and the link to the
// record's reads shows the audit entry.
func maskedReveal(t *testing.T, n *browser.Node, s *browser.Session, tenant string) {
	t.Helper()
	ctx := context.Background()
	api := n.Owner(tenant)
	defineCollection(t, n, s, tenant, "guests", guestsSchema)
	const email = "ada.lovelace@example.com"
	if _, err := api.CreateRecord(ctx, tenant, "guests", map[string]any{"id": "g1", "subject": "s-ada",
		"fields": map[string]any{"email": email, "notes": "quiet room please", "room": "12"}}); err != nil {
		t.Fatalf("record: %v", err)
	}
	p := s.Open(t, "/ui/t/"+tenant+"/data/guests/g1")
	if txt := s.Text(t); p.Status != http.StatusOK || strings.Contains(txt, email) || !strings.Contains(txt, "masked") {
		t.Errorf("the record page, masked: HTTP %d: %s", p.Status, browserClip(txt))
	}
	p = s.Submit(t, `form[action$="/g1/reveal"]`, "reason", "the guest asked for a copy")
	if txt := s.Text(t); p.Status != http.StatusOK || !strings.Contains(txt, email) {
		t.Fatalf("revealed: HTTP %d: %s", p.Status, browserClip(txt))
	}
	p = s.Click(t, `a[href*="/audit?action=record.read"]`)
	if txt := s.Text(t); p.Status != http.StatusOK || !strings.Contains(txt, "record.read") {
		t.Errorf("the record's reads in the audit log: HTTP %d at %s: %s", p.Status, p.Path, browserClip(txt))
	}
}

// scopedConcierge: records of two properties; a Concierge whose scope is
// property=villa-a sees only villa-a's in the collection's list.
func scopedConcierge(t *testing.T, n *browser.Node, b *browser.Browser, tenant string) {
	t.Helper()
	ctx := context.Background()
	api := n.Owner(tenant)
	for id, prop := range map[string]string{"va1": "villa-a", "vb1": "villa-b"} {
		if _, err := api.CreateRecord(ctx, tenant, "guests", map[string]any{"id": id, "subject": "s-" + id,
			"attributes": map[string]any{"property": prop}, "fields": map[string]any{"email": id + "@example.com", "room": "1"}}); err != nil {
			t.Fatalf("record %s: %v", id, err)
		}
	}
	cc := n.TenantUser(t, tenant, "carla-concierge", "concierge", map[string][]string{"property": {"villa-a"}})
	s := b.NewSession(t, "concierge")
	if p := s.SignIn(t, cc); p.Status != http.StatusOK {
		t.Errorf("a Concierge's start page after sign-in: HTTP %d at %s: %s", p.Status, p.Path, browserClip(s.Text(t)))
	}
	p := s.Open(t, "/ui/t/"+tenant+"/data/guests")
	txt := s.Text(t)
	if p.Status != http.StatusOK || !strings.Contains(txt, "va1") || strings.Contains(txt, "vb1") || strings.Contains(txt, "g1") {
		t.Errorf("the scoped Concierge's list of guests (want va1 only): HTTP %d: %s", p.Status, browserClip(txt))
	}
	if p := s.Open(t, "/ui/t/"+tenant+"/data/guests/vb1"); p.Status == http.StatusOK && strings.Contains(s.Text(t), "vb1@") {
		t.Errorf("the scoped Concierge opened villa-b's record")
	}
}
