package client

import (
	"context"
	"net/url"
	"time"
)

// ---- single sign-on ----

// SSOSettings are a tenant's OpenID Connect settings, as PUT
// /v1/tenants/{id}/sso takes them (see openapi.json's SSOSettings).
type SSOSettings struct {
	Preset         string       `json:"preset,omitempty"`
	Issuer         string       `json:"issuer,omitempty"`
	DiscoveryURL   string       `json:"discovery_url,omitempty"`
	EntraTenant    string       `json:"entra_tenant,omitempty"`
	AllowedTenants []string     `json:"allowed_tenants,omitempty"`
	ClientID       string       `json:"client_id"`
	ClientSecret   string       `json:"client_secret,omitempty"` // write-only
	RedirectURL    string       `json:"redirect_url"`
	Scopes         []string     `json:"scopes,omitempty"`
	Mappings       []SSOMapping `json:"mappings,omitempty"`
	DefaultRole    string       `json:"default_role,omitempty"`
	JIT            bool         `json:"jit"`
	MFA            SSOMFAPolicy `json:"mfa"`
}

// SSOMapping maps a claim's value onto a role and attribute scopes.
type SSOMapping struct {
	Claim  string              `json:"claim"`
	Value  string              `json:"value"`
	Role   string              `json:"role"`
	Scopes map[string][]string `json:"scopes,omitempty"`
}

// SSOMFAPolicy says whether the provider's MFA satisfies the MFA rule.
type SSOMFAPolicy struct {
	TrustIdP bool     `json:"trust_idp"`
	AMR      []string `json:"amr,omitempty"`
	ACR      []string `json:"acr,omitempty"`
}

// SSOConfig is a tenant's settings as stored: without the secret.
type SSOConfig struct {
	SSOSettings
	SecretSet bool      `json:"client_secret_set"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SSOTestResult is what a test of the settings found.
type SSOTestResult struct {
	OK                    bool     `json:"ok"`
	Error                 string   `json:"error,omitempty"`
	Issuer                string   `json:"issuer,omitempty"`
	AuthorizationEndpoint string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint         string   `json:"token_endpoint,omitempty"`
	UserInfoEndpoint      string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI               string   `json:"jwks_uri,omitempty"`
	SigningAlgorithms     []string `json:"signing_algorithms,omitempty"`
	ClientSecret          string   `json:"client_secret,omitempty"`
}

// SSOStart is a sign-in that started: the URL to open, its state, and the
// binding the callback must carry.
type SSOStart struct {
	AuthURL   string    `json:"authorization_url"`
	State     string    `json:"state"`
	Binding   string    `json:"binding"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SSOCallback is the provider's redirect, relayed with the binding.
type SSOCallback struct {
	State   string `json:"state"`
	Code    string `json:"code,omitempty"`
	Binding string `json:"binding"`
	// Error is the provider's error code, when it sent one instead of a
	// code.
	Error string `json:"error,omitempty"`
}

// Grant is what a sign-in ends in: a session's tokens, shown once (the
// answer of a login, as of a single sign-on).
type Grant struct {
	AccessToken          string `json:"access_token"`
	RefreshToken         string `json:"refresh_token"`
	ExpiresIn            int    `json:"expires_in"`
	TokenType            string `json:"token_type"`
	Session              string `json:"session"`
	MFAEnrolmentRequired bool   `json:"mfa_enrolment_required"`
}

func ssoPath(tenant string) string { return tenantPath(tenant) + "/sso" }

// ConfigureSSO sets a tenant's single sign-on settings.
func (c *Client) ConfigureSSO(ctx context.Context, tenant string, s SSOSettings) (SSOConfig, error) {
	var out SSOConfig
	err := c.Do(ctx, "PUT", ssoPath(tenant), s, &out)
	return out, err
}

// SSO reads a tenant's single sign-on settings.
func (c *Client) SSO(ctx context.Context, tenant string) (SSOConfig, error) {
	var out SSOConfig
	err := c.Do(ctx, "GET", ssoPath(tenant), nil, &out)
	return out, err
}

// DeleteSSO removes a tenant's single sign-on settings.
func (c *Client) DeleteSSO(ctx context.Context, tenant string) error {
	return c.Do(ctx, "DELETE", ssoPath(tenant), nil, nil)
}

// TestSSO has the node discover the tenant's provider afresh and check
// the client secret.
func (c *Client) TestSSO(ctx context.Context, tenant string) (SSOTestResult, error) {
	var out SSOTestResult
	err := c.Do(ctx, "POST", ssoPath(tenant)+"/test", nil, &out)
	return out, err
}

// StartSSO starts a sign-in at the tenant's provider that comes back to
// redirectURI (a loopback listener of the caller's), or with "" to the
// tenant's redirect URL (the web UI's callback).
func (c *Client) StartSSO(ctx context.Context, tenant, redirectURI string) (SSOStart, error) {
	q := url.Values{"tenant": {tenant}}
	if redirectURI != "" {
		q.Set("redirect_uri", redirectURI)
	}
	var out SSOStart
	err := c.Do(ctx, "GET", "/v1/auth/oidc/start?"+q.Encode(), nil, &out)
	return out, err
}

// CompleteSSO relays the provider's redirect and returns the session.
func (c *Client) CompleteSSO(ctx context.Context, cb SSOCallback) (Grant, error) {
	var out Grant
	err := c.Do(ctx, "POST", "/v1/auth/oidc/callback", cb, &out)
	return out, err
}
