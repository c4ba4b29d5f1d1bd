package ui

import (
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// navItem is one entry of the navigation: where it goes and the API
// route it needs (the person sees it only when their role may call it).
// Tenant entries' paths are below /ui/t/<tenant>.
type navItem struct {
	Group, Label, Path string
	Need               string // "METHOD /path" of the API's route table
	Tenant             bool
}

// navItems is the whole navigation, in order. Each page's route is in
// the area file that serves it (routes_*.go); tests check that every
// entry has a page and the role matrix of what each role sees.
var navItems = []navItem{
	{Group: "Cluster", Label: "Overview", Path: "/ui/cluster", Need: "GET /sys/status"},
	{Group: "Cluster", Label: "Tenants", Path: "/ui/tenants", Need: "GET /tenants"},
	{Group: "Cluster", Label: "Operators", Path: "/ui/operators", Need: "GET /sys/operators"},
	{Group: "Cluster", Label: "System audit", Path: "/ui/audit", Need: "GET /sys/audit"},

	{Group: "Tenant", Label: "Overview", Path: "/", Need: "GET /tenants/:id", Tenant: true},
	{Group: "Tenant", Label: "Keys", Path: "/keys", Need: "GET /tenants/:id/keys", Tenant: true},
	{Group: "Tenant", Label: "API keys", Path: "/apikeys", Need: "GET /tenants/:id/apikeys", Tenant: true},

	{Group: "Data", Label: "Collections", Path: "/data", Need: "GET /tenants/:id/collections", Tenant: true},
	{Group: "Data", Label: "Subjects", Path: "/subjects", Need: "GET /tenants/:id/subjects/:sid", Tenant: true},
	{Group: "Data", Label: "Recordings & files", Path: "/blobs", Need: "GET /tenants/:id/blobs", Tenant: true},

	{Group: "Audit", Label: "Audit log", Path: "/audit", Need: "GET /tenants/:id/audit", Tenant: true},

	{Group: "Privacy", Label: "Consent", Path: "/privacy/consent", Need: "GET /tenants/:id/purposes", Tenant: true},
	{Group: "Privacy", Label: "Requests", Path: "/privacy/requests", Need: "GET /tenants/:id/requests", Tenant: true},
	{Group: "Privacy", Label: "Retention", Path: "/privacy/retention", Need: "GET /tenants/:id/collections", Tenant: true},

	{Group: "People", Label: "Users", Path: "/people", Need: "GET /tenants/:id/users", Tenant: true},
	{Group: "People", Label: "Roles", Path: "/roles", Need: "GET /tenants/:id/roles", Tenant: true},
	{Group: "People", Label: "Single sign-on", Path: "/sso", Need: "GET /tenants/:id/sso", Tenant: true},
	{Group: "People", Label: "Break-glass", Path: "/breakglass", Need: "GET /tenants/:id/breakglass", Tenant: true},
}

// navLink is one rendered entry.
type navLink struct {
	Group, Label, Href string
	Current            bool
}

// nav is what the person of r sees: the entries their role allows, the
// tenant entries for tenant (none when "").
func (u *UI) nav(r *req, tenant string) []navLink {
	var out []navLink
	here := r.c.Path()
	for _, it := range navItems {
		if it.Tenant && tenant == "" {
			continue
		}
		if !u.mayAll(r.v, it.Need) {
			continue
		}
		href := navHref(it, tenant)
		cur := here == href || (it.Path != "/" && strings.HasPrefix(here, href+"/"))
		out = append(out, navLink{Group: it.Group, Label: it.Label, Href: href, Current: cur})
	}
	return out
}

// navHref is the address of the entry it (for tenant's pages when it is
// a tenant entry).
func navHref(it navItem, tenant string) string {
	if !it.Tenant {
		return it.Path
	}
	href := "/ui/t/" + urlPathEscape(tenant) + strings.TrimSuffix(it.Path, "/")
	if it.Path == "/" {
		href += "/"
	}
	return href
}

// routes are every page and action of the UI, by area.
func (u *UI) routes() []route {
	return slices.Concat(u.accountRoutes(), u.clusterRoutes(), u.tenantRoutes(), u.dataRoutes(), u.auditRoutes(), u.privacyRoutes(), u.peopleRoutes())
}

// home sends the person to their first page: the first entry of the
// navigation their role may open (nav's own check) — the cluster's for
// an operator, their tenant's for a tenant's user — or their account
// page when their role opens none.
func (u *UI) home(r *req) error {
	tenant := ""
	if !r.v.operator() {
		tenant = r.v.tenant()
	}
	for _, it := range navItems {
		if it.Tenant == (tenant != "") && u.mayAll(r.v, it.Need) {
			return r.c.Redirect(navHref(it, tenant), fiber.StatusSeeOther)
		}
	}
	return r.c.Redirect("/ui/account", fiber.StatusSeeOther)
}
