package api

import (
	"context"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/raftstore"
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
	Regulation         *string `json:"regulation"`
	TimeZone           *string `json:"time_zone"`
	DPDPResponseDays   *int    `json:"dpdp_response_days"`
	RetentionDays      *int    `json:"retention_days"`
}

type listTenantsResponse struct {
	Tenants []tenants.Tenant `json:"tenants"`
	Next    string           `json:"next,omitempty"`
}

func (s *server) createTenant(c *fiber.Ctx, in *input) error {
	req := bodyOf[createTenantRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	t, err := s.deps.Tenants.Create(ctx, in.who, tenants.CreateInput{
		ID: req.ID, DisplayName: req.DisplayName, Region: req.Region, Keys: providerSpec(req.KeyProvider, req.Vault),
	})
	if err != nil {
		return fmt.Errorf("api: create tenant: %w", err)
	}
	c.Location("/v1/tenants/" + t.ID)
	return c.Status(fiber.StatusCreated).JSON(t)
}

func (s *server) listTenants(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	page, next, err := s.deps.Tenants.List(ctx, consistency(in), in.str("after"), in.int("limit"))
	if err != nil {
		return fmt.Errorf("api: list tenants: %w", err)
	}
	if page == nil {
		page = []tenants.Tenant{}
	}
	return c.JSON(listTenantsResponse{Tenants: page, Next: next})
}

// tenantView is a tenant as GET /v1/tenants/{id} shows it. Bootstrapping
// is told to an operator only: the tenant has no Owner user yet, so the
// operator may still create its first API keys and Owner (see
// server.bootstrapping) — what the web UI needs to offer those forms.
// A stale read leaves it out: it answers from the node's own state even
// without a leader, and bootstrapping is decided on the leader's.
type tenantView struct {
	tenants.Tenant
	Bootstrapping bool `json:"bootstrapping,omitempty"`
}

func (s *server) getTenant(c *fiber.Ctx, in *input) error {
	id := in.str("id")
	ctx, cancel := s.callContext(c)
	defer cancel()
	t, err := s.deps.Tenants.Get(ctx, consistency(in), id)
	if err != nil {
		return fmt.Errorf("api: get tenant %q: %w", id, err)
	}
	v := tenantView{Tenant: t}
	if in.who.Kind == audit.ActorOperator && !in.flag("stale") {
		if v.Bootstrapping, err = s.bootstrapping(ctx, id); err != nil {
			return err
		}
	}
	return c.JSON(v)
}

func (s *server) updateTenant(c *fiber.Ctx, in *input) error {
	id, req := in.str("id"), bodyOf[updateTenantRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	t, err := s.deps.Tenants.Update(ctx, in.who, id, tenants.Patch{
		DisplayName: req.DisplayName, AuditRetentionDays: req.AuditRetentionDays,
		Regulation: req.Regulation, TimeZone: req.TimeZone, DPDPResponseDays: req.DPDPResponseDays, RetentionDays: req.RetentionDays,
	})
	if err != nil {
		return fmt.Errorf("api: update tenant %q: %w", id, err)
	}
	return c.JSON(t)
}

func (s *server) suspendTenant(c *fiber.Ctx, in *input) error {
	return s.changeState(c, in, "suspend", s.deps.Tenants.Suspend)
}

func (s *server) resumeTenant(c *fiber.Ctx, in *input) error {
	return s.changeState(c, in, "resume", s.deps.Tenants.Resume)
}

func (s *server) changeState(c *fiber.Ctx, in *input, verb string, op func(ctx context.Context, who audit.Principal, id string) (tenants.Tenant, error)) error {
	id := in.str("id")
	ctx, cancel := s.callContext(c)
	defer cancel()
	t, err := op(ctx, in.who, id)
	if err != nil {
		return fmt.Errorf("api: %s tenant %q: %w", verb, id, err)
	}
	return c.JSON(t)
}

func (s *server) deleteTenant(c *fiber.Ctx, in *input) error {
	id := in.str("id")
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.Tenants.Delete(ctx, in.who, id); err != nil {
		return fmt.Errorf("api: delete tenant %q: %w", id, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// consistency is the read a route's stale parameter asks for.
func consistency(in *input) raftstore.Consistency {
	if in.flag("stale") {
		return raftstore.Stale
	}
	return raftstore.Linearizable
}
