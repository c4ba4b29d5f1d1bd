package ui

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/identity/roles"
)

// rolesData is a tenant's roles page: the built-in roles and the
// tenant's own, what each may do and how it reads each classification of
// field, and the form that defines a custom role.
type rolesData struct {
	Roles []client.Role
	// Permissions are those a tenant role may hold (the Owner's: every
	// permission but the Operator's own), the form's checkboxes.
	Permissions     []string
	Classifications []string
	Form            roleForm
	Error           *client.Problem
}

// roleForm is the create form's input, kept when the API refuses it.
type roleForm struct {
	Name, Title string
	Permissions map[string]bool
	Visibility  map[string]string
	MFA         bool
}

func (u *UI) rolesPage(r *req) error {
	f := roleForm{Visibility: map[string]string{"pii": "masked", "sensitive": "masked", "internal": "clear"}}
	return u.renderRoles(r, fiber.StatusOK, f, nil)
}

func (u *UI) renderRoles(r *req, status int, f roleForm, problem *client.Problem) error {
	rs, err := r.api.Roles(r.ctx, r.tenant())
	if err != nil {
		return err
	}
	d := rolesData{Roles: rs, Form: f, Error: problem}
	owner, _ := roles.Builtin("owner")
	for _, p := range roles.Permissions() {
		if owner.Allows(p) {
			d.Permissions = append(d.Permissions, p.String())
		}
	}
	for _, c := range roles.Classifications() {
		d.Classifications = append(d.Classifications, string(c))
	}
	return r.render(status, "people_roles", "Roles", d)
}

func (u *UI) createRole(r *req) error {
	if n := r.c.Request().PostArgs().Len(); n > 2*len(roles.Permissions())+16 {
		return badForm("The form has more fields than a role has permissions.")
	}
	f := roleForm{Name: strings.TrimSpace(r.c.FormValue("name")), Title: strings.TrimSpace(r.c.FormValue("title")),
		Permissions: map[string]bool{}, Visibility: map[string]string{}, MFA: r.c.FormValue("mfa") == "on"}
	cr := client.CustomRole{Name: f.Name, Title: f.Title, MFA: f.MFA, Permissions: []string{}, Visibility: f.Visibility}
	for _, v := range r.c.Request().PostArgs().PeekMulti("permission") {
		p := string(v)
		if !f.Permissions[p] {
			f.Permissions[p] = true
			cr.Permissions = append(cr.Permissions, p)
		}
	}
	for _, c := range roles.Classifications() {
		f.Visibility[string(c)] = strings.TrimSpace(r.c.FormValue("visibility_" + string(c)))
	}
	created, err := r.api.CreateRole(r.ctx, r.tenant(), cr)
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderRoles(r, status, f, p) })
	}
	return r.done("/ui/t/"+urlPathEscape(r.tenant())+"/roles", "Role "+created.Name+" defined: give it to users on their page.")
}
