package ui

// peopleRoutes are the pages of the people area: a tenant's users (their
// role, scopes, second factor and sessions), its roles, its single
// sign-on settings and its break-glass grants; and the single sign-on
// itself (public: the person has no session yet). Each action is the API
// call it names; the page only gathers the form.
func (u *UI) peopleRoutes() []route {
	user := []string{"PATCH /tenants/:id/users/:uid",
		"POST /tenants/:id/users/:uid/disable", "POST /tenants/:id/users/:uid/enable",
		"POST /tenants/:id/users/:uid/reset-mfa", "POST /tenants/:id/users/:uid/unlock",
		"DELETE /tenants/:id/users/:uid/sessions", "DELETE /tenants/:id/users/:uid/sessions/:session"}
	return []route{
		{path: "/t/:tenant/people", need: "GET /tenants/:id/users", actions: []string{"POST /tenants/:id/users"}, handle: u.usersPage},
		{path: "/t/:tenant/people", post: true, handle: u.createUser},
		{path: "/t/:tenant/people/:uid", need: "GET /tenants/:id/users/:uid", actions: user, handle: u.userPage},
		{path: "/t/:tenant/people/:uid/binding", post: true, handle: u.updateUser},
		{path: "/t/:tenant/people/:uid/sessions/revoke", post: true, handle: u.revokeSessions},
		{path: "/t/:tenant/people/:uid/sessions/:session/revoke", post: true, handle: u.revokeSession},
		{path: "/t/:tenant/people/:uid/:action", post: true, handle: u.userAction},

		{path: "/t/:tenant/roles", need: "GET /tenants/:id/roles", actions: []string{"POST /tenants/:id/roles"}, handle: u.rolesPage},
		{path: "/t/:tenant/roles", post: true, handle: u.createRole},

		{path: "/t/:tenant/sso", need: "GET /tenants/:id/sso",
			actions: []string{"PUT /tenants/:id/sso", "POST /tenants/:id/sso/test", "DELETE /tenants/:id/sso"}, handle: u.ssoPage},
		{path: "/t/:tenant/sso", post: true, handle: u.configureSSO},
		{path: "/t/:tenant/sso/test", post: true, handle: u.testSSO},
		{path: "/t/:tenant/sso/delete", post: true, handle: u.deleteSSO},

		{path: "/t/:tenant/breakglass", need: "GET /tenants/:id/breakglass",
			actions: []string{"POST /tenants/:id/breakglass", "POST /tenants/:id/breakglass/:gid/approve",
				"POST /tenants/:id/breakglass/:gid/revoke", "PUT /tenants/:id/breakglass-policy"}, handle: u.breakGlassPage},
		{path: "/t/:tenant/breakglass", post: true, handle: u.requestBreakGlass},
		{path: "/t/:tenant/breakglass/policy", post: true, handle: u.setBreakGlassPolicy},
		{path: "/t/:tenant/breakglass/:gid/:action", post: true, handle: u.breakGlassAction},

		{path: "/sso", public: true, handle: u.ssoStart},
		{path: "/sso/callback", public: true, handle: u.ssoCallback},
	}
}
