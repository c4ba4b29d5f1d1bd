package ui

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// ---- a tenant's single sign-on settings ----

// ssoData is a tenant's single sign-on page: the settings as stored
// (never the client secret), the form that changes them, and what the
// last test found.
type ssoData struct {
	// Configured: the tenant has settings (Config is them).
	Configured bool
	Config     client.SSOConfig
	Form       ssoForm
	Roles      []roleOption
	Test       *client.SSOTestResult
	Error      *client.Problem
	// Callback is where the provider sends people back to the UI: the
	// redirect URL to register with it for browser sign-in.
	Callback string
}

// ssoForm is the form's fields as text.
type ssoForm struct {
	Preset, Issuer, DiscoveryURL, EntraTenant, AllowedTenants string
	ClientID, RedirectURL, Scopes, Mappings, DefaultRole      string
	JIT, TrustIdP                                             bool
	AMR, ACR                                                  string
}

func formOfSSO(c client.SSOConfig) ssoForm {
	s := c.SSOSettings
	return ssoForm{Preset: s.Preset, Issuer: s.Issuer, DiscoveryURL: s.DiscoveryURL, EntraTenant: s.EntraTenant,
		AllowedTenants: strings.Join(s.AllowedTenants, ", "), ClientID: s.ClientID, RedirectURL: s.RedirectURL,
		Scopes: strings.Join(s.Scopes, " "), Mappings: formatMappings(s.Mappings), DefaultRole: s.DefaultRole,
		JIT: s.JIT, TrustIdP: s.MFA.TrustIdP, AMR: strings.Join(s.MFA.AMR, ", "), ACR: strings.Join(s.MFA.ACR, ", ")}
}

func (u *UI) ssoPage(r *req) error {
	return u.renderSSO(r, fiber.StatusOK, nil, nil, nil)
}

// renderSSO shows the page; form, when not nil, is what was typed (shown
// again with the API's refusal).
func (u *UI) renderSSO(r *req, status int, form *ssoForm, test *client.SSOTestResult, problem *client.Problem) error {
	d := ssoData{Test: test, Error: problem, Callback: r.c.BaseURL() + "/ui/sso/callback"}
	cfg, err := r.api.SSO(r.ctx, r.tenant())
	switch {
	case err == nil:
		d.Configured, d.Config, d.Form = true, cfg, formOfSSO(cfg)
	case isStatus(err, fiber.StatusNotFound):
		d.Form = ssoForm{RedirectURL: d.Callback, Scopes: "email profile", JIT: true}
	default:
		return err
	}
	if form != nil {
		d.Form = *form
	}
	if d.Roles, err = u.roleOptions(r); err != nil {
		return err
	}
	return r.render(status, "people_sso", "Single sign-on", d)
}

func (u *UI) configureSSO(r *req) error {
	f := ssoForm{Preset: r.c.FormValue("preset"), Issuer: r.c.FormValue("issuer"), DiscoveryURL: r.c.FormValue("discovery_url"),
		EntraTenant: r.c.FormValue("entra_tenant"), AllowedTenants: r.c.FormValue("allowed_tenants"), ClientID: r.c.FormValue("client_id"),
		RedirectURL: r.c.FormValue("redirect_url"), Scopes: r.c.FormValue("scopes"), Mappings: r.c.FormValue("mappings"),
		DefaultRole: r.c.FormValue("default_role"), JIT: r.c.FormValue("jit") == "on", TrustIdP: r.c.FormValue("trust_idp") == "on",
		AMR: r.c.FormValue("amr"), ACR: r.c.FormValue("acr")}
	again := func(p *client.Problem, status int) error { return u.renderSSO(r, status, &f, nil, p) }
	maps, err := parseMappings(f.Mappings)
	if err != nil {
		p := problemOf(fiber.StatusBadRequest, "Check the form", err.Error(), r.id)
		return again(&p, fiber.StatusBadRequest)
	}
	s := client.SSOSettings{Preset: strings.TrimSpace(f.Preset), Issuer: strings.TrimSpace(f.Issuer), DiscoveryURL: strings.TrimSpace(f.DiscoveryURL),
		EntraTenant: strings.TrimSpace(f.EntraTenant), AllowedTenants: splitList(f.AllowedTenants), ClientID: strings.TrimSpace(f.ClientID),
		ClientSecret: r.c.FormValue("client_secret"), RedirectURL: strings.TrimSpace(f.RedirectURL), Scopes: strings.Fields(f.Scopes),
		Mappings: maps, DefaultRole: strings.TrimSpace(f.DefaultRole), JIT: f.JIT,
		MFA: client.SSOMFAPolicy{TrustIdP: f.TrustIdP, AMR: splitList(f.AMR), ACR: splitList(f.ACR)}}
	if _, err := r.api.ConfigureSSO(r.ctx, r.tenant(), s); err != nil {
		return u.refused(r, err, again)
	}
	return r.done("/ui/t/"+urlPathEscape(r.tenant())+"/sso", "Single sign-on settings saved. Test them below.")
}

// testSSO has the node discover the provider afresh and check the
// client secret, and shows what it found on the page.
func (u *UI) testSSO(r *req) error {
	res, err := r.api.TestSSO(r.ctx, r.tenant())
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderSSO(r, status, nil, nil, p) })
	}
	return u.renderSSO(r, fiber.StatusOK, nil, &res, nil)
}

func (u *UI) deleteSSO(r *req) error {
	if err := r.api.DeleteSSO(r.ctx, r.tenant()); err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderSSO(r, status, nil, nil, p) })
	}
	return r.done("/ui/t/"+urlPathEscape(r.tenant())+"/sso", "Single sign-on removed: the tenant's people sign in with their passwords.")
}

