package api

import (
	"context"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/keyring"
)

// Keys is the tenants' key hierarchy; *keyring.Hierarchy implements it.
type Keys interface {
	Sealed() bool
	CachedKeys() int
	Status(ctx context.Context, tenant string) (keyring.KeyStatus, error)
	Rotate(ctx context.Context, caller keyring.Auditor, tenant string) (uint32, error)
	PurgeCache(ctx context.Context, caller keyring.Auditor, tenant string) (int, error)
	ChangeProvider(ctx context.Context, caller keyring.Auditor, tenant string, spec keyring.ProviderSpec) error
}

var _ Keys = (*keyring.Hierarchy)(nil)

// vaultRequest is the Vault part of a tenant creation or provider change.
// It carries the credentials, which keyring.VaultSpec never serializes.
type vaultRequest struct {
	Address    string `json:"address"`
	Mount      string `json:"mount"`
	Key        string `json:"key"`
	AuthMethod string `json:"auth_method"`
	AuthMount  string `json:"auth_mount"`
	CACertPEM  string `json:"ca_cert_pem"`
	Token      string `json:"token"`
	RoleID     string `json:"role_id"`
	SecretID   string `json:"secret_id"`
}

func providerSpec(kind string, v *vaultRequest) keyring.ProviderSpec {
	spec := keyring.ProviderSpec{Kind: kind}
	if v != nil {
		spec.Vault = &keyring.VaultSpec{
			Address: v.Address, Mount: v.Mount, Key: v.Key, AuthMethod: v.AuthMethod, AuthMount: v.AuthMount,
			CACertPEM: v.CACertPEM, Token: v.Token, RoleID: v.RoleID, SecretID: v.SecretID,
		}
	}
	return spec
}

type providerRequest struct {
	KeyProvider string        `json:"key_provider"`
	Vault       *vaultRequest `json:"vault"`
}

type rotateResponse struct {
	Tenant     string            `json:"tenant"`
	CurrentKEK uint32            `json:"current_kek"`
	Status     keyring.KeyStatus `json:"status"`
}

type purgeResponse struct {
	Tenant string `json:"tenant"`
	// Purged counts the keys this node dropped; the other nodes drop
	// theirs within a second.
	Purged int `json:"purged"`
}

func (s *server) getKeys(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	st, err := s.deps.Keys.Status(ctx, in.tenant)
	if err != nil {
		return fmt.Errorf("api: key status of %q: %w", in.tenant, err)
	}
	return c.JSON(st)
}

// rotateKeys adds a KEK version and answers 202: the data keys are
// rewrapped in the background; GET .../keys shows the progress.
func (s *server) rotateKeys(c *fiber.Ctx, in *input) error {
	id := in.tenant
	ctx, cancel := s.callContext(c)
	defer cancel()
	v, err := s.deps.Keys.Rotate(ctx, in.who, id)
	if err != nil {
		return fmt.Errorf("api: rotate keys of %q: %w", id, err)
	}
	st, err := s.deps.Keys.Status(ctx, id)
	if err != nil {
		return fmt.Errorf("api: key status of %q: %w", id, err)
	}
	c.Location("/v1/tenants/" + id + "/keys")
	return c.Status(fiber.StatusAccepted).JSON(rotateResponse{Tenant: id, CurrentKEK: v, Status: st})
}

func (s *server) purgeKeyCache(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	n, err := s.deps.Keys.PurgeCache(ctx, in.who, in.tenant)
	if err != nil {
		return fmt.Errorf("api: purge key cache of %q: %w", in.tenant, err)
	}
	return c.JSON(purgeResponse{Tenant: in.tenant, Purged: n})
}

// changeProvider moves the tenant's root to another provider, or gives a
// Vault tenant new credentials.
func (s *server) changeProvider(c *fiber.Ctx, in *input) error {
	id, req := in.tenant, bodyOf[providerRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.Keys.ChangeProvider(ctx, in.who, id, providerSpec(req.KeyProvider, req.Vault)); err != nil {
		return fmt.Errorf("api: change key provider of %q: %w", id, err)
	}
	st, err := s.deps.Keys.Status(ctx, id)
	if err != nil {
		return fmt.Errorf("api: key status of %q: %w", id, err)
	}
	return c.JSON(st)
}
