package api

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/tenants"
)

const maxTokenLen = 4096

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header. The scheme is case-insensitive (RFC 9110).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxTokenLen || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// authn accepts the operator token or a tenant API key and records the
// principal, once per request; authorize decides what it may do.
func (s *server) authn(c *fiber.Ctx) (*principal, error) {
	if p, ok := c.Locals(principalKey).(*principal); ok {
		return p, nil
	}
	token, ok := bearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok {
		return nil, &authError{missing: true}
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	p := &principal{}
	if apikeys.IsToken(token) {
		k, err := s.deps.APIKeys.Authenticate(ctx, token)
		if err != nil {
			if !unavailable(err) {
				s.log.Warn("API key refused", "request_id", requestID(c), "path", clipPath(c.Path()))
			}
			return nil, &authError{cause: err}
		}
		p.key = &k
	} else if err := s.deps.Auth.CheckOperatorToken(ctx, token); err != nil {
		if !unavailable(err) {
			s.log.Warn("operator token refused", "request_id", requestID(c), "path", clipPath(c.Path()))
		}
		return nil, &authError{cause: err}
	}
	c.Locals(principalKey, p)
	return p, nil
}

// authorize admits the request to a route of the given access. A public
// route admits anyone. Otherwise the token must be the operator's or an
// API key's; a key must be of the tenant the path names (:id), with the
// route's permission, and is refused on operator-only routes. A key of
// another tenant gets the answer a missing tenant gets: 404, nothing
// about whether the tenant exists.
func (s *server) authorize(c *fiber.Ctx, a access) error {
	if a.public {
		return nil
	}
	p, err := s.authn(c)
	if err != nil {
		return err
	}
	if p.key == nil {
		return nil
	}
	if a.perm == "" {
		return &requestError{kind: kindForbidden, detail: "This endpoint needs the operator token; API keys reach only their tenant's data."}
	}
	if c.Params("id") != p.key.Tenant {
		return &requestError{kind: kindNotFound, detail: "No tenant has this id."}
	}
	if !p.key.Can(a.perm) {
		return &requestError{kind: kindForbidden, detail: "This API key lacks the " + a.perm + " permission."}
	}
	return nil
}

// actor is who the audit log records for this request.
func (s *server) actor(c *fiber.Ctx) tenants.Actor {
	a := tenants.Actor{Name: operatorActor, Type: audit.ActorOperator, RequestID: requestID(c), Source: clipN(c.IP(), 64)}
	if p, ok := c.Locals(principalKey).(*principal); ok && p.key != nil {
		a.Name, a.Type = p.key.ID, audit.ActorAPIKey
	}
	return a
}

// caller is actor in the audit package's terms.
func (s *server) caller(c *fiber.Ctx) audit.Caller { return s.actor(c).Caller() }
