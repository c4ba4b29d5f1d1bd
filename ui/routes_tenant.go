package ui

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// tenantRoutes are the operator's tenant list and the pages of one
// tenant's administration: its overview, keys and API keys. Each action
// is the API call it names; the page only gathers the form.
func (u *UI) tenantRoutes() []route {
	return []route{
		{path: "/tenants", need: "GET /tenants", actions: []string{"POST /tenants"}, handle: u.tenantsPage},
		{path: "/tenants", post: true, handle: u.createTenant},
		{path: "/t/:tenant/", need: "GET /tenants/:id",
			actions: []string{"POST /tenants/:id/suspend", "POST /tenants/:id/resume", "DELETE /tenants/:id"}, handle: u.tenantPage},
		{path: "/t/:tenant/suspend", post: true, handle: u.suspendTenant},
		{path: "/t/:tenant/resume", post: true, handle: u.resumeTenant},
		{path: "/t/:tenant/delete", post: true, handle: u.deleteTenant},

		{path: "/t/:tenant/keys", need: "GET /tenants/:id/keys",
			actions: []string{"POST /tenants/:id/keys/rotate", "POST /tenants/:id/keys/purge-cache", "PUT /tenants/:id/keys/provider"}, handle: u.keysPage},
		{path: "/t/:tenant/keys/rotate", post: true, handle: u.rotateKeys},
		{path: "/t/:tenant/keys/purge-cache", post: true, handle: u.purgeKeyCache},
		{path: "/t/:tenant/keys/provider", post: true, handle: u.setKeyProvider},

		{path: "/t/:tenant/apikeys", need: "GET /tenants/:id/apikeys",
			actions: []string{"POST /tenants/:id/apikeys", "DELETE /tenants/:id/apikeys/:kid"}, handle: u.apiKeysPage},
		{path: "/t/:tenant/apikeys", post: true, handle: u.createAPIKey},
		{path: "/t/:tenant/apikeys/:kid/delete", post: true, handle: u.deleteAPIKey},
	}
}

// pageSize is the number of rows of a paginated list (the brief's bound
// of 50, so that a page stays light at any number of tenants).
const pageSize = 50

// tenantsData is the tenant list's: one page, the cursor links, and the
// create form (with what the person typed and the API's refusal when it
// refused).
type tenantsData struct {
	Tenants     []client.Tenant
	Next, First string
	Form        tenantForm
	Error       *client.Problem
}

// tenantForm is the create form's input, kept when the API refuses it.
// Vault credentials (token, secret id) are never sent back to the page.
type tenantForm struct {
	ID, DisplayName, Region string
	Vault                   vaultForm
}

// vaultForm is the key provider's fields (the create form's and the keys
// page's): Kind "age" (the cluster holds the root) or "vault" (a transit
// key in the customer's Vault, BYOK).
type vaultForm struct {
	Kind, Address, Mount, Key, AuthMethod, AuthMount, CACertPEM, RoleID string
}

func (u *UI) tenantsPage(r *req) error {
	return u.renderTenants(r, fiber.StatusOK, tenantForm{}, nil)
}

func (u *UI) renderTenants(r *req, status int, form tenantForm, problem *client.Problem) error {
	after := clip(r.c.Query("after"), 128)
	page, err := r.api.Tenants(r.ctx, pageSize, after)
	if err != nil {
		return err
	}
	d := tenantsData{Tenants: page.Tenants, Form: form, Error: problem}
	if page.Next != "" {
		d.Next = "/ui/tenants" + qs("after", page.Next)
	}
	if after != "" {
		d.First = "/ui/tenants"
	}
	return r.render(status, "tenants", "Tenants", d)
}

