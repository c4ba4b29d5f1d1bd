package api

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/accounts"
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
	// role is what the principal may do, resolved once when its
	// credential is authenticated: an API key's role (or the role its
	// old permissions map onto), the Operator role for the root
	// operator token (and operator users), a tenant user's current role.
	role roles.Role
	// suspended: the principal belongs to a tenant that was suspended in
	// the snapshot its credential was read from (the API key's own
	// linearizable read: no second read of the tenant).
	suspended bool
	// enrolOnly: a user's session whose role requires MFA and whose user
	// has not enrolled: it may call only the routes of its own session
	// (access.session), to enrol.
	enrolOnly bool
	// mfaEnrolled: a user with an active second factor.
	mfaEnrolled bool
	// sessionCreated is a user session's login (zero for other
	// principals).
	sessionCreated time.Time
}

// authn is the one authentication step: it resolves the bearer token to
// the request's principal and its role (see caller), records it on the
// request, once; authorize decides what it may do. Each kind of
// credential has one branch here, and every branch ends in the same
// caller: the operator token, a tenant API key, and a user's access token
// (resolved by accounts.Resolve against the user's session, its current
// role and scopes and its tenant's state, on every request).
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
	p := caller{who: audit.Principal{RequestID: requestID(c), Source: clipN(c.IP(), 64)}}
	if accounts.IsAccessToken(token) {
		res, err := s.deps.Accounts.Resolve(ctx, token)
		if err != nil {
			return caller{}, &authError{cause: err}
		}
		who := res.Principal
		who.RequestID, who.Source = p.who.RequestID, p.who.Source
		p = caller{who: who, role: res.Role, suspended: res.Suspended, enrolOnly: res.EnrolmentOnly, mfaEnrolled: res.MFAEnrolled, sessionCreated: res.SessionCreated}
	} else if apikeys.IsToken(token) {
		k, err := s.deps.APIKeys.Authenticate(ctx, token)
		if err != nil {
			if !unavailable(err) {
				s.log.Warn("API key refused", "request_id", requestID(c), "route", routeOf(c))
			}
			return caller{}, &authError{cause: err}
		}
		if err := k.AdmitsClientCert(clientCert(c)); err != nil {
			s.log.Warn("API key refused: its client certificate was not presented", "request_id", requestID(c), "key", k.ID)
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
			s.log.Warn("operator token refused", "request_id", requestID(c), "route", routeOf(c))
		}
		return caller{}, &authError{cause: err}
	} else {
		// The root operator token: the Operator role, bound by the table
		// like any principal.
		p.who.Kind, p.who.ID = audit.ActorOperator, operatorActor
		p.role = operatorRole
	}
	c.Locals(principalKey, p)
	return p, nil
}

// clientCert is the client certificate the request's connection
// presented: whether the API's client CA verified one (TLS with
// [api] tls_client_ca_file), and its subject common name.
func clientCert(c *fiber.Ctx) (verified bool, cn string) {
	st := c.Context().TLSConnectionState()
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return false, ""
	}
	return true, st.VerifiedChains[0][0].Subject.CommonName
}

// operatorRole is the role of cluster operators: the root token's and
// operator users'.
var operatorRole = func() roles.Role {
	r, ok := roles.Builtin("operator")
	if !ok || !r.ClusterWide() {
		panic("api: the roles table has no cluster-wide operator role")
	}
	return r
}()

// bootstrapNeeds are what the operator may do in a tenant while the
// tenant is bootstrapping (see bootstrapping), though the Operator role
// does not hold them: creating the tenant's first principals.
var bootstrapNeeds = roles.SetOf(roles.P(roles.APIKeys, roles.Create), roles.P(roles.Users, roles.Create))

