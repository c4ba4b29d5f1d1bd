package keyring

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// VaultConfig says how to reach a tenant's transit key (bring your own
// key). Token is a secret: it is never logged.
type VaultConfig struct {
	Address string
	Token   string
	CACert  string // PEM file of the CA for Vault's TLS certificate ("" = system)
	Mount   string // transit mount, e.g. "transit"
	Key     string // transit key name
	// Derived: the transit key was created with derived=true; the tenant id
	// is then the derivation context, so each tenant gets its own key even
	// if two share a transit key.
	Derived bool
	Timeout time.Duration // per call (default 5s)
}

// VaultRoot is a tenant root held in the customer's Vault: KEKs are
// wrapped and unwrapped by transit encrypt/decrypt; Custos never sees the
// transit key.
type VaultRoot struct {
	c   *vault.Client
	cfg VaultConfig
}

var _ Root = (*VaultRoot)(nil)

// NewVaultRoot makes a client for cfg.
func NewVaultRoot(cfg VaultConfig) (*VaultRoot, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Mount == "" || cfg.Key == "" || cfg.Address == "" {
		return nil, errors.New("keyring: vault address, mount and key are required")
	}
	vc := vault.DefaultConfig()
	vc.Address = cfg.Address
	vc.Timeout = cfg.Timeout
	vc.MaxRetries = 0 // fail closed fast; the cache absorbs blips
	if cfg.CACert != "" {
		if err := vc.ConfigureTLS(&vault.TLSConfig{CACert: cfg.CACert}); err != nil {
			return nil, fmt.Errorf("keyring: vault tls: %w", err)
		}
	}
	c, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("keyring: vault client: %w", err)
	}
	c.SetToken(cfg.Token)
	return &VaultRoot{c: c, cfg: cfg}, nil
}

func (v *VaultRoot) path(op string) string { return v.cfg.Mount + "/" + op + "/" + v.cfg.Key }

func (v *VaultRoot) body(tenant string, data map[string]any) map[string]any {
	if v.cfg.Derived {
		data["context"] = base64.StdEncoding.EncodeToString([]byte(tenant))
	}
	return data
}

// WrapKEK encrypts kek with the tenant's transit key.
func (v *VaultRoot) WrapKEK(ctx context.Context, tenant string, kek *Key) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	s, err := v.c.Logical().WriteWithContext(ctx, v.path("encrypt"), v.body(tenant, map[string]any{
		"plaintext": base64.StdEncoding.EncodeToString(kekPlaintext(tenant, kek)),
	}))
	if err != nil {
		return nil, vaultErr(tenant, err)
	}
	ct, _ := s.Data["ciphertext"].(string)
	if ct == "" {
		return nil, fmt.Errorf("%w: tenant %s: vault returned no ciphertext", ErrRootUnavailable, tenant)
	}
	return []byte(ct), nil
}

// UnwrapKEK decrypts a KEK wrapped by WrapKEK.
func (v *VaultRoot) UnwrapKEK(ctx context.Context, tenant string, wrapped []byte) (*Key, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	s, err := v.c.Logical().WriteWithContext(ctx, v.path("decrypt"), v.body(tenant, map[string]any{
		"ciphertext": string(wrapped),
	}))
	if err != nil {
		return nil, vaultErr(tenant, err)
	}
	b64, _ := s.Data["plaintext"].(string)
	pt, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, ErrOpen
	}
	return kekFromPlaintext(tenant, pt)
}

// vaultErr turns every Vault failure — refused (403), missing or disabled
// key, server errors, timeouts, connection refused — into
// ErrRootUnavailable naming the tenant: the caller fails closed. The Vault
// error text is kept for the log, never the token.
func vaultErr(tenant string, err error) error {
	var re *vault.ResponseError
	var ne net.Error
	switch {
	case errors.As(err, &re) && re.StatusCode == http.StatusBadRequest:
		// Vault could not decrypt: wrong tenant context or a damaged
		// ciphertext, not an outage.
		return fmt.Errorf("%w: tenant %s: vault could not decrypt", ErrOpen, tenant)
	case errors.As(err, &re):
		reason := "vault answered " + http.StatusText(re.StatusCode)
		if re.StatusCode == http.StatusForbidden {
			reason = "vault refused (permission denied: key disabled, policy or token revoked)"
		}
		return fmt.Errorf("%w: tenant %s: %s", ErrRootUnavailable, tenant, reason)
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: tenant %s: vault unreachable: %v", ErrRootUnavailable, tenant, err)
	}
	return fmt.Errorf("%w: tenant %s: vault: %v", ErrRootUnavailable, tenant, err)
}
