package api

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/sso"
)

// SSO is single sign-on through each tenant's OpenID Connect provider;
// *sso.Service implements it.
type SSO interface {
	Configure(ctx context.Context, who audit.Principal, tenant string, in sso.Settings) (sso.Config, error)
	Get(ctx context.Context, tenant string) (sso.Config, error)
	Delete(ctx context.Context, who audit.Principal, tenant string) error
	Test(ctx context.Context, who audit.Principal, tenant string) (sso.TestResult, error)
	Start(ctx context.Context, tenant, redirectURI string) (sso.Start, error)
	Callback(ctx context.Context, who audit.Principal, in sso.CallbackInput) (sso.Session, error)
}

var _ SSO = (*sso.Service)(nil)

// ssoCookie carries a browser's sign-in binding from the start to the
// callback (see sso.Start.Binding): HttpOnly, SameSite=Lax (the callback
// is a top-level navigation from the provider's site, which a Strict
// cookie would not follow), scoped to the callback's path, and gone after
// the sign-in's lifetime or its callback.
const ssoCookie = "custos_oidc"

const ssoCallbackPath = "/v1/auth/oidc/callback"

// Parameters of the sign-in routes.
var (
	// urlText is a URL a client passes (the service checks it).
	urlText = &paramType{schema: "string", reason: "must be 1 to 2048 bytes", parse: func(v string) (any, bool) {
		return v, v != "" && len(v) <= 2048
	}}
	// oauthText is a value a provider appends to its redirect: 1 to
	// 4096 bytes.
	oauthText = &paramType{schema: "string", reason: "must be 1 to 4096 bytes", parse: func(v string) (any, bool) {
		return v, v != "" && len(v) <= 4096
	}}
)

// ssoRoutes are the tenant's single sign-on settings and the sign-in
// flow. The settings are a security setting of the tenant (who may sign
// in with which role): settings:update, the Owner's. Testing them makes
// the node call the provider: settings:update too. Starting and
// completing a sign-in are public: the person has no token yet.
func (s *server) ssoRoutes() []route {
	get, post, put, del := fiber.MethodGet, fiber.MethodPost, fiber.MethodPut, fiber.MethodDelete
	settings := func(a roles.Action) access { return needs(roles.P(roles.Settings, a)) }
	tenant := params(tenantPath)
	// What providers add to the redirect besides code and state
	// (OAuth 2.0 errors, RFC 9207's iss, Google's and Entra's extras):
	// accepted, and all but error and iss ignored.
	extras := []param{query("error", oauthText), query("error_description", oauthText), query("error_uri", oauthText),
		query("iss", oauthText), query("session_state", oauthText), query("scope", oauthText), query("authuser", oauthText),
		query("prompt", oauthText), query("hd", oauthText)}
	return []route{
		{method: put, path: "/tenants/:id/sso", access: settings(roles.Update), params: tenant, body: jsonBody[sso.Settings](true), existing: true, handle: s.putSSO},
		{method: get, path: "/tenants/:id/sso", access: settings(roles.Read), params: tenant, body: noBody, existing: true, handle: s.getSSO},
		{method: del, path: "/tenants/:id/sso", access: settings(roles.Update), params: tenant, body: noBody, existing: true, handle: s.deleteSSO},
		{method: post, path: "/tenants/:id/sso/test", access: settings(roles.Update), params: tenant, body: noBody, existing: true, handle: s.testSSO},

		{method: get, path: "/auth/oidc/start", access: public, body: noBody, handle: s.startSSO,
			params: params(required("tenant", tenantIDType), query("redirect_uri", urlText), query("redirect", boolType))},
		{method: get, path: "/auth/oidc/callback", access: public, body: noBody, handle: s.ssoCallbackGet,
			params: append(params(required("state", oauthText), query("code", oauthText)), extras...)},
		{method: post, path: "/auth/oidc/callback", access: public, body: jsonBody[client.SSOCallback](true), handle: s.ssoCallbackPost},
	}
}

func (s *server) putSSO(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	cfg, err := s.deps.SSO.Configure(ctx, in.who, in.tenant, *bodyOf[sso.Settings](in))
	if err != nil {
		return fmt.Errorf("api: configure sso of %q: %w", in.tenant, err)
	}
	return c.JSON(cfg)
}

func (s *server) getSSO(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	cfg, err := s.deps.SSO.Get(ctx, in.tenant)
	if err != nil {
		return fmt.Errorf("api: sso of %q: %w", in.tenant, err)
	}
	return c.JSON(cfg)
}

func (s *server) deleteSSO(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.SSO.Delete(ctx, in.who, in.tenant); err != nil {
		return fmt.Errorf("api: delete sso of %q: %w", in.tenant, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) testSSO(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	res, err := s.deps.SSO.Test(ctx, in.who, in.tenant)
	if err != nil {
		return fmt.Errorf("api: test sso of %q: %w", in.tenant, err)
	}
	return c.JSON(res)
}

// startSSO begins a sign-in. A client that handles the redirect itself
// (the CLI) gets the authorization URL, the state and the binding as
// JSON; a browser (redirect=true) is sent to the provider, the binding in
// a cookie only the callback path receives.
func (s *server) startSSO(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	st, err := s.deps.SSO.Start(ctx, in.str("tenant"), in.str("redirect_uri"))
	if err != nil {
		return fmt.Errorf("api: start sso: %w", err)
	}
	if !in.flag("redirect") {
		return c.JSON(st)
	}
	c.Cookie(&fiber.Cookie{Name: ssoCookie, Value: st.Binding, Path: ssoCallbackPath, Expires: st.ExpiresAt,
		MaxAge: max(1, int(time.Until(st.ExpiresAt).Seconds())), Secure: c.Protocol() == "https", HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode})
	return c.Redirect(st.AuthURL, fiber.StatusFound)
}

// ssoCallbackGet is the provider's redirect through the browser; the
// binding is the cookie startSSO set, which it clears.
func (s *server) ssoCallbackGet(c *fiber.Ctx, in *input) error {
	c.Cookie(&fiber.Cookie{Name: ssoCookie, Value: "", Path: ssoCallbackPath, MaxAge: -1, Expires: time.Unix(0, 0),
		Secure: c.Protocol() == "https", HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode})
	return s.ssoCallback(c, sso.CallbackInput{State: in.str("state"), Code: in.str("code"), Binding: c.Cookies(ssoCookie),
		Error: in.str("error"), Issuer: in.str("iss")})
}

// ssoCallbackPost is the redirect relayed by a client that holds the
// binding (the CLI).
func (s *server) ssoCallbackPost(c *fiber.Ctx, in *input) error {
	req := bodyOf[client.SSOCallback](in)
	return s.ssoCallback(c, sso.CallbackInput{State: req.State, Code: req.Code, Binding: req.Binding, Error: req.Error})
}

func (s *server) ssoCallback(c *fiber.Ctx, in sso.CallbackInput) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	sess, err := s.deps.SSO.Callback(ctx, audit.Principal{RequestID: requestID(c), Source: clipN(c.IP(), 64)}, in)
	if err != nil {
		return fmt.Errorf("api: sso callback: %w", err)
	}
	return c.JSON(sess)
}