// authorize admits the request to a route of the given access, and
// returns its principal (none for a public route). The token must be one
// authn resolves, and its principal within its rate limit (429
// rate-limited otherwise, counted across all its source addresses, and
// before anything else is decided). Then one path for every principal:
//
//   - A route that acts on the cluster (not under /tenants/:id) admits no
//     tenant's principal, whatever its role holds (403).
//   - In a tenant's route, a tenant's principal must be of the tenant the
//     path names: a principal of another tenant gets the answer a missing
//     tenant gets, 404, nothing about whether the tenant exists.
//   - The principal's role must hold the route's permission (403
//     forbidden), with two exceptions for an operator (operatorMay):
//     bootstrap (a tenant's first API keys and Owner user, see
//     bootstrapping), and reads of a tenant's data under an active
//     break-glass grant of that tenant.
//   - A principal of a suspended tenant is then refused (403
//     tenant-suspended) on every route it could otherwise reach, before
//     anything of the request is read or done; the rule sits here, not
//     in handlers, so a new route cannot forget it.
//
// The operator's role holds no read of records, blobs or subjects: it
// reads no tenant's data but through break-glass.
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
	if a.session || p.enrolOnly {
		return p.who, authorizeSession(p, a)
	}
	if !a.tenant {
		if p.who.Tenant != "" || !p.role.ClusterWide() {
			return p.who, &requestError{kind: kindForbidden, detail: "This endpoint acts on the cluster: only an operator reaches it; a tenant's principals reach only their tenant."}
		}
		if !p.role.Allows(a.need) {
			return p.who, s.lacks(p, a)
		}
		return p.who, nil
	}
	tenant := c.Params("id")
	if p.who.Tenant != "" && tenant != p.who.Tenant {
		return p.who, &requestError{kind: kindNotFound, detail: "No tenant has this id."}
	}
	if !p.role.Allows(a.need) {
		ok, err := s.operatorMay(c, p, a, tenant)
		if err != nil {
			return p.who, err
		}
		if !ok {
			return p.who, s.lacks(p, a)
		}
	}
	if p.suspended {
		return p.who, &requestError{kind: kindTenantSuspended, detail: "The tenant is suspended: its principals are refused on its data until the operator resumes it; its data and keys are kept."}
	}
	return p.who, nil
}

// operatorMay reports whether an operator may do what its role does not
// hold in tenant: create the tenant's first principals while it is
// bootstrapping, or read the tenant's records, blobs and subjects under
// an active break-glass grant the tenant approved (each such request is
// recorded in the tenant's chain before it is served; the services then
// show the data in clear, as their visibility resolver asks the same
// grants). The root credential is an operator like any other here.
func (s *server) operatorMay(c *fiber.Ctx, p caller, a access, tenant string) (bool, error) {
	if p.who.Kind != audit.ActorOperator {
		return false, nil
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	switch {
	case bootstrapNeeds.Has(a.need):
		return s.bootstrapping(ctx, tenant)
	case dataReads.Has(a.need):
		_, ok, err := s.deps.BreakGlass.Use(ctx, p.who, tenant, a.need.String())
		if err != nil {
			return false, fmt.Errorf("api: break-glass of %q: %w", tenant, err)
		}
		return ok, nil
	}
	return false, nil
}

// bootstrapping reports whether tenant is still being set up: it has no
// Owner user yet (contract 3 of issue 12). Until then the operator
// creates its API keys (of any tenant role) and its first Owner user;
// from then on only the tenant's own principals whose role holds
// apikeys:create or users:create do. Each creation is audited in the
// tenant's chain with the operator as actor and "bootstrap" in its
// details. Without Deps.Owners the appliance has no tenant users, so
// every tenant is.
func (s *server) bootstrapping(ctx context.Context, tenant string) (bool, error) {
	if s.deps.Owners == nil {
		return true, nil
	}
	has, err := s.deps.Owners.HasOwnerUser(ctx, tenant)
	if err != nil {
		return false, fmt.Errorf("api: does tenant %q have an Owner user: %w", tenant, err)
	}
	return !has, nil
}

// lacks is the refusal of a principal whose role does not hold the
// route's permission.
func (s *server) lacks(p caller, a access) error {
	switch {
	case p.who.Kind == audit.ActorAPIKey && p.who.Role == "" && a.key != "":
		return &requestError{kind: kindForbidden, detail: "This API key lacks the " + a.key + " permission."}
	case p.who.Kind == audit.ActorOperator && dataReads.Has(a.need):
		return &requestError{kind: kindForbidden, detail: "Operators do not read a tenant's data: the Operator role lacks the " + a.need.String() + " permission, and the operator holds no active break-glass grant of the tenant."}
	}
	return &requestError{kind: kindForbidden, detail: "This principal's role, " + p.role.Name() + ", lacks the " + a.need.String() + " permission."}
}

// dataReads are the reads of a tenant's data.
var dataReads = roles.SetOf(roles.P(roles.Records, roles.Read), roles.P(roles.Blobs, roles.Read), roles.P(roles.Subjects, roles.Read))

// authorizeSession admits a person's login session (a tenant user's or an
// operator user's; the root token and API keys have none) to the routes of
// its own session, and a session that may only enrol a second factor to
// nothing else (403 mfa-enrolment-required).
func authorizeSession(p caller, a access) error {
	switch {
	case a.session && p.who.Session != "":
		return nil
	case a.session:
		return &requestError{kind: kindForbidden, detail: "This endpoint acts on a user's own login session; log in as a user."}
	}
	return &requestError{kind: kindMFAEnrolmentRequired, detail: "Your role requires a second factor: enrol one (POST /v1/auth/mfa/enrol, then /v1/auth/mfa/confirm) before anything else."}
}
