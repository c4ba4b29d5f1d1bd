package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/identity/roles"
)

// apiKeysData is a tenant's API keys page. Created is the key the last
// form made: its token is shown this once (the page is never cached and
// the token is in no URL).
type apiKeysData struct {
	Keys    []client.APIKey
	Roles   []roleOption
	Created *client.APIKey
	Form    apiKeyForm
	Error   *client.Problem
	// Bootstrap: the person is an operator and the tenant is still being
	// set up (no Owner user yet), so the API lets them create its first
	// keys though the Operator role does not hold apikeys:create.
	Bootstrap bool
}

// roleOption is a built-in tenant role a key may be bound to.
type roleOption struct{ Name, Title string }

// apiKeyForm is the create form's input, kept when the API refuses it.
type apiKeyForm struct {
	Name, Role, Scopes, Expires, ClientCertCN string
}

// tenantRoles are the built-in tenant roles, in the table's order.
func tenantRoles() []roleOption {
	var out []roleOption
	for _, r := range roles.Builtins() {
		if !r.ClusterWide() {
			out = append(out, roleOption{Name: r.Name(), Title: r.Title()})
		}
	}
	return out
}

func (u *UI) apiKeysPage(r *req) error {
	return u.renderAPIKeys(r, fiber.StatusOK, apiKeysData{Form: apiKeyForm{Role: "read-only"}})
}

func (u *UI) renderAPIKeys(r *req, status int, d apiKeysData) error {
	list, err := r.api.APIKeys(r.ctx, r.tenant())
	if err != nil {
		return err
	}
	d.Keys, d.Roles = list.APIKeys, tenantRoles()
	if r.v.operator() && !u.may(r.v, "POST", "/tenants/:id/apikeys") {
		// The API tells an operator whether the tenant still has no Owner
		// user: then it accepts the operator's first keys.
		t, err := r.api.Tenant(r.ctx, r.tenant())
		if err != nil {
			return err
		}
		d.Bootstrap = t.Bootstrapping
	}
	slices.SortStableFunc(d.Keys, func(a, b client.APIKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return r.render(status, "apikeys", "API keys", d)
}

func (u *UI) createAPIKey(r *req) error {
	f := apiKeyForm{Name: strings.TrimSpace(r.c.FormValue("name")), Role: strings.TrimSpace(r.c.FormValue("role")),
		Scopes: r.c.FormValue("scopes"), Expires: strings.TrimSpace(r.c.FormValue("expires")), ClientCertCN: strings.TrimSpace(r.c.FormValue("client_cert_cn"))}
	again := func(p *client.Problem, status int) error {
		return u.renderAPIKeys(r, status, apiKeysData{Form: f, Error: p})
	}
	scopes, err := parseScopes(f.Scopes)
	if err != nil {
		p := problemOf(fiber.StatusBadRequest, "Check the form", err.Error(), r.id)
		return again(&p, fiber.StatusBadRequest)
	}
	k := client.NewAPIKey{Name: f.Name, Role: f.Role, Scopes: scopes, ClientCertCN: f.ClientCertCN}
	if f.Expires != "" {
		day, err := time.Parse(time.DateOnly, f.Expires)
		if err != nil {
			p := problemOf(fiber.StatusBadRequest, "Check the form", "Expires must be a date (YYYY-MM-DD).", r.id)
			return again(&p, fiber.StatusBadRequest)
		}
		end := day.Add(24*time.Hour - time.Second) // the end of that day, UTC
		k.ExpiresAt = &end
	}
	created, err := r.api.CreateAPIKey(r.ctx, r.tenant(), k)
	if err != nil {
		return u.refused(r, err, again)
	}
	return u.renderAPIKeys(r, fiber.StatusOK, apiKeysData{Created: &created, Form: apiKeyForm{Role: "read-only"}})
}

func (u *UI) deleteAPIKey(r *req) error {
	kid := r.c.Params("kid")
	if err := r.api.DeleteAPIKey(r.ctx, r.tenant(), kid); err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error {
			return u.renderAPIKeys(r, status, apiKeysData{Form: apiKeyForm{Role: "read-only"}, Error: p})
		})
	}
	return r.done("/ui/t/"+urlPathEscape(r.tenant())+"/apikeys", "API key "+kid+" deleted: it is refused from now on.")
}

// Bounds of the scopes field: what a person types by hand.
const (
	maxScopeLines  = 32
	maxScopeValues = 64
	maxScopeText   = 4096
)

// parseScopes reads the scopes field: one attribute per line, its name,
// a colon or an equals sign, and its values separated by commas
// ("villa: villa-a, villa-b"). Blank lines are skipped; an attribute
// named twice gathers its values. Empty text is no scope (nil).
func parseScopes(text string) (map[string][]string, error) {
	if len(text) > maxScopeText {
		return nil, fmt.Errorf("scopes: at most %d characters", maxScopeText)
	}
	var out map[string][]string
	lines := 0
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if lines++; lines > maxScopeLines {
			return nil, fmt.Errorf("scopes: at most %d lines", maxScopeLines)
		}
		sep := strings.IndexAny(line, ":=")
		if sep < 0 {
			return nil, fmt.Errorf("scopes, line %d: write attribute: value, value", i+1)
		}
		name := strings.TrimSpace(line[:sep])
		if name == "" {
			return nil, fmt.Errorf("scopes, line %d: the attribute's name is missing", i+1)
		}
		var values []string
		for _, v := range strings.Split(line[sep+1:], ",") {
			if v = strings.TrimSpace(v); v != "" {
				values = append(values, v)
			}
		}
		if len(values) == 0 {
			return nil, fmt.Errorf("scopes, line %d: %s has no value", i+1, name)
		}
		if out == nil {
			out = map[string][]string{}
		}
		out[name] = append(out[name], values...)
		if len(out[name]) > maxScopeValues {
			return nil, fmt.Errorf("scopes: %s has more than %d values", name, maxScopeValues)
		}
	}
	return out, nil
}
