package api

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
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

// authn is the one authentication step: it accepts the operator token or
// a tenant API key, builds the request's principal and records it on the
// request, once; authorize decides what it may do.
func (s *server) authn(c *fiber.Ctx) (audit.Principal, error) {
	if p, ok := c.Locals(principalKey).(audit.Principal); ok {
		return p, nil
	}
	token, ok := bearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok {
		return audit.Principal{}, &authError{missing: true}
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	p := audit.Principal{Kind: audit.ActorOperator, ID: operatorActor, RequestID: requestID(c), Source: clipN(c.IP(), 64)}
	if apikeys.IsToken(token) {
		k, err := s.deps.APIKeys.Authenticate(ctx, token)
		if err != nil {
			if !unavailable(err) {
				s.log.Warn("API key refused", "request_id", requestID(c), "path", clipPath(c.Path()))
			}
			return audit.Principal{}, &authError{cause: err}
		}
		p.Kind, p.ID, p.Tenant, p.Permissions = audit.ActorAPIKey, k.ID, k.Tenant, k.Permissions
	} else if err := s.deps.Auth.CheckOperatorToken(ctx, token); err != nil {
		if !unavailable(err) {
			s.log.Warn("operator token refused", "request_id", requestID(c), "path", clipPath(c.Path()))
		}
		return audit.Principal{}, &authError{cause: err}
	}
	c.Locals(principalKey, p)
	return p, nil
}

// authorize admits the request to a route of the given access, and
// returns its principal (none for a public route). Otherwise the token
// must be the operator's or an API key's. A principal of a tenant (an API
// key) must be of the tenant the path names (:id), with the route's
// permission, and is refused on operator-only routes. A key of another
// tenant gets the answer a missing tenant gets: 404, nothing about
// whether the tenant exists.
func (s *server) authorize(c *fiber.Ctx, a access) (audit.Principal, error) {
	if a.public {
		return audit.Principal{}, nil
	}
	p, err := s.authn(c)
	if err != nil || p.Tenant == "" {
		return p, err
	}
	if a.perm == "" {
		return p, &requestError{kind: kindForbidden, detail: "This endpoint needs the operator token; API keys reach only their tenant's data."}
	}
	if c.Params("id") != p.Tenant {
		return p, &requestError{kind: kindNotFound, detail: "No tenant has this id."}
	}
	if !apikeys.Allows(p.Permissions, a.perm) {
		return p, &requestError{kind: kindForbidden, detail: "This API key lacks the " + a.perm + " permission."}
	}
	return p, nil
}
