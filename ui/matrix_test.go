package ui_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/internal/testkit/uitest"
	"github.com/custos/custos/ui"
)

// uiPrincipal is one person of the UI's role matrix: how they sign in,
// and what the permission table gives their role.
type uiPrincipal struct {
	name     string
	user     *uitest.User
	perms    roles.Set
	operator bool
}

// TestUIRoleMatrix is acceptance 4 of issue 15, generated from the same
// table as the API's role × route matrix (roles.Builtins and
// api.Operations): a user of every built-in tenant role (MFA enrolled
// where the role requires it), an operator user (the Operator role), a
// user of a tenant's custom role and a scoped Concierge sign in through
// the login form and open every page of ui.Pages() — path parameters
// filled from uitest's fixtures — and each sees exactly:
//   - the navigation entries whose API route their role may call;
//   - the pages whose route they may call with HTTP 200, and the others
//     as the API's 403 problem (its detail naming the permission, the
//     request id shown);
//   - on each page, the data-api actions that are the subset of the
//     page's declared actions their role may call — no more (a hidden
//     action shown, or one the page does not declare) and no fewer.
//
// "May call" is computed here from api.Operations and the role's
// permissions as the API's authorization decides it, not by the UI's
// own may. A page that lacks its declarations (a tenant or navigation
// page without need, a form without data-api, a route unknown to the
// API) fails the test; new pages are covered as they are added.
func TestUIRoleMatrix(t *testing.T) {
	n := uitest.Start(t)
	fx := n.Fixtures(t, "acme")
	ops := api.Operations()
	pages := ui.Pages()
	checkDeclarations(t, pages, ops)
	for _, p := range uiPrincipals(t, n, fx) {
		t.Run(p.name, func(t *testing.T) {
			b := n.SignInAt(t, p.user, "/ui/account")
			shown := map[string]map[string]bool{} // page path → the actions any of its instances showed
			opened := map[string]bool{}
			refused := 0
			for _, inst := range pageInstances(t, pages, fx) {
				pg := inst.page
				got := b.Get(t, inst.url)
				if got.Path != inst.url {
					t.Errorf("%s: redirected to %s (HTTP %d)", inst.url, got.Path, got.Status)
					continue
				}
				html := strings.HasPrefix(got.Header.Get("Content-Type"), "text/html")
				if html {
					checkNav(t, got, p, ops, navTenant(pg, p, fx))
				}
				if pg.Need != "" && !mayCall(p, ops, pg.Need) {
					checkRefused(t, got, pg.Need, ops)
					refused++
					continue
				}
				if got.Status == http.StatusForbidden && strings.Contains(got.Text(), "problems/withheld") {
					continue // the API's visibility: the role reads the route but not this content (QA and a blob's bytes)
				}
				if got.Status != http.StatusOK {
					t.Errorf("%s: HTTP %d, want 200 (the role may call %q):\n%s", inst.url, got.Status, pg.Need, clipText(got.Text()))
					continue
				}
				if shown[pg.Path] == nil {
					shown[pg.Path] = map[string]bool{}
				}
				if !html {
					continue // a file (a recording's content): no navigation, no actions
				}
				opened[pg.Path] = true
				for _, a := range got.Actions() {
					shown[pg.Path][a] = true
					switch {
					case !slices.Contains(pg.Actions, a):
						t.Errorf("%s shows the action %q, which its route does not declare in actions", inst.url, a)
					case !mayCall(p, ops, a):
						t.Errorf("%s shows the action %q, which the role may not call", inst.url, a)
					}
				}
				for _, f := range formsWithoutAPI(got) {
					t.Errorf("%s: a form to %s has no data-api naming the API route it calls", inst.url, f)
				}
			}
			t.Logf("%d pages opened, %d refused", len(opened), refused)
			for _, pg := range pages {
				if !opened[pg.Path] {
					continue
				}
				for _, a := range pg.Actions {
					if mayCall(p, ops, a) && !shown[pg.Path][a] {
						t.Errorf("/ui%s does not offer the action %q, which the role may call", pg.Path, a)
					}
				}
			}
		})
	}
}

// uiPrincipals signs up the matrix's people in fx's tenant: a user of
// each built-in tenant role, an operator user, a user of the fixtures'
// custom role, a Concierge scoped to villa-a.
func uiPrincipals(t *testing.T, n *uitest.Node, fx *uitest.Fixtures) []uiPrincipal {
	var ps []uiPrincipal
	for _, r := range roles.Builtins() {
		if r.ClusterWide() {
			ps = append(ps, uiPrincipal{name: r.Name(), user: n.User(t, "", "m-"+r.Name(), r.Name(), nil, true), perms: r.Permissions(), operator: true})
			continue
		}
		ps = append(ps, uiPrincipal{name: r.Name(), user: n.User(t, fx.Tenant, "m-"+r.Name(), r.Name(), nil, r.RequiresMFA()), perms: r.Permissions()})
	}
	if len(ps) != len(roles.Builtins()) {
		t.Fatalf("%d principals for %d built-in roles", len(ps), len(roles.Builtins()))
	}
	custom, err := n.OwnerAPI(fx.Tenant).Role(context.Background(), fx.Tenant, fx.Role)
	if err != nil {
		t.Fatalf("custom role: %v", err)
	}
	var perms roles.Set
	for _, s := range custom.Permissions {
		pm, err := roles.ParsePermission(s)
		if err != nil {
			t.Fatalf("custom role %s: %v", custom.Name, err)
		}
		perms = perms.Union(roles.SetOf(pm))
	}
	ps = append(ps, uiPrincipal{name: "custom-" + custom.Name, user: n.User(t, fx.Tenant, "m-custom", custom.Name, nil, custom.RequiresMFA), perms: perms})
	concierge, _ := roles.Builtin("concierge")
	ps = append(ps, uiPrincipal{name: "scoped-concierge", perms: concierge.Permissions(),
		user: n.User(t, fx.Tenant, "m-scoped", "concierge", map[string][]string{"property": {"villa-a"}}, false)})
	return ps
}

