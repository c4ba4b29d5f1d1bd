package ui_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/oidcop"
	"github.com/custos/custos/internal/testkit/uitest"
)

// TestPeopleUsers: an Owner manages the tenant's users through the
// pages — creates one with a role and scopes, changes them, sees the
// second factor's status and the user's sessions, revokes one session
// (that browser is signed out), disables and enables the user and resets
// their second factor — and defines a custom role on the roles page that
// the user form then offers. Refusals show the API's problem with the
// form kept.
func TestPeopleUsers(t *testing.T) {
	n := uitest.Start(t)
	ctx := context.Background()
	const tenant = "villa-p"
	n.Tenant(t, tenant)
	owner := n.User(t, tenant, "olga", "owner", nil, true)
	ob := n.SignIn(t, owner)

	p := ob.Get(t, "/ui/t/"+tenant+"/people").Must(t, http.StatusOK)
	mustContain(t, p, "olga", "owner", "authenticator app", "Create a user")

	// Create: the user's page, with what the form said.
	p = ob.Post(t, "/ui/t/"+tenant+"/people", url.Values{"username": {"carl"}, "password": {uitest.Password},
		"role": {"concierge"}, "scopes": {"property: villa-a\n"}}).Must(t, http.StatusOK)
	mustContain(t, p, "User carl created with the role concierge", "property: villa-a", "none")
	if !strings.Contains(p.Path, "/people/") {
		t.Fatalf("after create: %s", p.Path)
	}
	carlPage := strings.SplitN(p.Path, "?", 2)[0]
	users, err := n.OwnerAPI(tenant).Users(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	var carl client.User
	for _, u := range users {
		if u.Username == "carl" {
			carl = u
		}
	}
	if carl.Role != "concierge" || strings.Join(carl.Scopes["property"], ",") != "villa-a" {
		t.Fatalf("the user the form made: %+v", carl)
	}

	// Refusals: the UI's own check of the scopes, and the API's of a
	// short password; the form keeps what was typed.
	p = ob.Post(t, "/ui/t/"+tenant+"/people", url.Values{"username": {"dora"}, "password": {uitest.Password}, "role": {"foh"}, "scopes": {"property"}})
	refusedWithID(t, p, http.StatusBadRequest, "attribute: value")
	p = ob.Post(t, "/ui/t/"+tenant+"/people", url.Values{"username": {"dora"}, "password": {"short"}, "role": {"foh"}})
	if p.Status != http.StatusUnprocessableEntity {
		t.Fatalf("short password: %s", p)
	}
	mustContain(t, p, "password", "Request id")
	if !strings.Contains(p.Body, `value="dora"`) || strings.Contains(p.Body, `value="short"`) {
		t.Fatal("the refused form lost the username or showed the password")
	}

	// Change the binding: role and scopes.
	p = ob.Post(t, carlPage+"/binding", url.Values{"role": {"foh"}, "scopes": {"property: villa-a, villa-b"}}).Must(t, http.StatusOK)
	mustContain(t, p, "now has the role foh", "villa-a, villa-b")

	// Carl signs in twice; his page lists both sessions; one revoked
	// signs that browser out, the other stays.
	carlUser := &uitest.User{Tenant: tenant, Username: "carl", ID: carl.ID}
	cb1, cb2 := n.SignInAt(t, carlUser, "/ui/account"), n.SignInAt(t, carlUser, "/ui/account")
	sessions, err := n.OwnerAPI(tenant).UserSessions(ctx, tenant, carl.ID)
	if err != nil || len(sessions) < 2 {
		t.Fatalf("carl's sessions: %v %v", sessions, err)
	}
	p = ob.Get(t, carlPage).Must(t, http.StatusOK)
	for _, s := range sessions {
		mustContain(t, p, s.ID)
	}
	// cb1's session is the older one (signed in first).
	first := sessions[0]
	for _, s := range sessions {
		if s.CreatedAt.Before(first.CreatedAt) {
			first = s
		}
	}
	firstID := first.ID
	p = ob.Post(t, carlPage+"/sessions/"+firstID+"/revoke", nil).Must(t, http.StatusOK)
	mustContain(t, p, "Session "+firstID+" revoked")
	if p := cb1.Get(t, "/ui/account"); !strings.HasPrefix(p.Path, "/ui/login") {
		t.Fatalf("the revoked session still opens pages: %s", p)
	}
	cb2.Get(t, "/ui/account").Must(t, http.StatusOK)
	p = ob.Post(t, carlPage+"/sessions/revoke", nil).Must(t, http.StatusOK)
	mustContain(t, p, "revoked: the user is signed out everywhere", "No open sessions")
	if p := cb2.Get(t, "/ui/account"); !strings.HasPrefix(p.Path, "/ui/login") {
		t.Fatalf("after revoking all, a session still opens pages: %s", p)
	}

	// Disable, enable, reset MFA (of the Owner's own second factor:
	// another Owner does it).
	p = ob.Post(t, carlPage+"/disable", nil).Must(t, http.StatusOK)
	mustContain(t, p, "disabled: their sessions end", "disabled")
	if _, err := n.APIAs("").Login(ctx, client.Login{Tenant: tenant, Username: "carl", Password: uitest.Password}); err == nil {
		t.Fatal("a disabled user signed in")
	}
	p = ob.Post(t, carlPage+"/enable", nil).Must(t, http.StatusOK)
	mustContain(t, p, "carl enabled")
	olgaPage := "/ui/t/" + tenant + "/people/" + owner.ID
	p = ob.Get(t, olgaPage).Must(t, http.StatusOK)
	mustContain(t, p, "authenticator app", "this session")
	p = ob.Post(t, olgaPage+"/no-such-action", nil)
	if p.Status != http.StatusNotFound {
		t.Fatalf("an unknown action: %s", p)
	}

	// A custom role, defined on the roles page, offered by the user form.
	p = ob.Get(t, "/ui/t/"+tenant+"/roles").Must(t, http.StatusOK)
	mustContain(t, p, "Owner", "Concierge", "built in", "Define a custom role")
	p = ob.Post(t, "/ui/t/"+tenant+"/roles", url.Values{"name": {"night-desk"}, "title": {"Night desk"},
		"permission": {"collections:read", "records:read"}, "visibility_pii": {"masked"}, "visibility_sensitive": {"none"},
		"visibility_internal": {"clear"}}).Must(t, http.StatusOK)
	mustContain(t, p, "Role night-desk defined", "Night desk", "custom")
	r, err := n.OwnerAPI(tenant).Role(ctx, tenant, "night-desk")
	if err != nil || len(r.Permissions) != 2 || r.Visibility["sensitive"] != "none" {
		t.Fatalf("the role the form made: %+v %v", r, err)
	}
	p = ob.Post(t, "/ui/t/"+tenant+"/roles", url.Values{"name": {"Bad Name"}, "permission": {"records:read"},
		"visibility_pii": {"masked"}, "visibility_sensitive": {"none"}, "visibility_internal": {"clear"}})
	refusedWithID(t, p, http.StatusUnprocessableEntity, "lower-case letters")
	if !strings.Contains(p.Body, `value="Bad Name"`) {
		t.Fatal("the refused role form lost the name")
	}
	p = ob.Get(t, "/ui/t/"+tenant+"/people").Must(t, http.StatusOK)
	mustContain(t, p, "Night desk (custom)")
	p = ob.Post(t, carlPage+"/binding", url.Values{"role": {"night-desk"}, "scopes": {""}}).Must(t, http.StatusOK)
	mustContain(t, p, "now has the role night-desk")

	// A Concierge has none of these pages: the API refuses, the page says
	// so.
	cc := n.User(t, tenant, "cora", "concierge", nil, false)
	cb := n.SignInAt(t, cc, "/ui/account")
	if p := cb.Get(t, "/ui/t/"+tenant+"/people"); p.Status != http.StatusForbidden {
		t.Fatalf("a Concierge opened the users page: %s", p)
	}
}

// TestPeopleSSO: single sign-on set up through the page against a real
// OpenID provider on loopback (internal/testkit/oidcop), tested with the
// "Test login" button (the client secret never shown), then a person
// signs in through the login page's single sign-on: the provider's login,
// back to /ui/sso/callback, a session with the role their group maps
// onto.
func TestPeopleSSO(t *testing.T) {
	const secret = "sso-client-secret-canary"
	op := oidcop.Start(t, oidcop.Options{
		Users:   []oidcop.User{{ID: "alice", Username: "alice", Password: "verysecure", Email: "alice@example.org", EmailVerified: true, Groups: []string{"desk"}}},
		Clients: []oidcop.Client{{ID: "custos", Secret: secret}},
	})
	n := uitest.Start(t)
	const tenant = "villa-s"
	n.Tenant(t, tenant)
	owner := n.User(t, tenant, "olga", "owner", nil, true)
	ob := n.SignIn(t, owner)

	p := ob.Get(t, "/ui/t/"+tenant+"/sso").Must(t, http.StatusOK)
	mustContain(t, p, "Single sign-on is not set up", "Set up single sign-on", n.URL+"/ui/sso/callback")
	// A mapping line the UI cannot read: refused before the API.
	p = ob.Post(t, "/ui/t/"+tenant+"/sso", url.Values{"issuer": {op.Issuer}, "client_id": {"custos"}, "redirect_url": {n.URL + "/ui/sso/callback"},
		"mappings": {"groups desk concierge"}})
	refusedWithID(t, p, http.StatusBadRequest, "claim = value -> role")
	p = ob.Post(t, "/ui/t/"+tenant+"/sso", url.Values{"issuer": {op.Issuer}, "client_id": {"custos"}, "client_secret": {secret},
		"redirect_url": {n.URL + "/ui/sso/callback"}, "scopes": {"email profile " + oidcop.GroupsScope},
		"mappings": {"groups = desk -> concierge; property: villa-a"}, "jit": {"on"}, "trust_idp": {"on"}, "amr": {"pwd"}}).Must(t, http.StatusOK)
	mustContain(t, p, "settings saved", "groups = desk", "concierge", "property: villa-a", "stored, encrypted")
	if strings.Contains(p.Body, secret) {
		t.Fatal("the client secret is on the page")
	}
	p = ob.Post(t, "/ui/t/"+tenant+"/sso/test", nil).Must(t, http.StatusOK)
	mustContain(t, p, "login works", op.Issuer)

	// Alice signs in: the login page's single sign-on form, the
	// provider's login, back to the UI with a session.
	alice := n.NewBrowser()
	login := alice.Get(t, "/ui/login").Must(t, http.StatusOK)
	if !contains(formActions(login), "/ui/sso") {
		t.Fatal("the login page has no single sign-on form")
	}
	at := alice.Get(t, "/ui/sso?tenant="+tenant).Must(t, http.StatusOK) // the provider's login page
	id := queryOf(at.Path).Get("authRequestID")
	if id == "" {
		t.Fatalf("the single sign-on did not reach the provider's login: %s", at)
	}
	resp, err := alice.HC.PostForm(op.URL+"/login/username", url.Values{"id": {id}, "username": {"alice"}, "password": {"verysecure"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/ui/sso/callback" {
		t.Fatalf("the provider's redirect ended at %s %s", resp.Status, resp.Request.URL.Redacted())
	}
	acct := alice.Get(t, "/ui/account").Must(t, http.StatusOK)
	if strings.HasPrefix(acct.Path, "/ui/login") {
		t.Fatal("no session after single sign-on")
	}
	mustContain(t, acct, "concierge", "property")

	// The callback again (a replayed state) and one without the binding
	// cookie are refused on the login page.
	replay := n.NewBrowser()
	p = replay.Get(t, "/ui/sso/callback?state=x&code=y")
	if p.Status < 400 || !strings.Contains(p.Text(), "Request id") || !strings.HasPrefix(p.Path, "/ui/sso/callback") {
		t.Fatalf("a forged callback: %s\n%s", p, p.Text())
	}
	if p := replay.Get(t, "/ui/account"); !strings.HasPrefix(p.Path, "/ui/login") {
		t.Fatal("a forged callback opened a session")
	}

	// Removed: the page says so.
	p = ob.Post(t, "/ui/t/"+tenant+"/sso/delete", nil).Must(t, http.StatusOK)
	mustContain(t, p, "Single sign-on removed", "not set up")
}

// TestPeopleBreakGlass: an operator asks for access on the tenant's
// break-glass page; the Owner sees the request with its reason, approves
// it, revokes it, and sets the tenant's policy.
func TestPeopleBreakGlass(t *testing.T) {
	n := uitest.Start(t)
	const tenant = "villa-b"
	n.Tenant(t, tenant)
	owner := n.User(t, tenant, "olga", "owner", nil, true)
	ob := n.SignIn(t, owner)
	opb := n.SignInToken(t)

	p := ob.Get(t, "/ui/t/"+tenant+"/breakglass").Must(t, http.StatusOK)
	mustContain(t, p, "No break-glass grants", "the Owner approves each request", "4 hours")
	if contains(p.Actions(), "POST /tenants/:id/breakglass") {
		t.Fatal("the Owner is offered the operator's request form")
	}
	p = opb.Get(t, "/ui/t/"+tenant+"/breakglass").Must(t, http.StatusOK)
	if !contains(p.Actions(), "POST /tenants/:id/breakglass") || contains(p.Actions(), "PUT /tenants/:id/breakglass-policy") {
		t.Fatalf("the operator's actions: %v", p.Actions())
	}
	p = opb.Post(t, "/ui/t/"+tenant+"/breakglass", url.Values{"reason": {"ticket 4711: a guest's booking is stuck"}, "minutes": {"30"}}).Must(t, http.StatusOK)
	mustContain(t, p, "requested: the tenant's Owner approves it", "ticket 4711", "pending")
	p = opb.Post(t, "/ui/t/"+tenant+"/breakglass", url.Values{"reason": {"too long"}, "minutes": {"100000"}})
	refusedWithID(t, p, http.StatusBadRequest, "1 to 1440")

	list, err := n.OwnerAPI(tenant).BreakGlassGrants(context.Background(), tenant)
	if err != nil || len(list.Grants) != 1 {
		t.Fatalf("grants: %+v %v", list, err)
	}
	gid := list.Grants[0].ID
	p = ob.Get(t, "/ui/t/"+tenant+"/breakglass").Must(t, http.StatusOK)
	mustContain(t, p, "ticket 4711", "pending", "Approve")
	p = ob.Post(t, "/ui/t/"+tenant+"/breakglass/"+gid+"/approve", nil).Must(t, http.StatusOK)
	mustContain(t, p, "is active now", "active")
	p = ob.Post(t, "/ui/t/"+tenant+"/breakglass/"+gid+"/approve", nil)
	if p.Status != http.StatusConflict {
		t.Fatalf("approving an active grant again: %s", p)
	}
	p = ob.Post(t, "/ui/t/"+tenant+"/breakglass/"+gid+"/revoke", nil).Must(t, http.StatusOK)
	mustContain(t, p, "is revoked now", "ended")

	p = ob.Post(t, "/ui/t/"+tenant+"/breakglass/policy", url.Values{"auto_approve": {"on"}, "max_hours": {"2"}}).Must(t, http.StatusOK)
	mustContain(t, p, "policy saved", "automatic", "2 hours")
	p = opb.Post(t, "/ui/t/"+tenant+"/breakglass", url.Values{"reason": {"ticket 4712"}, "minutes": {"60"}}).Must(t, http.StatusOK)
	mustContain(t, p, "approved by the tenant's policy")
	p = ob.Post(t, "/ui/t/"+tenant+"/breakglass/policy", url.Values{"max_hours": {"25"}})
	refusedWithID(t, p, http.StatusBadRequest, "hours")
}

// formActions are the action attributes of the page's forms.
func formActions(p *uitest.Page) []string {
	var out []string
	for _, f := range p.Elements("form") {
		out = append(out, uitest.Attr(f, "action"))
	}
	return out
}

func queryOf(pathAndQuery string) url.Values {
	_, q, _ := strings.Cut(pathAndQuery, "?")
	v, _ := url.ParseQuery(q)
	return v
}
