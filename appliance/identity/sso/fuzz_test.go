package sso

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/custos/custos/internal/tenancy"
)

// FuzzParseState: a state from the network is accepted only in the
// shape Start makes (a valid tenant id, a dot, 43 base64url
// characters), and what it yields spells the state again.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{"acme." + strings.Repeat("A", 43), "acme." + random(32), "acme", ".", "a.b.c", "ACME." + strings.Repeat("A", 43), "acme." + strings.Repeat("=", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, state string) {
		tenant, id, ok := ParseState(state)
		if !ok {
			if tenant != "" || id != "" {
				t.Fatalf("ParseState(%q) refused but returned %q %q", state, tenant, id)
			}
			return
		}
		if tenant+"."+id != state || !tenancy.ValidID(tenant) || len(id) != flowIDLen || strings.ContainsAny(id, ".+/=") {
			t.Fatalf("ParseState(%q) = %q %q", state, tenant, id)
		}
	})
}

// FuzzClaims: arbitrary ID-token claims (JSON) never panic the mapping,
// the MFA rule or the issuer check; a mapping matches only a claim that
// holds its value; a verified email domain is lower case; and a
// templated issuer matches only its own tid, which must be allowed.
func FuzzClaims(f *testing.F) {
	for _, s := range []string{
		`{"groups":["a","custos-owners"]}`, `{"groups":"custos-owners"}`, `{"groups":[["custos-owners"]],"roles":{"x":1}}`,
		`{"email":"a@Example.ORG","email_verified":true}`, `{"email":"@example.org","email_verified":true}`, `{"email":"a@example.org","email_verified":"true"}`,
		`{"amr":["pwd","mfa"],"acr":"urn:x"}`, `{"amr":"mfa"}`, `{"tid":"t1","iss":"https://x/t1/v2.0"}`, `{"groups":[1,true,null,1e400]}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	st := Settings{
		Mappings: []Mapping{
			{Claim: "groups", Value: "custos-owners", Role: "owner"},
			{Claim: "roles", Value: "1", Role: "qa"},
			{Claim: EmailDomain, Value: "example.org", Role: "read-only"},
		},
		MFA: MFAPolicy{TrustIdP: true, AMR: []string{"mfa"}, ACR: []string{"urn:x"}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		claims := map[string]any{}
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		role, _, ok := mapRole(&st, claims)
		switch {
		case !ok:
		case role == "owner" && !slices.Contains(claimValues(claims["groups"]), "custos-owners"),
			role == "qa" && !slices.Contains(claimValues(claims["roles"]), "1"),
			role == "read-only" && emailDomain(claims) != "example.org":
			t.Fatalf("%s matched %s", data, role)
		}
		if d := emailDomain(claims); d != strings.ToLower(d) || strings.Contains(d, "@") {
			t.Fatalf("email domain %q of %s", d, data)
		}
		_ = mfaDone(st.MFA, claims)
		iss, _ := claims["iss"].(string)
		tid, _ := claims["tid"].(string)
		if issuerMatches("https://x/{tenantid}/v2.0", iss, tid, []string{"t1"}) == "" && (tid != "t1" || iss != "https://x/t1/v2.0") {
			t.Fatalf("iss %q tid %q matched", iss, tid)
		}
	})
}

// FuzzParseDiscovery: a discovery document from the network is accepted
// only when it names the expected issuer (or the template's, for an
// allowed directory) and http(s) endpoints.
func FuzzParseDiscovery(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://login.example/{tenantid}/v2.0","authorization_endpoint":"https://login.example/a","token_endpoint":"https://login.example/t","jwks_uri":"https://login.example/k"}`))
	f.Add([]byte(`{"issuer":"https://login.example/t1/v2.0","authorization_endpoint":"https://login.example/a","token_endpoint":"https://login.example/t","jwks_uri":"https://login.example/k"}`))
	f.Add([]byte(`{"issuer":"https://evil.example/{tenantid}/v2.0","authorization_endpoint":"javascript:x","token_endpoint":"","jwks_uri":"http://10.0.0.1/k"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		const tmpl = "https://login.example/{tenantid}/v2.0"
		d, err := parseDiscovery(data, tmpl, []string{"t1"})
		if err != nil {
			return
		}
		if d.Issuer != tmpl && d.Issuer != "https://login.example/t1/v2.0" {
			t.Fatalf("issuer %q accepted", d.Issuer)
		}
		for _, u := range []string{d.AuthURL, d.TokenURL, d.JWKSURL} {
			if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
				t.Fatalf("endpoint %q accepted", u)
			}
		}
	})
}