// instance is one page opened with fixture values.
type instance struct {
	page ui.Page
	url  string
}

// pageInstances are the URLs the matrix opens: every page with fx's
// values.
func pageInstances(t *testing.T, pages []ui.Page, fx *uitest.Fixtures) []instance {
	var out []instance
	for _, pg := range pages {
		path, err := fx.Fill(pg.Path)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, instance{page: pg, url: "/ui" + path})
	}
	return out
}

// findOp is the API route "METHOD /path".
func findOp(ops []api.Operation, route string) (api.Operation, bool) {
	method, path, _ := strings.Cut(route, " ")
	for _, op := range ops {
		if op.Method == method && op.Path == path {
			return op, true
		}
	}
	return api.Operation{}, false
}

// mayCall reports whether the API admits p to route, as its
// authorization decides (and the API's role × route matrix checks): a
// public route anyone; a session's route any user; a cluster route an
// operator whose role holds its permission; a tenant route a principal
// whose role holds it.
func mayCall(p uiPrincipal, ops []api.Operation, route string) bool {
	op, ok := findOp(ops, route)
	switch {
	case !ok:
		return false
	case op.Public, op.Session:
		return true
	case op.Cluster:
		return p.operator && p.perms.Has(op.Need)
	default:
		return p.perms.Has(op.Need)
	}
}

// navTenant is the tenant whose entries the page's navigation holds:
// the page's :tenant, else a tenant user's own; none for an operator
// outside a tenant.
func navTenant(pg ui.Page, p uiPrincipal, fx *uitest.Fixtures) string {
	if strings.Contains(pg.Path, ":tenant") || !p.operator {
		return fx.Tenant
	}
	return ""
}

// checkNav: the navigation is exactly the entries whose route p may
// call, in order.
func checkNav(t *testing.T, got *uitest.Page, p uiPrincipal, ops []api.Operation, tenant string) {
	t.Helper()
	var want []string
	for _, e := range ui.NavEntries() {
		if e.Tenant && tenant == "" {
			continue
		}
		if mayCall(p, ops, e.Need) {
			want = append(want, e.Href(tenant))
		}
	}
	if nav := got.NavLinks(); !slices.Equal(nav, want) {
		t.Errorf("%s: navigation\n got %v\nwant %v", got.Path, nav, want)
	}
}

// checkRefused: the page is the API's 403 problem for need: its detail
// names the permission (or the cluster), and the request id is shown.
func checkRefused(t *testing.T, got *uitest.Page, need string, ops []api.Operation) {
	t.Helper()
	op, _ := findOp(ops, need)
	text := got.Text()
	if got.Status != http.StatusForbidden {
		t.Errorf("%s: HTTP %d, want the API's 403 (the role may not call %q):\n%s", got.Path, got.Status, need, clipText(text))
		return
	}
	detail := "lacks the " + op.Need.String() + " permission"
	if op.Cluster {
		detail = "acts on the cluster"
	}
	if !strings.Contains(text, detail) {
		t.Errorf("%s: the 403 is not the API's refusal of %q (%q):\n%s", got.Path, need, detail, clipText(text))
	}
	if id := got.Header.Get("X-Request-Id"); id == "" || !strings.Contains(text, "Request id: "+id) {
		t.Errorf("%s: the refusal does not show its request id %q", got.Path, id)
	}
}

// checkDeclarations: every page's need and actions are routes of the
// API; tenant pages and the navigation's pages declare their need; each
// navigation entry needs what its page needs.
func checkDeclarations(t *testing.T, pages []ui.Page, ops []api.Operation) {
	t.Helper()
	byPath := map[string]ui.Page{}
	for _, pg := range pages {
		byPath[strings.TrimSuffix(pg.Path, "/")] = pg
		if pg.Need == "" && strings.HasPrefix(pg.Path, "/t/") {
			t.Errorf("/ui%s: a tenant page without need (the API route it reads)", pg.Path)
		}
		for _, r := range append([]string{pg.Need}, pg.Actions...) {
			if _, ok := findOp(ops, r); r != "" && !ok {
				t.Errorf("/ui%s declares %q, which is no route of the API (api.Operations)", pg.Path, r)
			}
		}
	}
	for _, e := range ui.NavEntries() {
		if _, ok := findOp(ops, e.Need); !ok {
			t.Errorf("navigation entry %q needs %q, which is no route of the API", e.Label, e.Need)
		}
		pg, ok := byPath[strings.TrimSuffix(e.Route(), "/")]
		switch {
		case !ok:
			t.Logf("navigation entry %q (%s): no page yet", e.Label, e.Route())
		case pg.Need != e.Need:
			t.Errorf("navigation entry %q needs %q, its page /ui%s %q", e.Label, e.Need, pg.Path, pg.Need)
		}
	}
}

// formsWithoutAPI are the actions of the POST forms in the page's
// <main> that do not say which API route they call (a GET form is a
// filter of a page, not an action).
func formsWithoutAPI(p *uitest.Page) []string {
	var out []string
	for _, m := range p.Elements("main") {
		var walk func(*html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode && n.Data == "form" && strings.EqualFold(uitest.Attr(n, "method"), "post") && uitest.Attr(n, "data-api") == "" {
				out = append(out, uitest.Attr(n, "action"))
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(m)
	}
	return out
}

func clipText(s string) string {
	if len(s) > 1500 {
		return s[:1500] + "…"
	}
	return s
}
