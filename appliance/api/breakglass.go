package api

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/breakglass"
	"github.com/custos/custos/internal/validation"
)

// BreakGlass keeps tenants' break-glass grants; *breakglass.Service
// implements it.
type BreakGlass interface {
	Request(ctx context.Context, who audit.Principal, tenant string, in breakglass.RequestInput) (breakglass.Grant, error)
	Approve(ctx context.Context, who audit.Principal, tenant, id string) (breakglass.Grant, error)
	Revoke(ctx context.Context, who audit.Principal, tenant, id string) (breakglass.Grant, error)
	List(ctx context.Context, tenant string) ([]breakglass.Grant, error)
	Use(ctx context.Context, who audit.Principal, tenant, permission string) (breakglass.Grant, bool, error)
	Policy(ctx context.Context, tenant string) (breakglass.Policy, error)
	SetPolicy(ctx context.Context, who audit.Principal, tenant string, p breakglass.Policy) (breakglass.Policy, error)
}

var _ BreakGlass = (*breakglass.Service)(nil)

// breakGlassRequest is an operator's request: why, and for how long once
// approved (default one hour).
type breakGlassRequest struct {
	Reason          string `json:"reason"`
	DurationSeconds *int64 `json:"duration_seconds"`
}

type listBreakGlassResponse struct {
	Grants []breakglass.Grant `json:"grants"`
}

func (s *server) requestBreakGlass(c *fiber.Ctx, in *input) error {
	req := bodyOf[breakGlassRequest](in)
	var d time.Duration
	if req.DurationSeconds != nil {
		if *req.DurationSeconds <= 0 || *req.DurationSeconds > int64(breakglass.MaxDuration/time.Second) {
			return validation.Field("duration_seconds", fmt.Sprintf("must be 1 to %d", int64(breakglass.MaxDuration/time.Second)))
		}
		d = time.Duration(*req.DurationSeconds) * time.Second
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	g, err := s.deps.BreakGlass.Request(ctx, in.who, in.tenant, breakglass.RequestInput{Reason: req.Reason, Duration: d})
	if err != nil {
		return fmt.Errorf("api: break-glass request on %q: %w", in.tenant, err)
	}
	c.Location("/v1/tenants/" + in.tenant + "/breakglass")
	return c.Status(fiber.StatusCreated).JSON(g)
}

func (s *server) listBreakGlass(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	gs, err := s.deps.BreakGlass.List(ctx, in.tenant)
	if err != nil {
		return fmt.Errorf("api: break-glass grants of %q: %w", in.tenant, err)
	}
	return c.JSON(listBreakGlassResponse{Grants: gs})
}

func (s *server) approveBreakGlass(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	g, err := s.deps.BreakGlass.Approve(ctx, in.who, in.tenant, in.str("gid"))
	if err != nil {
		return fmt.Errorf("api: approve break-glass %q of %q: %w", in.str("gid"), in.tenant, err)
	}
	return c.JSON(g)
}

func (s *server) revokeBreakGlass(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	g, err := s.deps.BreakGlass.Revoke(ctx, in.who, in.tenant, in.str("gid"))
	if err != nil {
		return fmt.Errorf("api: revoke break-glass %q of %q: %w", in.str("gid"), in.tenant, err)
	}
	return c.JSON(g)
}

func (s *server) getBreakGlassPolicy(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	p, err := s.deps.BreakGlass.Policy(ctx, in.tenant)
	if err != nil {
		return fmt.Errorf("api: break-glass policy of %q: %w", in.tenant, err)
	}
	return c.JSON(p)
}

func (s *server) putBreakGlassPolicy(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	p, err := s.deps.BreakGlass.SetPolicy(ctx, in.who, in.tenant, *bodyOf[breakglass.Policy](in))
	if err != nil {
		return fmt.Errorf("api: set the break-glass policy of %q: %w", in.tenant, err)
	}
	return c.JSON(p)
}
