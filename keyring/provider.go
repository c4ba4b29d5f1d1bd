package keyring

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/custos/custos/internal/validation"
)

// Providers of tenant roots.
const (
	ProviderAge   = "age"
	ProviderVault = "vault"
)

// Vault auth methods.
const (
	VaultAuthToken   = "token"
	VaultAuthAppRole = "approle"
)

// Limits on a provider specification (it arrives from the API).
const (
	maxSpecField = 256
	maxCACertPEM = 64 << 10
)

// ProviderSpec says where a tenant's root key lives. The stored form (the
// tenant's "provider" record) never holds the credentials: they are
// age-encrypted to the seal recipients in a record of their own
// ("vault_auth"), so the raft log, snapshots and backups hold them only
// encrypted, and a node without the seal identity cannot use them.
type ProviderSpec struct {
	Kind  string     `json:"kind"` // ProviderAge (default) or ProviderVault
	Vault *VaultSpec `json:"vault,omitempty"`
}

// VaultSpec names a tenant's transit key in the customer's Vault and how
// Custos logs in. Token, RoleID and SecretID are credentials: they are
// excluded from JSON and from String.
type VaultSpec struct {
	Address    string `json:"address"`
	Mount      string `json:"mount"`
	Key        string `json:"key"`
	AuthMethod string `json:"auth_method"`          // VaultAuthToken (default) or VaultAuthAppRole
	AuthMount  string `json:"auth_mount,omitempty"` // AppRole mount (default "approle")
	CACertPEM  string `json:"ca_cert_pem,omitempty"`
	// Derived is read from Vault when the tenant is created: the transit
	// key derives a key per context, and the tenant id is the context.
	Derived bool `json:"derived"`

	Token    string `json:"-"`
	RoleID   string `json:"-"`
	SecretID string `json:"-"`
}

// vaultAuth is the encrypted credentials record.
type vaultAuth struct {
	Tenant   string `json:"tenant"`
	Token    string `json:"token,omitempty"`
	RoleID   string `json:"role_id,omitempty"`
	SecretID string `json:"secret_id,omitempty"`
}

// Normalize fills defaults and checks the specification.
func (s *ProviderSpec) Normalize() error {
	switch s.Kind {
	case "", ProviderAge:
		s.Kind = ProviderAge
		if s.Vault != nil {
			return validation.Field("vault", "is only allowed with key_provider vault")
		}
		return nil
	case ProviderVault:
	default:
		return validation.Field("key_provider", "must be age or vault")
	}
	v := s.Vault
	if v == nil {
		return validation.Field("vault", "is required with key_provider vault")
	}
	u, err := url.Parse(v.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(v.Address) > maxSpecField {
		return validation.Field("vault.address", "must be an http or https URL")
	}
	for _, f := range []struct{ name, v string }{{"vault.mount", v.Mount}, {"vault.key", v.Key}} {
		if !vaultName(f.v) {
			return validation.Field(f.name, "must be 1 to 256 characters of a-z, A-Z, 0-9, '-', '_', '.' and '/'")
		}
	}
	if len(v.CACertPEM) > maxCACertPEM || (v.CACertPEM != "" && !strings.Contains(v.CACertPEM, "-----BEGIN CERTIFICATE-----")) {
		return validation.Field("vault.ca_cert_pem", "must be a PEM certificate of at most 64 KiB")
	}
	switch v.AuthMethod {
	case "", VaultAuthToken:
		v.AuthMethod = VaultAuthToken
		if v.Token == "" || len(v.Token) > maxSpecField {
			return validation.Field("vault.token", "is required with auth_method token")
		}
		if v.RoleID != "" || v.SecretID != "" {
			return validation.Field("vault.role_id", "is only allowed with auth_method approle")
		}
	case VaultAuthAppRole:
		if v.AuthMount == "" {
			v.AuthMount = "approle"
		}
		if !vaultName(v.AuthMount) {
			return validation.Field("vault.auth_mount", "must be a mount path")
		}
		if v.RoleID == "" || v.SecretID == "" || len(v.RoleID) > maxSpecField || len(v.SecretID) > maxSpecField {
			return validation.Field("vault.role_id", "role_id and secret_id are required with auth_method approle")
		}
		if v.Token != "" {
			return validation.Field("vault.token", "is only allowed with auth_method token")
		}
	default:
		return validation.Field("vault.auth_method", "must be token or approle")
	}
	return nil
}

func vaultName(s string) bool {
	if s == "" || len(s) > maxSpecField || strings.HasPrefix(s, "/") || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == '/':
		default:
			return false
		}
	}
	return true
}

// vaultConfig is the client configuration of spec.
func (v *VaultSpec) vaultConfig() VaultConfig {
	return VaultConfig{
		Address: v.Address, Mount: v.Mount, Key: v.Key, Derived: v.Derived,
		AuthMethod: v.AuthMethod, AuthMount: v.AuthMount, CACertPEM: []byte(v.CACertPEM),
		Token: v.Token, RoleID: v.RoleID, SecretID: v.SecretID,
	}
}

// transitID names the transit key a tenant uses (tenants may share one
// derived key): trimming its versions must consider all of them.
func (v *VaultSpec) transitID() string { return v.Address + "|" + v.Mount + "|" + v.Key }

func decodeProvider(b []byte) (ProviderSpec, error) {
	var s ProviderSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%w: provider record: %v", ErrFormat, err)
	}
	if s.Kind == ProviderVault && s.Vault == nil {
		return s, fmt.Errorf("%w: provider record: vault without settings", ErrFormat)
	}
	return s, nil
}