// formVault reads the key provider's fields of a form; secrets are
// returned apart so that they never reach a rendered page.
func formVault(c *fiber.Ctx) (vaultForm, client.KeyProvider) {
	f := vaultForm{
		Kind: strings.TrimSpace(c.FormValue("key_provider")), Address: strings.TrimSpace(c.FormValue("vault_address")),
		Mount: strings.TrimSpace(c.FormValue("vault_mount")), Key: strings.TrimSpace(c.FormValue("vault_key")),
		AuthMethod: strings.TrimSpace(c.FormValue("vault_auth_method")), AuthMount: strings.TrimSpace(c.FormValue("vault_auth_mount")),
		CACertPEM: c.FormValue("vault_ca_cert_pem"), RoleID: strings.TrimSpace(c.FormValue("vault_role_id")),
	}
	kp := client.KeyProvider{Kind: f.Kind}
	if f.Kind == "vault" {
		kp.Vault = &client.Vault{Address: f.Address, Mount: f.Mount, Key: f.Key, AuthMethod: f.AuthMethod, AuthMount: f.AuthMount,
			CACertPEM: f.CACertPEM, Token: c.FormValue("vault_token"), RoleID: f.RoleID, SecretID: c.FormValue("vault_secret_id")}
	}
	return f, kp
}

func (u *UI) createTenant(r *req) error {
	vf, kp := formVault(r.c)
	form := tenantForm{ID: strings.TrimSpace(r.c.FormValue("id")), DisplayName: strings.TrimSpace(r.c.FormValue("display_name")),
		Region: strings.TrimSpace(r.c.FormValue("region")), Vault: vf}
	t, err := r.api.CreateTenant(r.ctx, client.NewTenant{ID: form.ID, DisplayName: form.DisplayName, Region: form.Region, KeyProvider: kp})
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderTenants(r, status, form, p) })
	}
	return r.done("/ui/t/"+urlPathEscape(t.ID)+"/", "Tenant "+t.ID+" created in region "+t.Region+". Create its first API key or Owner next.")
}

// refused re-renders a form's page with the API's refusal (its problem,
// its status) when err is one; anything else fails the request.
func (u *UI) refused(r *req, err error, again func(p *client.Problem, status int) error) error {
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status == fiber.StatusUnauthorized || ae.Status < 400 {
		return err
	}
	return again(problemFrom(err, r.id), ae.Status)
}

// tenantData is a tenant's overview.
type tenantData struct {
	Tenant client.Tenant
	Error  *client.Problem
	// Confirm is what the person typed in the delete confirmation.
	Confirm string
}

func (u *UI) tenantPage(r *req) error {
	return u.renderTenant(r, fiber.StatusOK, nil, "")
}

func (u *UI) renderTenant(r *req, status int, problem *client.Problem, confirm string) error {
	t, err := r.api.Tenant(r.ctx, r.tenant())
	if err != nil {
		return err
	}
	return r.render(status, "tenant", "Tenant "+t.ID, tenantData{Tenant: t, Error: problem, Confirm: confirm})
}

func (u *UI) suspendTenant(r *req) error {
	t, err := r.api.SuspendTenant(r.ctx, r.tenant())
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderTenant(r, status, p, "") })
	}
	return r.done("/ui/t/"+urlPathEscape(t.ID)+"/", "Tenant "+t.ID+" suspended: its principals are refused until you resume it; data and keys are kept.")
}

func (u *UI) resumeTenant(r *req) error {
	t, err := r.api.ResumeTenant(r.ctx, r.tenant())
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderTenant(r, status, p, "") })
	}
	return r.done("/ui/t/"+urlPathEscape(t.ID)+"/", "Tenant "+t.ID+" resumed.")
}

// deleteTenant deletes the tenant once the person typed its id: the
// confirmation is the UI's (the API deletes on request), checked here
// because the script's confirm() is only an enhancement.
func (u *UI) deleteTenant(r *req) error {
	id := r.tenant()
	typed := strings.TrimSpace(r.c.FormValue("confirm"))
	if typed != id {
		p := problemOf(fiber.StatusBadRequest, "Not deleted", "Type the tenant id, "+id+", to confirm the deletion.", r.id)
		return u.renderTenant(r, fiber.StatusBadRequest, &p, typed)
	}
	if err := r.api.DeleteTenant(r.ctx, id); err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderTenant(r, status, p, typed) })
	}
	return r.done("/ui/tenants", "Tenant "+id+" deleted with all of its data.")
}
