package api

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
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

// caller is the request's principal as authentication established it,
// with what authorization needs beyond who it is.
type caller struct {
	who audit.Principal
	// role is what a tenant's principal may do, computed once when its
	// credential is authenticated (the key's role, or the role its old
	// permissions map onto); unused for the operator, which passes every
	// route.
	role roles.Role
	// suspended: the principal belongs to a tenant that was suspended in
	// the snapshot its credential was read from (the API key's own
	// linearizable read: no second read of the tenant).
	suspended bool
}

// authn is the one authentication step: it accepts the operator token or
// a tenant API key, builds the request's principal and records it on the
// request, once; authorize decides what it may do.
func (s *server) authn(c *fiber.Ctx) (caller, error) {
	if p, ok := c.Locals(principalKey).(caller); ok {
		return p, nil
	}
	token, ok := bearerToken(c.Get(fiber.HeaderAuthorization))
	if !ok {
		return caller{}, &authError{missing: true}
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	p := caller{who: audit.Principal{Kind: audit.ActorOperator, ID: operatorActor, RequestID: requestID(c), Source: clipN(c.IP(), 64)}}
	if apikeys.IsToken(token) {
		k, err := s.deps.APIKeys.Authenticate(ctx, token)
		if err != nil {
			if !unavailable(err) {
				s.log.Warn("API key refused", "request_id", requestID(c), "path", clipPath(c.Path()))
			}
			return caller{}, &authError{cause: err}
		}
		role, err := k.EffectiveRole()
		if err != nil {
			s.log.Error("API key names no role of the table", "request_id", requestID(c), "key", k.ID, "err", err)
			return caller{}, &authError{cause: err}
		}
		p.who.Kind, p.who.ID, p.who.Tenant, p.who.Role, p.who.Permissions = audit.ActorAPIKey, k.ID, k.Tenant, k.Role, k.Permissions
		p.who.Scopes = k.Scopes // the services' store handles enforce them
		p.role = role
		p.suspended = k.TenantState == tenants.StateSuspended
	} else if err := s.deps.Auth.CheckOperatorToken(ctx, token); err != nil {
		if !unavailable(err) {
			s.log.Warn("operator token refused", "request_id", requestID(c), "path", clipPath(c.Path()))
		}
		return caller{}, &authError{cause: err}
	}
	c.Locals(principalKey, p)
	return p, nil
}

// authorize admits the request to a route of the given access, and
// returns its principal (none for a public route). Otherwise the token
// must be the operator's or an API key's, and its principal within its
// rate limit (429 rate-limited otherwise, counted across all its source
// addresses, and before anything else is decided). A principal of a
// tenant (an API key) is refused on the cluster's routes, and on a route
// only the operator called before roles (a.key empty) unless its role
// holds the route's permission — first, whatever tenant the path names,
// as old keys always were. It must be of the tenant the path names (:id):
// a key of another tenant gets the answer a missing tenant gets: 404,
// nothing about whether the tenant exists. A principal of a suspended
// tenant is then refused (403 tenant-suspended) on every route it could
// otherwise reach: each is a route of its tenant's data or access —
// collections, records, subjects, blobs, the tenant's audit chain, its
// API keys (see the package doc) — and the rule sits here, not in
// handlers, so a new route cannot forget it. Last, the route's
// permission, asked of the principal's role: one path for keys bound to
// a role and for old keys.
func (s *server) authorize(c *fiber.Ctx, a access) (audit.Principal, error) {
	if a.public {
		return audit.Principal{}, nil
	}
	p, err := s.authn(c)
	if err != nil {
		return p.who, err
	}
	if err := s.limit.principal(p.who); err != nil {
		return p.who, err
	}
	if p.who.Tenant == "" {
		return p.who, nil
	}
	if a.cluster {
		return p.who, &requestError{kind: kindForbidden, detail: "This endpoint needs the operator token; API keys reach only their tenant."}
	}
	if a.key == "" {
		// Routes no API key could call before roles stay the operator's
		// until openapi.json and the role × route matrix say otherwise:
		// a key's role widens nothing the API describes as operator-only.
		return p.who, &requestError{kind: kindForbidden, detail: "This endpoint needs the operator token; API keys reach only their tenant's data."}
	}
	if c.Params("id") != p.who.Tenant {
		return p.who, &requestError{kind: kindNotFound, detail: "No tenant has this id."}
	}
	if p.suspended {
		return p.who, &requestError{kind: kindTenantSuspended, detail: "The tenant is suspended: its principals are refused on its data until the operator resumes it; its data and keys are kept."}
	}
	if !p.role.Allows(a.need) {
		if p.who.Role == "" {
			return p.who, &requestError{kind: kindForbidden, detail: "This API key lacks the " + a.key + " permission."}
		}
		return p.who, &requestError{kind: kindForbidden, detail: "This API key's role, " + p.who.Role + ", lacks the " + a.need.String() + " permission."}
	}
	return p.who, nil
}
