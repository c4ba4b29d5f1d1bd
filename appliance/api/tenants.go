package api

import (
	"context"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/tenants"
)

type createTenantRequest struct {
	ID          string        `json:"id"`
	DisplayName string        `json:"display_name"`
	Region      string        `json:"region"`
	KeyProvider string        `json:"key_provider"`
	Vault       *vaultRequest `json:"vault"`
}

type updateTenantRequest struct {
	DisplayName        *string `json:"display_name"`
	AuditRetentionDays *int    `json:"audit_retention_days"`
}

type listTenantsResponse struct {
	Tenants []tenants.Tenant `json:"tenants"`
	Next    string           `json:"next,omitempty"`
}

func (s *server) createTenant(c *fiber.Ctx) error {
	if _, err := parseQuery(c); err != nil {
		return err
	}
	var req createTenantRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	t, err := s.deps.Tenants.Create(ctx, s.actor(c), tenants.CreateInput{
		ID: req.ID, DisplayName: req.DisplayName, Region: req.Region, Keys: providerSpec(req.KeyProvider, req.Vault),
	})
	if err != nil {
		return fmt.Errorf("api: create tenant: %w", err)
	}
	c.Location("/v1/tenants/" + t.ID)
	return c.Status(fiber.StatusCreated).JSON(t)
}

func (s *server) listTenants(c *fiber.Ctx) error {
	q, err := parseQuery(c, "limit", "after", "stale")
	if err != nil {
		return err
	}
	if err := decodeBody(c, &noBody{}, false); err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	page, next, err := s.deps.Tenants.List(ctx, q.consistency, q.after, q.limit)
	if err != nil {
		return fmt.Errorf("api: list tenants: %w", err)
	}
	if page == nil {
		page = []tenants.Tenant{}
	}
	return c.JSON(listTenantsResponse{Tenants: page, Next: next})
}

func (s *server) getTenant(c *fiber.Ctx) error {
	id, err := tenantID(c)
	if err != nil {
		return err
	}
	q, err := parseQuery(c, "stale")
	if err != nil {
		return err
	}
	if err := decodeBody(c, &noBody{}, false); err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	t, err := s.deps.Tenants.Get(ctx, q.consistency, id)
	if err != nil {
		return fmt.Errorf("api: get tenant %q: %w", id, err)
	}
	return c.JSON(t)
}

func (s *server) updateTenant(c *fiber.Ctx) error {
	id, err := s.tenantInput(c)
	if err != nil {
		return err
	}
	var req updateTenantRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	t, err := s.deps.Tenants.Update(ctx, s.actor(c), id, tenants.Patch{DisplayName: req.DisplayName, AuditRetentionDays: req.AuditRetentionDays})
	if err != nil {
		return fmt.Errorf("api: update tenant %q: %w", id, err)
	}
	return c.JSON(t)
}

func (s *server) suspendTenant(c *fiber.Ctx) error {
	return s.changeState(c, "suspend", s.deps.Tenants.Suspend)
}

func (s *server) resumeTenant(c *fiber.Ctx) error {
	return s.changeState(c, "resume", s.deps.Tenants.Resume)
}

func (s *server) changeState(c *fiber.Ctx, verb string, op func(ctx context.Context, a tenants.Actor, id string) (tenants.Tenant, error)) error {
	id, err := s.tenantInput(c)
	if err != nil {
		return err
	}
	if err := decodeBody(c, &noBody{}, false); err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	t, err := op(ctx, s.actor(c), id)
	if err != nil {
		return fmt.Errorf("api: %s tenant %q: %w", verb, id, err)
	}
	return c.JSON(t)
}

func (s *server) deleteTenant(c *fiber.Ctx) error {
	id, err := s.tenantInput(c)
	if err != nil {
		return err
	}
	if err := decodeBody(c, &noBody{}, false); err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.Tenants.Delete(ctx, s.actor(c), id); err != nil {
		return fmt.Errorf("api: delete tenant %q: %w", id, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// tenantInput validates the :id path parameter and refuses any query
// parameter, for the routes that change one tenant.
func (s *server) tenantInput(c *fiber.Ctx) (string, error) {
	id, err := tenantID(c)
	if err != nil {
		return "", err
	}
	if _, err := parseQuery(c); err != nil {
		return "", err
	}
	return id, nil
}
