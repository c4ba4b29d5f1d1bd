package api

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/raftstore"
)

// APIKeys are the tenants' API keys; *apikeys.Service implements it.
type APIKeys interface {
	Create(ctx context.Context, caller audit.Principal, tenant string, in apikeys.CreateInput) (apikeys.Key, string, error)
	List(ctx context.Context, tenant string) ([]apikeys.Key, error)
	Get(ctx context.Context, tenant, id string) (apikeys.Key, error)
	Delete(ctx context.Context, caller audit.Principal, tenant, id string) error
	Authenticate(ctx context.Context, token string) (apikeys.Key, error)
}

var _ APIKeys = (*apikeys.Service)(nil)

// createAPIKeyRequest: exactly one of role and permissions; scopes only
// with a role.
type createAPIKeyRequest struct {
	Name         string              `json:"name"`
	Role         *string             `json:"role"`
	Permissions  []string            `json:"permissions"`
	Scopes       map[string][]string `json:"scopes"`
	ExpiresAt    *time.Time          `json:"expires_at"`
	ClientCertCN string              `json:"client_cert_cn"`
}

// createdAPIKey is the creation answer: the only time the token is shown.
type createdAPIKey struct {
	apikeys.Key
	Token string `json:"token"`
}

type listAPIKeysResponse struct {
	APIKeys []apikeys.Key `json:"apikeys"`
}

// existingTenant checks the tenant id (from the path) exists: 404
// otherwise.
func (s *server) existingTenant(c *fiber.Ctx, who audit.Principal, id string) (string, error) {
	// An API key of this tenant was found by a linearizable read earlier
	// in this request, below the tenant's bucket — which exists exactly as
	// long as the tenant does (both go in one transaction): the tenant
	// existed at a point after the request arrived, as the lookup below
	// would show. One read-index round saved on every API-key request.
	if who.Kind == audit.ActorAPIKey && who.Tenant == id {
		return id, nil
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	if _, err := s.deps.Tenants.Get(ctx, raftstore.Linearizable, id); err != nil {
		return "", fmt.Errorf("api: tenant %q: %w", id, err)
	}
	return id, nil
}

func (s *server) createAPIKey(c *fiber.Ctx, in *input) error {
	tenant, req := in.tenant, bodyOf[createAPIKeyRequest](in)
	if err := grantsNoMore(c, req); err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	k, token, err := s.deps.APIKeys.Create(ctx, in.who, tenant, apikeys.CreateInput{Name: req.Name, Role: req.Role, Permissions: req.Permissions, Scopes: req.Scopes, ExpiresAt: req.ExpiresAt, ClientCertCN: req.ClientCertCN})
	if err != nil {
		return fmt.Errorf("api: create API key of %q: %w", tenant, err)
	}
	c.Location("/v1/tenants/" + tenant + "/apikeys/" + k.ID)
	return c.Status(fiber.StatusCreated).JSON(createdAPIKey{Key: k, Token: token})
}

// grantsNoMore refuses a tenant principal's creation of a key that could
// do what the principal cannot (403): a principal holding apikeys:create
// through a custom role must not mint an Owner key. The operator creates
// keys only while bootstrapping, of any tenant role. A role or
// permissions the service refuses anyway (unknown) are left to its 422.
func grantsNoMore(c *fiber.Ctx, req *createAPIKeyRequest) error {
	p, ok := c.Locals(principalKey).(caller)
	if !ok || p.who.Tenant == "" {
		return nil
	}
	var asked roles.Role
	var known bool
	if req.Role != nil {
		asked, known = roles.Builtin(*req.Role)
	} else {
		r, err := roles.FromAPIKey(req.Permissions)
		asked, known = r, err == nil
	}
	if known && asked.Permissions().Without(p.role.Permissions()) != 0 {
		return &requestError{kind: kindForbidden, detail: "A key may not be given permissions its creator's role does not hold."}
	}
	return nil
}

func (s *server) listAPIKeys(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	keys, err := s.deps.APIKeys.List(ctx, in.tenant)
	if err != nil {
		return fmt.Errorf("api: list API keys of %q: %w", in.tenant, err)
	}
	return c.JSON(listAPIKeysResponse{APIKeys: keys})
}

func (s *server) getAPIKey(c *fiber.Ctx, in *input) error {
	tenant, id := in.tenant, in.str("kid")
	ctx, cancel := s.callContext(c)
	defer cancel()
	k, err := s.deps.APIKeys.Get(ctx, tenant, id)
	if err != nil {
		return fmt.Errorf("api: API key %q of %q: %w", id, tenant, err)
	}
	return c.JSON(k)
}

func (s *server) deleteAPIKey(c *fiber.Ctx, in *input) error {
	tenant, id := in.tenant, in.str("kid")
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.APIKeys.Delete(ctx, in.who, tenant, id); err != nil {
		return fmt.Errorf("api: delete API key %q of %q: %w", id, tenant, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}