// splitList splits a comma- or space-separated field.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// Bounds of the mappings field: what a person types by hand.
const (
	maxMappingLines = 64
	maxMappingText  = 16 << 10
)

// parseMappings reads the mappings field: one mapping per line,
//
//	claim = value -> role; attribute: v1, v2; other: v3
//
// (a person whose claim holds value gets role, scoped to the attributes
// after it, which are optional). Blank lines are skipped. The API checks
// the names, the role and the scopes; this only splits the text.
func parseMappings(text string) ([]client.SSOMapping, error) {
	if len(text) > maxMappingText {
		return nil, fmt.Errorf("mappings: at most %d characters", maxMappingText)
	}
	var out []client.SSOMapping
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(out) == maxMappingLines {
			return nil, fmt.Errorf("mappings: at most %d lines", maxMappingLines)
		}
		head, rest, _ := strings.Cut(line, ";")
		match, role, ok := strings.Cut(head, "->")
		claim, value, ok2 := strings.Cut(match, "=")
		m := client.SSOMapping{Claim: strings.TrimSpace(claim), Value: strings.TrimSpace(value), Role: strings.TrimSpace(role)}
		if !ok || !ok2 || m.Claim == "" || m.Value == "" || m.Role == "" {
			return nil, fmt.Errorf("mappings, line %d: write claim = value -> role (then ; attribute: values, if any)", i+1)
		}
		if strings.TrimSpace(rest) != "" {
			scopes, err := parseScopes(strings.ReplaceAll(rest, ";", "\n"))
			if err != nil {
				return nil, fmt.Errorf("mappings, line %d: %w", i+1, err)
			}
			m.Scopes = scopes
		}
		out = append(out, m)
	}
	return out, nil
}

// formatMappings writes mappings as parseMappings reads them.
func formatMappings(ms []client.SSOMapping) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s = %s -> %s", m.Claim, m.Value, m.Role)
		keys := make([]string, 0, len(m.Scopes))
		for k := range m.Scopes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "; %s: %s", k, strings.Join(m.Scopes[k], ", "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// ---- signing in with single sign-on ----

// ssoCookie holds the binding of a sign-in started here until the
// provider sends the browser back: SameSite=Lax, because that return is
// a navigation from the provider's site, which a Strict cookie would not
// be sent with.
const ssoCookie = "custos-sso"

// ssoStart sends the browser to the tenant's provider (GET /ui/sso?tenant=).
// The flow is the API's: it comes back to the tenant's redirect URL,
// which must be this node's /ui/sso/callback for a browser sign-in.
func (u *UI) ssoStart(r *req) error {
	tenant := strings.TrimSpace(clip(r.c.Query("tenant"), 128))
	if tenant == "" {
		return r.c.Redirect("/ui/login"+qs("why", "Enter your tenant to continue with single sign-on."), fiber.StatusSeeOther)
	}
	st, err := r.api.StartSSO(r.ctx, tenant, "")
	if err != nil {
		return u.loginRefused(r, err, tenant)
	}
	maxAge := max(1, int(st.ExpiresAt.Sub(u.now()).Seconds()))
	r.c.Cookie(&fiber.Cookie{Name: u.cookieName(ssoCookie), Value: st.Binding, Path: "/", MaxAge: maxAge,
		Secure: u.deps.Secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode})
	return r.c.Redirect(st.AuthURL, fiber.StatusFound)
}

// ssoCallback completes the sign-in the provider sent the browser back
// from, with the binding of the browser that started it, and opens the
// session. It answers a page that moves on to the start page rather than
// a redirect: the session cookie is SameSite=Strict, and a browser does
// not send it on a redirect that began on the provider's site.
func (u *UI) ssoCallback(r *req) error {
	binding := r.c.Cookies(u.cookieName(ssoCookie))
	r.c.Cookie(&fiber.Cookie{Name: u.cookieName(ssoCookie), Value: "", Path: "/", MaxAge: -1, Expires: time.Unix(0, 0),
		Secure: u.deps.Secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode})
	cb := client.SSOCallback{State: clip(r.c.Query("state"), 1024), Code: clip(r.c.Query("code"), 4096), Binding: binding,
		Error: clip(r.c.Query("error"), 256)}
	if cb.State == "" {
		return u.loginRefused(r, &userError{status: fiber.StatusBadRequest, title: "Sign in again",
			detail: "The identity provider's answer has no state: start the single sign-on again."}, "")
	}
	g, err := r.api.CompleteSSO(r.ctx, cb)
	if err != nil {
		return u.loginRefused(r, err, "")
	}
	u.saveSession(r.c, stored{Access: g.AccessToken, Refresh: g.RefreshToken})
	next := "/ui/"
	if g.MFAEnrolmentRequired {
		next = "/ui/mfa"
	}
	return r.render(fiber.StatusOK, "sso_done", "Signed in", ssoDoneData{Next: next})
}

// ssoDoneData is the page after a single sign-on.
type ssoDoneData struct{ Next string }

// loginRefused shows the login page with the refusal of a single
// sign-on: the API's problem, or the UI's own; anything else is logged.
func (u *UI) loginRefused(r *req, err error, tenant string) error {
	var p *client.Problem
	var ue *userError
	var ae *client.Error
	switch {
	case errors.As(err, &ue):
		pp := problemOf(ue.status, ue.title, ue.detail, r.id)
		p = &pp
	case errors.As(err, &ae):
		p = problemFrom(err, r.id)
	default:
		u.log.Error("ui: single sign-on failed", "request_id", r.id, "error", err)
		p = problemFrom(err, r.id)
	}
	status := p.Status
	if status < 400 {
		status = fiber.StatusBadGateway
	}
	return r.render(status, "login", "Sign in", loginData{Next: "/ui/", Tenant: tenant, Error: p, DevToken: u.deps.DevTokenLogin})
}
