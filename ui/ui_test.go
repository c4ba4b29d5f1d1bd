package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/uitest"
)

// TestSignIn signs in each way the login page offers — the dev node's
// operator token, and an operator user's password with the TOTP step —
// and sees the cluster page.
func TestSignIn(t *testing.T) {
	n := uitest.Start(t)
	b := n.SignInToken(t)
	p := b.Get(t, "/ui/cluster").Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "Leader") {
		t.Fatalf("cluster page: %s", p.Text())
	}

	op := n.User(t, "", "ada-operator", "operator", nil, true)
	ob := n.NewBrowser()
	ob.Get(t, "/ui/login")
	step := ob.Post(t, "/ui/login", url.Values{"username": {op.Username}, "password": {uitest.Password}})
	if step.Status != http.StatusUnauthorized || !strings.Contains(step.Text(), "Authentication code") {
		t.Fatalf("a password without the code: want the code step, got %s: %s", step, step.Text())
	}
	if strings.Contains(step.Body, uitest.Password) {
		t.Fatal("the code step's page holds the password in clear")
	}
	var ticket string
	for _, in := range step.Elements("input") {
		if uitest.Attr(in, "name") == "ticket" {
			ticket = uitest.Attr(in, "value")
		}
	}
	if ticket == "" {
		t.Fatal("the code step carries no sealed ticket")
	}
	wrong := ob.Post(t, "/ui/login", url.Values{"username": {op.Username}, "ticket": {ticket + "x"}, "code": {op.Code(t)}})
	if wrong.Status != http.StatusUnauthorized || !strings.Contains(wrong.Text(), "password again") {
		t.Fatalf("a tampered ticket: %s %s", wrong, wrong.Text())
	}
	done := ob.Post(t, "/ui/login", url.Values{"username": {op.Username}, "ticket": {ticket}, "code": {op.Code(t)}, "next": {"/ui/account"}})
	if done.Status != http.StatusOK || done.Path != "/ui/account" {
		t.Fatalf("the code step with the ticket: %s", done)
	}
	ob = n.SignIn(t, op)
	p = ob.Get(t, "/ui/").Must(t, http.StatusOK)
	if p.Path != "/ui/cluster" {
		t.Fatalf("an operator's start page is %s", p.Path)
	}
	if nav := p.NavLinks(); !contains(nav, "/ui/tenants") {
		t.Fatalf("operator's navigation: %v", nav)
	}
}

