package api

import (
	"context"
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/internal/validation"
)

// Requests are the tenants' data-subject requests; *requests.Service
// implements it.
type Requests interface {
	Create(ctx context.Context, caller audit.Principal, tenant string, in requests.Input) (requests.Request, error)
	Get(ctx context.Context, caller audit.Principal, tenant, id string) (requests.Request, error)
	List(ctx context.Context, caller audit.Principal, tenant string, f requests.Filter) ([]requests.Request, string, error)
	Transition(ctx context.Context, caller audit.Principal, tenant, id string, in requests.TransitionInput) (requests.Request, error)
	Rectify(ctx context.Context, caller audit.Principal, tenant, id string) (requests.Request, error)
	Summary(ctx context.Context, caller audit.Principal, tenant string) (requests.Summary, error)
}

var _ Requests = (*requests.Service)(nil)

// Parameter types of the request routes.
var (
	requestIDType     = idType(validation.ID, "must be a request id", "No request has this id.")
	requestStatusType = &paramType{schema: "string", reason: "must be open, overdue, due-soon or a status (received, verified, in_progress, extended, completed, rejected)",
		parse: func(v string) (any, bool) {
			_, err := requests.ParseFilterStatus("status", v)
			return v, err == nil && v != ""
		}}
	requestKindType = &paramType{schema: "string", reason: "must be access, export, portability, rectification, erasure, restriction or opt-out",
		parse: func(v string) (any, bool) {
			_, err := requests.ParseKind("kind", v)
			return v, err == nil
		}}
)

// requestRoutes are the tenant's data-subject requests: recorded by
// whoever hears one (requests:create: Owner, Compliance, Manager,
// Reservations, Front of house), handled by Compliance and the Owner
// (requests:read, requests:update). Applying a rectification is the
// request's update: the record changes through the records service, as
// the caller, because the request — verified — is what authorizes it.
func (s *server) requestRoutes() []route {
	get, post := fiber.MethodGet, fiber.MethodPost
	need := func(a roles.Action) access { return needs(roles.P(roles.Requests, a)) }
	one := params(tenantPath, pathParam("rid", requestIDType))
	return []route{
		{method: post, path: "/tenants/:id/requests", access: need(roles.Create), params: params(tenantPath), body: jsonBody[client.NewDSR](true), existing: true, handle: s.createDSR},
		{method: get, path: "/tenants/:id/requests", access: need(roles.Read), body: noBody, existing: true, handle: s.listDSRs,
			params: params(tenantPath, query("status", requestStatusType), query("kind", requestKindType), query("subject", subjectType), query("after", requestIDType), query("limit", pageLimit))},
		{method: get, path: "/tenants/:id/requests-summary", access: need(roles.Read), params: params(tenantPath), body: noBody, existing: true, handle: s.dsrSummary},
		{method: get, path: "/tenants/:id/requests/:rid", access: need(roles.Read), params: one, body: noBody, existing: true, handle: s.getDSR},
		{method: post, path: "/tenants/:id/requests/:rid/transition", access: need(roles.Update), params: one, body: jsonBody[client.DSRTransition](true), existing: true, handle: s.transitionDSR},
		{method: post, path: "/tenants/:id/requests/:rid/rectify", access: need(roles.Update), params: one, body: noBody, existing: true, handle: s.rectifyDSR},
	}
}

type listDSRsResponse struct {
	Requests []requests.Request `json:"requests"`
	Next     string             `json:"next,omitempty"`
}

func (s *server) createDSR(c *fiber.Ctx, in *input) error {
	req := bodyOf[client.NewDSR](in)
	kind, err := requests.ParseKind("kind", req.Kind)
	if err != nil {
		return err
	}
	ri := requests.Input{Kind: kind, Subject: req.Subject, Attributes: req.Attributes}
	if req.Received != nil {
		ri.Received = *req.Received
	}
	if p := req.Rectification; p != nil {
		ri.Rectification = &requests.Patch{Collection: p.Collection, Record: p.Record, Fields: p.Fields}
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	r, err := s.deps.Requests.Create(ctx, in.who, in.tenant, ri)
	if err != nil {
		return fmt.Errorf("api: create request in %q: %w", in.tenant, err)
	}
	c.Location("/v1/tenants/" + in.tenant + "/requests/" + r.ID)
	return c.Status(fiber.StatusCreated).JSON(r)
}

func (s *server) listDSRs(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	page, next, err := s.deps.Requests.List(ctx, in.who, in.tenant, requests.Filter{
		Status: in.str("status"), Kind: requests.Kind(in.str("kind")), Subject: in.str("subject"), After: in.str("after"), Limit: in.int("limit"),
	})
	if err != nil {
		return fmt.Errorf("api: list requests of %q: %w", in.tenant, err)
	}
	if page == nil {
		page = []requests.Request{}
	}
	return c.JSON(listDSRsResponse{Requests: page, Next: next})
}

func (s *server) dsrSummary(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	sum, err := s.deps.Requests.Summary(ctx, in.who, in.tenant)
	if err != nil {
		return fmt.Errorf("api: summary of requests of %q: %w", in.tenant, err)
	}
	return c.JSON(sum)
}

func (s *server) getDSR(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	r, err := s.deps.Requests.Get(ctx, in.who, in.tenant, in.str("rid"))
	if err != nil {
		return fmt.Errorf("api: request of %q: %w", in.tenant, err)
	}
	return c.JSON(r)
}

func (s *server) transitionDSR(c *fiber.Ctx, in *input) error {
	req := bodyOf[client.DSRTransition](in)
	to, err := requests.ParseStatus("to", req.To)
	if err != nil {
		return err
	}
	ti := requests.TransitionInput{To: to, Reason: req.Reason, Extension: req.Extension, Note: req.Note}
	if e := req.Evidence; e != nil {
		ti.Evidence = &requests.Evidence{Method: e.Method, Text: e.Text}
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	r, err := s.deps.Requests.Transition(ctx, in.who, in.tenant, in.str("rid"), ti)
	if err != nil {
		return fmt.Errorf("api: transition a request of %q: %w", in.tenant, err)
	}
	return c.JSON(r)
}

func (s *server) rectifyDSR(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	r, err := s.deps.Requests.Rectify(ctx, in.who, in.tenant, in.str("rid"))
	if err != nil {
		return fmt.Errorf("api: rectify a request of %q: %w", in.tenant, err)
	}
	return c.JSON(r)
}
