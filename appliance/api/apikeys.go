package api

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

// APIKeys are the tenants' API keys; *apikeys.Service implements it.
type APIKeys interface {
	Create(ctx context.Context, caller audit.Caller, tenant string, in apikeys.CreateInput) (apikeys.Key, string, error)
	List(ctx context.Context, tenant string) ([]apikeys.Key, error)
	Get(ctx context.Context, tenant, id string) (apikeys.Key, error)
	Delete(ctx context.Context, caller audit.Caller, tenant, id string) error
	Authenticate(ctx context.Context, token string) (apikeys.Key, error)
}

var _ APIKeys = (*apikeys.Service)(nil)

type createAPIKeyRequest struct {
	Name        string     `json:"name"`
	Permissions []string   `json:"permissions"`
	ExpiresAt   *time.Time `json:"expires_at"`
}

// createdAPIKey is the creation answer: the only time the token is shown.
type createdAPIKey struct {
	apikeys.Key
	Token string `json:"token"`
}

type listAPIKeysResponse struct {
	APIKeys []apikeys.Key `json:"apikeys"`
}

// existingTenant checks the :id tenant exists (404 otherwise).
func (s *server) existingTenant(c *fiber.Ctx) (string, error) {
	id, err := tenantID(c)
	if err != nil {
		return "", err
	}
	// An API key of this tenant was found by a linearizable read earlier
	// in this request, below the tenant's bucket — which exists exactly as
	// long as the tenant does (both go in one transaction): the tenant
	// existed at a point after the request arrived, as the lookup below
	// would show. One read-index round saved on every API-key request.
	if p, ok := c.Locals(principalKey).(*principal); ok && p.key != nil && p.key.Tenant == id {
		return id, nil
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	if _, err := s.deps.Tenants.Get(ctx, raftstore.Linearizable, id); err != nil {
		return "", fmt.Errorf("api: tenant %q: %w", id, err)
	}
	return id, nil
}

func keyID(c *fiber.Ctx) (string, error) {
	id := c.Params("kid")
	if len(id) != 16 {
		return "", &requestError{kind: kindNotFound, detail: "No API key has this id."}
	}
	for i := 0; i < len(id); i++ {
		if ch := id[i]; !(ch >= 'a' && ch <= 'z' || ch >= '2' && ch <= '7') {
			return "", &requestError{kind: kindNotFound, detail: "No API key has this id."}
		}
	}
	return id, nil
}

// apiKeyTarget validates a one-key route: no input, an existing tenant, a
// well-formed key id.
func (s *server) apiKeyTarget(c *fiber.Ctx) (tenant, id string, err error) {
	if err = s.noInput(c); err != nil {
		return "", "", err
	}
	if tenant, err = s.existingTenant(c); err != nil {
		return "", "", err
	}
	id, err = keyID(c)
	return tenant, id, err
}

func (s *server) createAPIKey(c *fiber.Ctx) error {
	if _, err := parseQuery(c); err != nil {
		return err
	}
	var req createAPIKeyRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	tenant, err := s.existingTenant(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	k, token, err := s.deps.APIKeys.Create(ctx, s.caller(c), tenant, apikeys.CreateInput{Name: req.Name, Permissions: req.Permissions, ExpiresAt: req.ExpiresAt})
	if err != nil {
		return fmt.Errorf("api: create API key of %q: %w", tenant, err)
	}
	c.Location("/v1/tenants/" + tenant + "/apikeys/" + k.ID)
	return c.Status(fiber.StatusCreated).JSON(createdAPIKey{Key: k, Token: token})
}

func (s *server) listAPIKeys(c *fiber.Ctx) error {
	if err := s.noInput(c); err != nil {
		return err
	}
	tenant, err := s.existingTenant(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	keys, err := s.deps.APIKeys.List(ctx, tenant)
	if err != nil {
		return fmt.Errorf("api: list API keys of %q: %w", tenant, err)
	}
	return c.JSON(listAPIKeysResponse{APIKeys: keys})
}

func (s *server) getAPIKey(c *fiber.Ctx) error {
	tenant, id, err := s.apiKeyTarget(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	k, err := s.deps.APIKeys.Get(ctx, tenant, id)
	if err != nil {
		return fmt.Errorf("api: API key %q of %q: %w", id, tenant, err)
	}
	return c.JSON(k)
}

func (s *server) deleteAPIKey(c *fiber.Ctx) error {
	tenant, id, err := s.apiKeyTarget(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.APIKeys.Delete(ctx, s.caller(c), tenant, id); err != nil {
		return fmt.Errorf("api: delete API key %q of %q: %w", id, tenant, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}
