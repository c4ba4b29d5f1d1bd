package sso

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/internal/validation"
)

// Presets.
const (
	PresetGoogle = "google"
	PresetEntra  = "entra"
)

// Issuers of the presets. EntraTemplate is the issuer of a multi-tenant
// Entra application: the {tenantid} placeholder stands for the "tid"
// claim of each token, and [Settings.AllowedTenants] says which
// directories may sign in.
const (
	GoogleIssuer     = "https://accounts.google.com"
	EntraTemplate    = "https://login.microsoftonline.com/{tenantid}/v2.0"
	TenantIDTemplate = "{tenantid}"
	entraAuthority   = "https://login.microsoftonline.com/"
)

// EmailDomain is the pseudo-claim of a [Mapping] that matches the domain
// of a verified "email" claim.
const EmailDomain = "email_domain"

// Defaults of the MFA rule: the amr values (RFC 8176) that say the
// provider used a second factor.
var defaultAMR = []string{"mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "retina", "vbm"}

// Limits.
const (
	maxURL      = 2048
	maxText     = 256
	maxMappings = 64
	maxList     = 32
)

// Settings are a tenant's single sign-on settings: what its Owner sets.
// ClientSecret is write-only: it is sealed with the tenant's keys and
// never returned.
type Settings struct {
	// Preset fills what a known provider needs: "google", "entra", or
	// "" (any OpenID Connect provider: Issuer is required).
	Preset string `json:"preset,omitempty"`
	// Issuer is the provider's issuer URL, exactly as its ID tokens name
	// it. With the entra preset it is derived from EntraTenant. An issuer
	// holding {tenantid} is a template (Entra's multi-tenant issuer): a
	// token's iss must be it with {tenantid} replaced by the token's tid,
	// which must be one of AllowedTenants.
	Issuer string `json:"issuer,omitempty"`
	// DiscoveryURL is where the provider's discovery document is, when it
	// is not below Issuer (a templated issuer's: the entra preset sets
	// Entra's "organizations" endpoint).
	DiscoveryURL string `json:"discovery_url,omitempty"`
	// EntraTenant is the Entra directory of the entra preset: its tenant
	// id (a single-tenant application), or "organizations" or "common"
	// (a multi-tenant one: Issuer becomes EntraTemplate).
	EntraTenant string `json:"entra_tenant,omitempty"`
	// AllowedTenants are the tid values a templated issuer accepts;
	// required with one, since anyone can make a directory.
	AllowedTenants []string `json:"allowed_tenants,omitempty"`
	ClientID       string   `json:"client_id"`
	// ClientSecret: write-only. Empty on an update keeps the stored one;
	// a public client (PKCE only) has none.
	ClientSecret string `json:"client_secret,omitempty"`
	// RedirectURL is the callback the provider sends the browser back to
	// (https://custos.example/v1/auth/oidc/callback): the one redirect
	// a sign-in may name besides a loopback listener of the CLI.
	RedirectURL string `json:"redirect_url"`
	// Scopes requested besides openid (default: email profile).
	Scopes []string `json:"scopes,omitempty"`
	// Mappings are tried in order; the first that matches gives the role
	// and scopes. None matching: DefaultRole, or the sign-in is refused.
	Mappings    []Mapping `json:"mappings,omitempty"`
	DefaultRole string    `json:"default_role,omitempty"`
	// JIT creates the user at its first sign-in; off: only users that
	// exist (linked to this provider) may sign in.
	JIT bool      `json:"jit"`
	MFA MFAPolicy `json:"mfa"`
}

// Mapping maps a claim value onto a role and attribute scopes.
type Mapping struct {
	// Claim is a top-level claim of the ID token ("groups", "roles",
	// "hd"), or "email_domain": the domain of the email claim, matched
	// only when email_verified is true.
	Claim string `json:"claim"`
	// Value matches the claim when it is a string equal to Value, or a
	// list holding it (case-sensitive; email_domain: case-insensitive).
	Value  string              `json:"value"`
	Role   string              `json:"role"`
	Scopes map[string][]string `json:"scopes,omitempty"`
}

// MFAPolicy says whether the provider's MFA satisfies the tenant's MFA
// rule (the roles that require MFA).
type MFAPolicy struct {
	// TrustIdP: a token whose amr holds one of AMR, or whose acr is one
	// of ACR, counts as MFA done.
	TrustIdP bool `json:"trust_idp"`
	// AMR values accepted (default: the RFC 8176 second factors).
	AMR []string `json:"amr,omitempty"`
	ACR []string `json:"acr,omitempty"`
}

// Config is the settings as stored and shown: without the secret.
type Config struct {
	Settings
	// SecretSet says whether a client secret is stored.
	SecretSet bool      `json:"client_secret_set"`
	UpdatedAt time.Time `json:"updated_at"`
}

// normalize applies the preset and checks everything; it returns the
// settings as they are stored (the secret aside).
func (s *Settings) normalize() error {
	switch s.Preset {
	case "":
	case PresetGoogle:
		if s.Issuer == "" {
			s.Issuer = GoogleIssuer
		}
		if s.Issuer != GoogleIssuer {
			return validation.Field("issuer", "must be empty or "+GoogleIssuer+" with the google preset")
		}
	case PresetEntra:
		if err := s.entra(); err != nil {
			return err
		}
	default:
		return validation.Field("preset", "must be google, entra or empty")
	}
	if s.Preset != PresetEntra && s.EntraTenant != "" {
		return validation.Field("entra_tenant", "is for the entra preset only")
	}
	if err := checkURL(s.Issuer, true); err != nil {
		return validation.Field("issuer", err.Error())
	}
	if s.DiscoveryURL != "" {
		if err := checkURL(s.DiscoveryURL, true); err != nil {
			return validation.Field("discovery_url", err.Error())
		}
	}
	templated := strings.Contains(s.Issuer, TenantIDTemplate)
	if templated {
		if strings.Count(s.Issuer, TenantIDTemplate) != 1 {
			return validation.Field("issuer", "may hold {tenantid} once")
		}
		if s.DiscoveryURL == "" {
			return validation.Field("discovery_url", "is required with a templated issuer")
		}
		if len(s.AllowedTenants) == 0 {
			return validation.Field("allowed_tenants", "must name the directories that may sign in with a templated issuer")
		}
	} else if len(s.AllowedTenants) > 0 {
		return validation.Field("allowed_tenants", "is for a templated issuer ({tenantid}) only")
	}
	if len(s.AllowedTenants) > maxList || slices.ContainsFunc(s.AllowedTenants, func(t string) bool { return !validTenantID(t) }) {
		return validation.Field("allowed_tenants", "must be at most 32 directory ids of a-z, A-Z, 0-9, '-' and '.'")
	}
	if !printable(s.ClientID, maxText) || s.ClientID == "" {
		return validation.Field("client_id", "must be 1 to 256 printable characters")
	}
	if !printable(s.ClientSecret, maxText) {
		return validation.Field("client_secret", "must be at most 256 printable characters")
	}
	if err := checkURL(s.RedirectURL, false); err != nil {
		return validation.Field("redirect_url", err.Error())
	}
	if s.Scopes == nil {
		s.Scopes = []string{"email", "profile"}
	}
	s.Scopes = slices.DeleteFunc(s.Scopes, func(x string) bool { return x == "openid" })
	if len(s.Scopes) > maxList || slices.ContainsFunc(s.Scopes, func(x string) bool { return !scopeToken(x) }) {
		return validation.Field("scopes", "must be at most 32 scope names (printable, no spaces)")
	}
	if len(s.Mappings) > maxMappings {
		return validation.Field("mappings", "must be at most 64 entries")
	}
	for i := range s.Mappings {
		if err := s.Mappings[i].check(fmt.Sprintf("mappings[%d]", i)); err != nil {
			return err
		}
	}
	if s.DefaultRole != "" && !tenantRole(s.DefaultRole) {
		return validation.Field("default_role", "must be a built-in tenant role")
	}
	if len(s.Mappings) == 0 && s.DefaultRole == "" {
		return validation.Field("mappings", "must not be empty without a default_role: nobody could sign in")
	}
	if s.MFA.AMR == nil && s.MFA.TrustIdP {
		s.MFA.AMR = slices.Clone(defaultAMR)
	}
	for _, l := range [][]string{s.MFA.AMR, s.MFA.ACR} {
		if len(l) > maxList || slices.ContainsFunc(l, func(x string) bool { return x == "" || !printable(x, maxText) }) {
			return validation.Field("mfa", "amr and acr must be at most 32 non-empty values each")
		}
	}
	return nil
}

// entra applies the entra preset.
func (s *Settings) entra() error {
	switch t := s.EntraTenant; {
	case t == "organizations" || t == "common":
		if s.Issuer != "" && s.Issuer != EntraTemplate {
			return validation.Field("issuer", "must be empty with the entra preset (it follows entra_tenant)")
		}
		s.Issuer, s.DiscoveryURL = EntraTemplate, entraAuthority+t+"/v2.0"
	case validTenantID(t):
		iss := entraAuthority + t + "/v2.0"
		if s.Issuer != "" && s.Issuer != iss {
			return validation.Field("issuer", "must be empty with the entra preset (it follows entra_tenant)")
		}
		s.Issuer = iss
	default:
		return validation.Field("entra_tenant", "must be the directory's tenant id, or organizations or common for a multi-tenant application")
	}
	return nil
}

func (m *Mapping) check(at string) error {
	if m.Claim != EmailDomain && !claimName(m.Claim) {
		return validation.Field(at+".claim", "must be a claim name (1 to 64 of a-z, A-Z, 0-9, '_', '-', ':', '.', '/') or email_domain")
	}
	if m.Value == "" || !printable(m.Value, maxText) {
		return validation.Field(at+".value", "must be 1 to 256 printable characters")
	}
	if m.Claim == EmailDomain {
		m.Value = strings.ToLower(m.Value)
	}
	if !tenantRole(m.Role) {
		return validation.Field(at+".role", "must be a built-in tenant role")
	}
	if err := validation.Scopes(at+".scopes", m.Scopes); err != nil {
		return err
	}
	return nil
}

// tenantRole reports whether name is a built-in tenant role (never the
// Operator's).
func tenantRole(name string) bool {
	r, ok := roles.Builtin(name)
	return ok && !r.ClusterWide()
}

// checkURL checks an issuer (https, or http on a loopback address for
// tests and development) or a redirect URL (https, or http on loopback).
func checkURL(s string, issuer bool) error {
	if s == "" || len(s) > maxURL {
		return fmt.Errorf("must be a URL of at most %d bytes", maxURL)
	}
	// {tenantid} stands for a directory id; the URL must be valid with
	// one, and hold the placeholder in its path.
	u, err := url.Parse(strings.Replace(s, TenantIDTemplate, "t", 1))
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" || u.Opaque != "" {
		return fmt.Errorf("must be an absolute URL without user, query or fragment")
	}
	if i := strings.Index(s, TenantIDTemplate); i >= 0 && (!issuer || i < len(u.Scheme)+len("://")+len(u.Host)) {
		return fmt.Errorf("may hold {tenantid} only in an issuer's path")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
	default:
		return fmt.Errorf("must be https (http only on a loopback address)")
	}
	return nil
}

// loopbackHost reports whether host is a loopback address or localhost.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func printable(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func scopeToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	return true
}

func claimName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == ':', c == '.', c == '/':
		default:
			return false
		}
	}
	return true
}

// validTenantID accepts a directory id as it appears in a tid claim and
// an issuer path: a GUID, or a name of a-z, A-Z, 0-9, '-' and '.'.
func validTenantID(s string) bool {
	if s == "" || len(s) > 64 || s == "organizations" || s == "common" || s == "consumers" {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.':
		default:
			return false
		}
	}
	return s != "." && s != ".."
}