// TestRefusals: no session, no CSRF token, another origin.
func TestRefusals(t *testing.T) {
	n := uitest.Start(t)
	anon := n.NewBrowser()
	if p := anon.Get(t, "/ui/cluster"); !strings.HasPrefix(p.Path, "/ui/login") {
		t.Fatalf("no session: ended at %s", p.Path)
	}
	b := n.SignInToken(t)
	if p := b.Post(t, "/ui/logout", url.Values{"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAA"}}); p.Status != http.StatusForbidden {
		t.Fatalf("wrong CSRF token: %s", p)
	}
	req, _ := http.NewRequest(http.MethodPost, n.URL+"/ui/logout", strings.NewReader(url.Values{"csrf": {b.CSRF}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if p := b.Do(t, req); p.Status != http.StatusForbidden {
		t.Fatalf("another origin: %s", p)
	}
	if p := b.Get(t, "/ui/cluster"); p.Status != http.StatusOK {
		t.Fatalf("still signed in after refused posts: %s", p)
	}
	if p := b.Post(t, "/ui/logout", nil); !strings.HasPrefix(p.Path, "/ui/login") {
		t.Fatalf("logout: %s", p)
	}
	if p := b.Get(t, "/ui/cluster"); !strings.HasPrefix(p.Path, "/ui/login") {
		t.Fatalf("after logout: %s", p)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestBrowserAddressReachesTheAPI: the UI's in-process calls carry the
// browser's address, so the API's audit entries (and its per-source
// limits) see the person's, not the node's.
func TestBrowserAddressReachesTheAPI(t *testing.T) {
	n := uitest.Start(t)
	op := n.User(t, "", "grace-operator", "operator", nil, true)
	n.SignIn(t, op)
	page, err := n.API().Audit(context.Background(), "", client.AuditFilter{Action: "session.login", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) < 2 {
		t.Fatalf("want the harness's login and the UI's, got %d entries", len(page.Entries))
	}
	for _, it := range page.Entries {
		if it.Entry.Source != "127.0.0.1" {
			t.Errorf("a login's source is %q, want the browser's 127.0.0.1", it.Entry.Source)
		}
	}
}

// TestStartPage: the start page is the first page of the navigation the
// person's role may open — the tenant overview for an Owner; for a
// Concierge, whose role lacks tenants:read, a page it may open (not a
// 403 at the overview).
func TestStartPage(t *testing.T) {
	n := uitest.Start(t)
	n.Tenant(t, "villa-a")
	owner := n.SignIn(t, n.User(t, "villa-a", "olivia", "owner", nil, true))
	if p := owner.Get(t, "/ui/").Must(t, http.StatusOK); p.Path != "/ui/t/villa-a/" {
		t.Errorf("an Owner's start page is %s, want the tenant overview /ui/t/villa-a/", p.Path)
	}
	cc := n.SignIn(t, n.User(t, "villa-a", "carla", "concierge", map[string][]string{"property": {"villa-a"}}, true))
	p := cc.Get(t, "/ui/").Must(t, http.StatusOK)
	nav := p.NavLinks()
	if len(nav) == 0 || p.Path != nav[0] {
		t.Errorf("a Concierge's start page is %s, want the first page of its navigation %v", p.Path, nav)
	}
	if p.Path == "/ui/t/villa-a/" || contains(nav, "/ui/t/villa-a/") {
		t.Errorf("a Concierge (no tenants:read) is sent to the tenant overview: start %s, navigation %v", p.Path, nav)
	}
}

// TestAccountSecondFactor: a person with a second factor is not offered
// a new enrolment (the API refuses one until an administrator resets
// it); one without is offered one, and enrolling works.
func TestAccountSecondFactor(t *testing.T) {
	n := uitest.Start(t)
	n.Tenant(t, "villa-a")
	with := n.SignIn(t, n.User(t, "villa-a", "olivia", "owner", nil, true))
	p := with.Get(t, "/ui/account").Must(t, http.StatusOK)
	if contains(p.Links(), "/ui/mfa?again=1") || !strings.Contains(p.Text(), "an administrator resets it (reset-mfa)") {
		t.Errorf("the account page of a person with a second factor (links %v): %s", p.Links(), p.Text())
	}
	// An old link to the enrolment: the same explanation, not a 409.
	p = with.Get(t, "/ui/mfa?again=1").Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "an administrator resets it (reset-mfa)") || strings.Contains(p.Text(), "Secret:") {
		t.Errorf("/ui/mfa?again=1 for a person with a second factor: %s", p.Text())
	}

	without := n.User(t, "villa-a", "carla", "concierge", nil, false)
	if without.URI != "" {
		t.Fatal("the Concierge was enrolled: its role requires a second factor, pick one that does not")
	}
	b := n.SignIn(t, without)
	p = b.Get(t, "/ui/account").Must(t, http.StatusOK)
	if !contains(p.Links(), "/ui/mfa?again=1") || strings.Contains(p.Text(), "reset-mfa") {
		t.Errorf("the account page of a person without a second factor (links %v): %s", p.Links(), p.Text())
	}
	p = b.Get(t, "/ui/mfa?again=1").Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "Secret:") {
		t.Fatalf("enrolling from the account page: %s", p.Text())
	}
	var uri string
	for _, in := range p.Elements("input") {
		if uitest.Attr(in, "name") == "uri" {
			uri = uitest.Attr(in, "value")
		}
	}
	without.URI = uri
	p = b.Post(t, "/ui/mfa", url.Values{"uri": {uri}, "code": {without.Code(t)}}).Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "Your authenticator is set up") {
		t.Fatalf("confirming the enrolment: %s", p.Text())
	}
	p = b.Get(t, "/ui/account").Must(t, http.StatusOK)
	if contains(p.Links(), "/ui/mfa?again=1") || !strings.Contains(p.Text(), "reset-mfa") {
		t.Errorf("the account page after enrolling (links %v): %s", p.Links(), p.Text())
	}
}
