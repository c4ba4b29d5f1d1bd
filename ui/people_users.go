package ui

import (
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// usersData is a tenant's users page: every user with their role,
// scopes, status and second factor, and the create form.
type usersData struct {
	Users []client.User
	// More: the tenant has more users than the page shows.
	More  bool
	Roles []roleOption
	Form  userForm
	Error *client.Problem
	// Bootstrap: the person is an operator and the tenant has no Owner
	// user yet: the API lets them create it (and only then).
	Bootstrap bool
}

// userForm is the create form's input, kept when the API refuses it
// (never the password).
type userForm struct{ Username, Role, Scopes string }

// maxUsersShown bounds the users table: the API lists every user of the
// tenant (people, not records: a tenant has tens or hundreds).
const maxUsersShown = 500

func (u *UI) usersPage(r *req) error {
	return u.renderUsers(r, fiber.StatusOK, userForm{Role: "foh"}, nil)
}

func (u *UI) renderUsers(r *req, status int, form userForm, problem *client.Problem) error {
	users, err := r.api.Users(r.ctx, r.tenant())
	if err != nil {
		return err
	}
	slices.SortStableFunc(users, func(a, b client.User) int { return strings.Compare(a.Username, b.Username) })
	d := usersData{Users: users, Form: form, Error: problem}
	if len(d.Users) > maxUsersShown {
		d.Users, d.More = d.Users[:maxUsersShown], true
	}
	if d.Roles, err = u.roleOptions(r); err != nil {
		return err
	}
	if r.v.operator() && !u.may(r.v, "POST", "/tenants/:id/users") {
		t, err := r.api.Tenant(r.ctx, r.tenant())
		if err != nil {
			return err
		}
		d.Bootstrap = t.Bootstrapping
		if d.Bootstrap && form.Role == "foh" {
			d.Form.Role = "owner" // the operator's one user to create is the Owner
		}
	}
	return r.render(status, "people", "Users", d)
}

// roleOptions are the roles a user may be given: the built-in tenant
// roles, and the tenant's custom roles when the person may read them.
func (u *UI) roleOptions(r *req) ([]roleOption, error) {
	out := tenantRoles()
	if !u.may(r.v, "GET", "/tenants/:id/roles") {
		return out, nil
	}
	rs, err := r.api.Roles(r.ctx, r.tenant())
	if err != nil {
		return nil, err
	}
	for _, rl := range rs {
		if !rl.Builtin {
			title := rl.Title
			if title == "" {
				title = rl.Name
			}
			out = append(out, roleOption{Name: rl.Name, Title: title + " (custom)"})
		}
	}
	return out, nil
}

func (u *UI) createUser(r *req) error {
	f := userForm{Username: strings.TrimSpace(r.c.FormValue("username")), Role: strings.TrimSpace(r.c.FormValue("role")), Scopes: r.c.FormValue("scopes")}
	again := func(p *client.Problem, status int) error { return u.renderUsers(r, status, f, p) }
	scopes, err := parseScopes(f.Scopes)
	if err != nil {
		p := problemOf(fiber.StatusBadRequest, "Check the form", err.Error(), r.id)
		return again(&p, fiber.StatusBadRequest)
	}
	created, err := r.api.CreateUser(r.ctx, r.tenant(), client.NewUser{Username: f.Username, Password: r.c.FormValue("password"), Role: f.Role, Scopes: scopes})
	if err != nil {
		return u.refused(r, err, again)
	}
	return r.done(userURL(r.tenant(), created.ID), "User "+created.Username+" created with the role "+created.Role+". Give them the password over a separate channel.")
}

func userURL(tenant, uid string) string {
	return "/ui/t/" + urlPathEscape(tenant) + "/people/" + urlPathEscape(uid)
}

// userData is one user's page: their binding (role and scopes, with the
// form that changes it), status, second factor and sessions.
type userData struct {
	User     client.User
	Sessions []client.UserSession
	// SessionsShown: the person may list the user's sessions.
	SessionsShown bool
	Roles         []roleOption
	// Scopes is the scopes field: the user's, or what was typed.
	Scopes string
	Role   string
	Error  *client.Problem
	// Self: the page is the signed-in person's own.
	Self bool
}

func (u *UI) userPage(r *req) error {
	return u.renderUser(r, fiber.StatusOK, nil, nil)
}

// renderUser shows the user; typed, when not nil, is the binding form's
// input to show again (role, scopes) with the API's refusal.
func (u *UI) renderUser(r *req, status int, typed *[2]string, problem *client.Problem) error {
	uid := r.c.Params("uid")
	usr, err := r.api.User(r.ctx, r.tenant(), uid)
	if err != nil {
		return err
	}
	d := userData{User: usr, Role: usr.Role, Scopes: formatScopes(usr.Scopes), Error: problem,
		Self: r.v.session.Kind != "operator" && r.v.session.ID == usr.ID}
	if typed != nil {
		d.Role, d.Scopes = typed[0], typed[1]
	}
	if u.may(r.v, "GET", "/tenants/:id/users/:uid/sessions") {
		d.SessionsShown = true
		if d.Sessions, err = r.api.UserSessions(r.ctx, r.tenant(), uid); err != nil {
			return err
		}
		slices.SortStableFunc(d.Sessions, func(a, b client.UserSession) int { return b.CreatedAt.Compare(a.CreatedAt) })
	}
	if d.Roles, err = u.roleOptions(r); err != nil {
		return err
	}
	return r.render(status, "people_user", "User "+usr.Username, d)
}

// formatScopes writes scopes as the scopes field reads them (see
// parseScopes): one attribute per line, sorted.
func formatScopes(s map[string][]string) string {
	var lines []string
	for k, v := range s {
		lines = append(lines, k+": "+strings.Join(v, ", "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// updateUser changes the user's role and scopes (PATCH: both are sent,
// an empty scopes field removes every scope).
func (u *UI) updateUser(r *req) error {
	role, text := strings.TrimSpace(r.c.FormValue("role")), r.c.FormValue("scopes")
	again := func(p *client.Problem, status int) error { return u.renderUser(r, status, &[2]string{role, text}, p) }
	scopes, err := parseScopes(text)
	if err != nil {
		p := problemOf(fiber.StatusBadRequest, "Check the form", err.Error(), r.id)
		return again(&p, fiber.StatusBadRequest)
	}
	if scopes == nil {
		scopes = map[string][]string{}
	}
	usr, err := r.api.UpdateUser(r.ctx, r.tenant(), r.c.Params("uid"), client.UserPatch{Role: &role, Scopes: &scopes})
	if err != nil {
		return u.refused(r, err, again)
	}
	return r.done(userURL(r.tenant(), usr.ID), "User "+usr.Username+" now has the role "+usr.Role+"; the change applies to their next request.")
}

// userDid says what a user action did ("": no such action). The API's
// actions on a tenant user are the operator users' (operatorDid).
func userDid(action string) string { return operatorDid(action) }

func (u *UI) userAction(r *req) error {
	action := r.c.Params("action")
	what := userDid(action)
	if what == "" {
		return u.notFound(r.c)
	}
	usr, err := r.api.UserAction(r.ctx, r.tenant(), r.c.Params("uid"), action)
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderUser(r, status, nil, p) })
	}
	return r.done(userURL(r.tenant(), usr.ID), "User "+usr.Username+" "+what+".")
}

func (u *UI) revokeSessions(r *req) error {
	uid := r.c.Params("uid")
	n, err := r.api.RevokeUserSessions(r.ctx, r.tenant(), uid)
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderUser(r, status, nil, p) })
	}
	return r.done(userURL(r.tenant(), uid), plural(n, "session")+" revoked: the user is signed out everywhere.")
}

func (u *UI) revokeSession(r *req) error {
	uid, sid := r.c.Params("uid"), r.c.Params("session")
	if err := r.api.RevokeUserSession(r.ctx, r.tenant(), uid, sid); err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderUser(r, status, nil, p) })
	}
	return r.done(userURL(r.tenant(), uid), "Session "+sid+" revoked.")
}

// plural is "1 session", "2 sessions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
