package keyring

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/custos/custos/internal/validation"
)

func TestProviderSpecNormalize(t *testing.T) {
	vault := func(mut func(*VaultSpec)) ProviderSpec {
		v := &VaultSpec{Address: "https://vault.example:8200", Mount: "transit", Key: "acme", Token: "s.tok"}
		mut(v)
		return ProviderSpec{Kind: ProviderVault, Vault: v}
	}
	for name, c := range map[string]struct {
		spec  ProviderSpec
		field string // "" = valid
	}{
		"default is age":     {ProviderSpec{}, ""},
		"age":                {ProviderSpec{Kind: "age"}, ""},
		"vault token":        {vault(func(*VaultSpec) {}), ""},
		"vault approle":      {vault(func(v *VaultSpec) { v.Token, v.AuthMethod, v.RoleID, v.SecretID = "", "approle", "r", "s" }), ""},
		"unknown kind":       {ProviderSpec{Kind: "kms"}, "key_provider"},
		"age with vault":     {ProviderSpec{Kind: "age", Vault: &VaultSpec{}}, "vault"},
		"vault without":      {ProviderSpec{Kind: "vault"}, "vault"},
		"no scheme":          {vault(func(v *VaultSpec) { v.Address = "vault:8200" }), "vault.address"},
		"mount escapes":      {vault(func(v *VaultSpec) { v.Mount = "a/../../sys" }), "vault.mount"},
		"absolute key":       {vault(func(v *VaultSpec) { v.Key = "/k" }), "vault.key"},
		"key with space":     {vault(func(v *VaultSpec) { v.Key = "a b" }), "vault.key"},
		"no token":           {vault(func(v *VaultSpec) { v.Token = "" }), "vault.token"},
		"token with approle": {vault(func(v *VaultSpec) { v.AuthMethod, v.RoleID, v.SecretID = "approle", "r", "s" }), "vault.token"},
		"approle without id": {vault(func(v *VaultSpec) { v.Token, v.AuthMethod, v.SecretID = "", "approle", "s" }), "vault.role_id"},
		"role id with token": {vault(func(v *VaultSpec) { v.RoleID = "r" }), "vault.role_id"},
		"unknown auth":       {vault(func(v *VaultSpec) { v.AuthMethod = "ldap" }), "vault.auth_method"},
		"ca not pem":         {vault(func(v *VaultSpec) { v.CACertPEM = "hello" }), "vault.ca_cert_pem"},
		"ca too big":         {vault(func(v *VaultSpec) { v.CACertPEM = "-----BEGIN CERTIFICATE-----" + strings.Repeat("A", 70<<10) }), "vault.ca_cert_pem"},
		"token too long":     {vault(func(v *VaultSpec) { v.Token = strings.Repeat("t", 300) }), "vault.token"},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.spec.Normalize()
			var se *validation.FieldError
			switch {
			case c.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.field != "" && (!errors.As(err, &se) || se.Field != c.field):
				t.Fatalf("err = %v, want a validation.FieldError on %s", err, c.field)
			}
		})
	}
}

// The stored provider record never holds credentials.
func TestProviderRecordHasNoCredentials(t *testing.T) {
	s := ProviderSpec{Kind: ProviderVault, Vault: &VaultSpec{Address: "http://v:8200", Mount: "transit", Key: "k", AuthMethod: "approle", RoleID: "ROLE", SecretID: "SECRET", Token: "TOKEN"}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"ROLE", "SECRET", "TOKEN"} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("provider record holds %s: %s", secret, b)
		}
	}
}

// FuzzProviderRecord: decoding a stored provider record and normalizing
// any specification never panics, and what normalizes is usable.
func FuzzProviderRecord(f *testing.F) {
	f.Add([]byte(`{"kind":"age"}`))
	f.Add([]byte(`{"kind":"vault","vault":{"address":"https://v:8200","mount":"transit","key":"k","auth_method":"token","derived":true}}`))
	f.Add([]byte(`{"kind":"vault"}`))
	f.Add([]byte(`{"kind":"vault","vault":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeProvider(b)
		if err != nil {
			return
		}
		if s.Kind == ProviderVault && s.Vault == nil {
			t.Fatal("a vault record without settings decoded")
		}
		if s.Vault != nil {
			s.Vault.Token = "t" // records hold no credentials; a spec needs one
		}
		if err := s.Normalize(); err == nil && s.Kind == ProviderVault {
			if s.Vault.Address == "" || s.Vault.Mount == "" || s.Vault.Key == "" {
				t.Fatalf("normalized an incomplete spec: %+v", s.Vault)
			}
		}
	})
}
