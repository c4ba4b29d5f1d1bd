package sso

import (
	"slices"
	"strconv"
	"strings"
)

// Identity is what a verified ID token says about the person, and what
// the tenant's settings make of it: the input of [Accounts.SignInSSO].
type Identity struct {
	// Issuer and Subject name the person at the provider (the token's
	// iss and sub): the link between a user and the provider, stable
	// where email is not.
	Issuer  string
	Subject string
	// Email, EmailVerified and Name are the profile claims, when the
	// provider gave them (personal data: the accounts service seals
	// them).
	Email         string
	EmailVerified bool
	Name          string
	// Role and Scopes are what the first matching mapping (or the
	// default role) gives: the user's role binding from this sign-in on.
	Role   string
	Scopes map[string][]string
	// MFA: the provider's second factor satisfies the tenant's MFA rule
	// (the settings trust it, and amr or acr say it was used).
	MFA bool
}

// maxClaimValues bounds the values of one claim looked at (a groups
// claim of a person in thousands of groups is cut, not walked whole).
const maxClaimValues = 1024

// claimValues returns the values of a claim as strings: a string, a
// number or a boolean is one value; a list gives its scalar elements
// (nested lists and objects are skipped). Nothing else has values.
func claimValues(v any) []string {
	switch v := v.(type) {
	case []any:
		var out []string
		for _, e := range v {
			if len(out) == maxClaimValues {
				break
			}
			if s, ok := scalar(e); ok {
				out = append(out, s)
			}
		}
		return out
	default:
		if s, ok := scalar(v); ok {
			return []string{s}
		}
		return nil
	}
}

func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}

// emailDomain is the lower-cased domain of a verified email claim ("":
// no email, not verified, or not an address).
func emailDomain(claims map[string]any) string {
	if v, _ := claims["email_verified"].(bool); !v {
		return ""
	}
	email, _ := claims["email"].(string)
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return ""
	}
	return strings.ToLower(email[at+1:])
}

// mapRole is the role and scopes the settings give a person with claims:
// the first mapping that matches, else the default role. ok is false
// when neither gives one.
func mapRole(s *Settings, claims map[string]any) (role string, scopes map[string][]string, ok bool) {
	domain := emailDomain(claims)
	for _, m := range s.Mappings {
		var hit bool
		if m.Claim == EmailDomain {
			hit = domain != "" && domain == m.Value
		} else {
			hit = slices.Contains(claimValues(claims[m.Claim]), m.Value)
		}
		if hit {
			return m.Role, cloneScopes(m.Scopes), true
		}
	}
	if s.DefaultRole != "" {
		return s.DefaultRole, nil, true
	}
	return "", nil, false
}

func cloneScopes(in map[string][]string) map[string][]string {
	if in == nil {
		return nil
	}
	out := make(map[string][]string, len(in))
	for k, v := range in {
		out[k] = slices.Clone(v)
	}
	return out
}

// mfaDone reports whether the token's amr or acr satisfy the policy.
func mfaDone(p MFAPolicy, claims map[string]any) bool {
	if !p.TrustIdP {
		return false
	}
	for _, a := range claimValues(claims["amr"]) {
		if slices.Contains(p.AMR, a) {
			return true
		}
	}
	acr, _ := claims["acr"].(string)
	return acr != "" && slices.Contains(p.ACR, acr)
}

// issuerMatches checks a token's issuer against the settings' issuer:
// equal, or, for a template, the template with {tenantid} replaced by
// the token's tid, which must be one of allowed. It returns the reason
// of a refusal ("" when it matches).
func issuerMatches(template, iss, tid string, allowed []string) string {
	if !strings.Contains(template, TenantIDTemplate) {
		if iss != template {
			return ReasonIDToken
		}
		return ""
	}
	if !validTenantID(tid) || !slices.Contains(allowed, tid) {
		return ReasonTenantID
	}
	if iss != strings.Replace(template, TenantIDTemplate, tid, 1) {
		return ReasonIDToken
	}
	return ""
}

// needsUserInfo reports whether a mapping needs a claim the ID token
// lacks, which the userinfo endpoint may give (email with
// email_domain mappings; any other mapped claim).
func needsUserInfo(s *Settings, claims map[string]any) bool {
	for _, m := range s.Mappings {
		name := m.Claim
		if name == EmailDomain {
			name = "email"
		}
		if _, ok := claims[name]; !ok {
			return true
		}
	}
	return false
}
