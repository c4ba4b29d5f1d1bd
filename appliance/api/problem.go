package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/appliance/identity/breakglass"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/appliance/identity/sso"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/privacy/erasure"
	"github.com/custos/custos/appliance/privacy/export"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// ProblemTypeBase prefixes every problem slug to form the problem type URI.
const ProblemTypeBase = client.ProblemTypeBase

// ProblemContentType is the media type of every error response.
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem details object, the body of every error
// response. Its wire form is defined once, by the client that decodes it.
type Problem = client.Problem

// FieldProblem names one invalid field (of the body, or a query parameter)
// and why it is invalid.
type FieldProblem = client.FieldProblem

// kind is one row of the problem table in the package documentation.
type kind int

const (
	kindBadRequest kind = iota
	kindUnknownField
	kindInvalidParameter // validation, 400: query and path parameters
	kindValidation       // validation, 422: values in a well-formed body
	kindUnsupportedMediaType
	kindPayloadTooLarge
	kindUnauthorized
	kindForbidden
	kindTenantSuspended
	kindWithheld
	kindMFAEnrolmentRequired
	kindMFARequired
	kindNotFound
	kindMethodNotAllowed
	kindConflict
	kindDuplicateRequest
	kindInvalidTransition
	kindPreconditionFailed
	kindRegionMismatch
	kindUnavailable
	kindKeyUnavailable
	kindAuditUnavailable
	kindIntegrity
	kindRangeNotSatisfiable
	kindLengthRequired
	kindRateLimited
	kindSSORefused
	kindConsentRequired
	kindProviderUnavailable
	kindInternal
)

func (k kind) spec() (slug, title string, status int) {
	switch k {
	case kindBadRequest:
		return "bad-request", "Bad request", http.StatusBadRequest
	case kindUnknownField:
		return "unknown-field", "Unknown field", http.StatusBadRequest
	case kindInvalidParameter:
		return "validation", "Invalid parameter", http.StatusBadRequest
	case kindValidation:
		return "validation", "Invalid value", http.StatusUnprocessableEntity
	case kindUnsupportedMediaType:
		return "unsupported-media-type", "Unsupported media type", http.StatusUnsupportedMediaType
	case kindPayloadTooLarge:
		return "payload-too-large", "Payload too large", http.StatusRequestEntityTooLarge
	case kindUnauthorized:
		return "unauthorized", "Unauthorized", http.StatusUnauthorized
	case kindForbidden:
		return "forbidden", "Forbidden", http.StatusForbidden
	case kindTenantSuspended:
		return "tenant-suspended", "Tenant suspended", http.StatusForbidden
	case kindWithheld:
		return "withheld", "Withheld from this role", http.StatusForbidden
	case kindMFAEnrolmentRequired:
		return "mfa-enrolment-required", "Second factor enrolment required", http.StatusForbidden
	case kindMFARequired:
		return "mfa-required", "Second factor required", http.StatusUnauthorized
	case kindNotFound:
		return "not-found", "Not found", http.StatusNotFound
	case kindMethodNotAllowed:
		return "method-not-allowed", "Method not allowed", http.StatusMethodNotAllowed
	case kindConflict:
		return "conflict", "Conflict", http.StatusConflict
	case kindDuplicateRequest:
		return "duplicate-request", "Duplicate request", http.StatusConflict
	case kindInvalidTransition:
		return "invalid-transition", "Invalid transition", http.StatusConflict
	case kindPreconditionFailed:
		return "precondition-failed", "Precondition failed", http.StatusPreconditionFailed
	case kindRegionMismatch:
		return "region-mismatch", "Region mismatch", http.StatusUnprocessableEntity
	case kindUnavailable:
		return "unavailable", "Service unavailable", http.StatusServiceUnavailable
	case kindKeyUnavailable:
		return "key-unavailable", "Key unavailable", http.StatusServiceUnavailable
	case kindIntegrity:
		return "integrity-error", "Integrity error", http.StatusInternalServerError
	case kindAuditUnavailable:
		return "audit-unavailable", "Audit log unavailable", http.StatusServiceUnavailable
	case kindLengthRequired:
		return "length-required", "Length required", http.StatusLengthRequired
	case kindRateLimited:
		return "rate-limited", "Too many requests", http.StatusTooManyRequests
	case kindSSORefused:
		return "sso-refused", "Sign-in refused", http.StatusUnauthorized
	case kindConsentRequired:
		return "consent-required", "Consent required", http.StatusForbidden
	case kindProviderUnavailable:
		return "sso-provider-unavailable", "Identity provider unavailable", http.StatusBadGateway
	case kindRangeNotSatisfiable:
		return "range-not-satisfiable", "Range not satisfiable", http.StatusRequestedRangeNotSatisfiable
	default:
		return "internal", "Internal error", http.StatusInternalServerError
	}
}

func badRequest(format string, args ...any) error {
	return &requestError{kind: kindBadRequest, detail: fmt.Sprintf(format, args...)}
}

func invalidParam(name, reason string) error {
	return &requestError{
		kind:   kindInvalidParameter,
		detail: "query parameter " + name + " " + reason,
		fields: []FieldProblem{{Field: clip(name), Reason: reason}},
	}
}

// unavailable reports errors after which the same request may succeed
// shortly: no leader, leadership moving, a timeout, a shutdown.
func unavailable(err error) bool {
	return errors.Is(err, raftstore.ErrNoLeader) || errors.Is(err, raftstore.ErrNotLeader) ||
		errors.Is(err, raftstore.ErrTimeout) || errors.Is(err, raftstore.ErrClosed) ||
		errors.Is(err, context.DeadlineExceeded)
}

// header is one response header a problem needs.
type header struct{ name, value string }

// problemFor is the one place that maps an error to a problem: its kind,
// a safe detail and the headers it needs. It matches with errors.Is and
// errors.As only, and never copies err.Error() into the response.
func problemFor(err error) (kind, string, []FieldProblem, []header) {
	var (
		re *requestError
		ae *authError
		fe *validation.FieldError
		rm *tenants.RegionMismatchError
		fb *fiber.Error
		ue *keyring.UnavailableError
		rl *rateLimitedError
		sf *sso.FlowError
		bo *accounts.BackoffError
		dr *requests.DuplicateError
		te *requests.TransitionError
		cr *consent.RequiredError
	)
	retry := []header{{fiber.HeaderRetryAfter, "1"}}
	challenge := []header{{fiber.HeaderWWWAuthenticate, `Bearer realm="custos"`}}
	switch {
	case errors.As(err, &re):
		return re.kind, re.detail, re.fields, nil
	case errors.As(err, &bo):
		return kindRateLimited, "Too many failed logins for this account or from this address; retry after the number of seconds Retry-After gives.",
			nil, []header{{fiber.HeaderRetryAfter, retryAfterSeconds(bo.RetryAfter)}}
	case errors.As(err, &rl):
		return kindRateLimited, "Too many requests from this address or with this credential; retry after the number of seconds Retry-After gives.",
			nil, []header{{fiber.HeaderRetryAfter, retryAfterSeconds(rl.retryAfter)}}
	case unavailable(err):
		if errors.Is(err, raftstore.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			return kindUnavailable, "The cluster did not answer in time. A change may or may not have been applied: read it back before retrying.", nil, retry
		}
		return kindUnavailable, "The cluster has no reachable leader right now. A change may or may not have been applied: read it back before retrying.", nil, retry
	case errors.As(err, &sf):
		return kindSSORefused, "The sign-in was refused: " + sf.Reason + ". Start a new sign-in.", nil, nil
	case errors.Is(err, sso.ErrNotConfigured):
		return kindNotFound, "No single sign-on is configured for this tenant (or no tenant has this id).", nil, nil
	case errors.Is(err, sso.ErrProvider):
		return kindProviderUnavailable, "The tenant's identity provider could not be reached, or did not answer as an OpenID Connect provider; try again, or test the settings.", nil, nil
	case errors.Is(err, sso.ErrTooManyFlows):
		return kindRateLimited, "The tenant has too many sign-ins under way; retry after the number of seconds Retry-After gives.", nil, []header{{fiber.HeaderRetryAfter, "60"}}
	case errors.As(err, &ue):
		return kindKeyUnavailable, keyUnavailableDetail(ue), nil, []header{{fiber.HeaderRetryAfter, "5"}}
	case errors.As(err, &cr):
		return kindConsentRequired, consentDetail(cr), nil, nil
	case errors.Is(err, consent.ErrNotConsentBased):
		return kindValidation, "purposes names a purpose on the contract or legal-obligation basis: it does not rest on the subject's agreement, so it is neither granted nor withdrawn.",
			[]FieldProblem{{Field: "purposes", Reason: "names a purpose that does not rest on consent"}}, nil
	case errors.Is(err, consent.ErrNotFound):
		return kindNotFound, "No purpose of the tenant has this id.", nil, nil
	case errors.Is(err, consent.ErrNoKind):
		return kindNotFound, "No blob kind of the tenant has this name.", nil, nil
	case errors.Is(err, consent.ErrScoped):
		return kindForbidden, "Consent rates count the subjects of every attribute scope: a principal with attribute scopes cannot read them.", nil, nil
	case errors.Is(err, consent.ErrNoSubject):
		return kindNotFound, "The tenant holds nothing about this subject (no record, no blob, no consent event): consent is recorded for a subject the tenant knows — create its record first.", nil, nil
	case errors.Is(err, consent.ErrNoTenant):
		return kindNotFound, "No tenant has this id.", nil, nil
	case errors.Is(err, consent.ErrExists):
		return kindConflict, "A purpose with this id exists.", nil, nil
	case errors.Is(err, consent.ErrConflict):
		return kindPreconditionFailed, "The purpose is not at the policy version If-Match names, or it (or the subject's ledger) changed meanwhile; read it again.", nil, nil
	case errors.Is(err, consent.ErrTooMany):
		return kindConflict, "The tenant holds the maximum number of purposes or blob kinds, or the subject's ledger its maximum number of events.", nil, nil
	case errors.As(err, &fe):
		return kindValidation, fe.Field + " " + fe.Reason, []FieldProblem{{Field: fe.Field, Reason: fe.Reason}}, nil
	case errors.Is(err, raftstore.ErrChainUnwritable):
		return kindAuditUnavailable, "The audit entry of this change could not be written, so the change was not made.", nil, []header{{fiber.HeaderRetryAfter, "5"}}
	case errors.Is(err, cluster.ErrNoBackupRecipients):
		return kindConflict, "The cluster has no backup recipients: set them first (PUT /v1/sys/backup/recipients, custos operator backup recipients).", nil, nil
	case errors.Is(err, audit.ErrCannotSign), errors.Is(err, audit.ErrNoKeys):
		return kindAuditUnavailable, "This node cannot sign audit checkpoints (it is sealed, or the cluster has no checkpoint key); ask another node.", nil, []header{{fiber.HeaderRetryAfter, "5"}}
	case errors.Is(err, audit.ErrRange):
		return kindInvalidParameter, "The index or size is outside the chain.", nil, nil
	case errors.Is(err, audit.ErrNotFound):
		return kindNotFound, "No such audit entry or checkpoint.", nil, nil
	case errors.As(err, &dr):
		return kindDuplicateRequest, fmt.Sprintf("The subject has an open %s request already: %s. Handle that one; a new one may be made once it is completed or rejected.", dr.Kind, dr.Existing), nil, nil
	case errors.As(err, &te):
		return kindInvalidTransition, fmt.Sprintf("Request %s cannot go from %s to %s: %s. Nothing was changed.", te.ID, te.From, te.To, te.Why), nil, nil
	case errors.Is(err, requests.ErrNotFound):
		return kindNotFound, "No request has this id.", nil, nil
	case errors.Is(err, requests.ErrNoTenant):
		return kindNotFound, "No tenant has this id.", nil, nil
	case errors.Is(err, requests.ErrConflict):
		return kindConflict, "The request was changed concurrently; read it again and retry.", nil, nil
	case errors.Is(err, tenancy.ErrRestricted):
		return kindForbidden, "The item's attributes are outside the principal's attribute scope: it cannot create an item outside it or move one out of it.", nil, nil
	case errors.Is(err, requests.ErrNotFound), errors.Is(err, erasure.ErrNotFound):
		return kindNotFound, "No data-subject request has this id (or it has no erasure yet).", nil, nil
	case errors.Is(err, requests.ErrInvalidTransition):
		return kindConflict, "The request's state does not allow this (an erasure takes up only a verified erasure request, or one in progress).", nil, nil
	case errors.Is(err, erasure.ErrConflict), errors.Is(err, requests.ErrConflict):
		return kindConflict, "Concurrent changes kept the operation from finishing; run it again: it finishes what is left.", nil, nil
	case errors.Is(err, erasure.ErrScoped):
		return kindForbidden, "An erasure acts on everything the tenant holds about the subject: a principal with attribute scopes cannot carry it out.", nil, nil
	case errors.Is(err, erasure.ErrTooDeep):
		return kindConflict, "The records' refs with on_erase erase chain further than an erasure follows.", nil, nil
	case errors.Is(err, erasure.ErrNoTenant), errors.Is(err, requests.ErrNoTenant):
		return kindNotFound, "No tenant has this id.", nil, nil
	case errors.Is(err, records.ErrFindWithheld):
		return kindWithheld, "This role does not read the field's classification in clear, so it cannot search by it (a match would confirm the value).", nil, nil
	case errors.Is(err, blobs.ErrContentWithheld):
		return kindWithheld, "This role reads blobs' metadata but not their content (documents are read as pii, in clear only).", nil, nil
	case errors.Is(err, records.ErrScoped):
		return kindForbidden, "A principal with attribute scopes cannot export: an export must hold everything about its subject (or tenant).", nil, nil
	case errors.Is(err, export.ErrNotFound):
		return kindNotFound, "No export has this id (or it expired and was shredded).", nil, nil
	case errors.Is(err, export.ErrIntegrity):
		return kindIntegrity, "A stored export failed its integrity check (altered, moved or incomplete); it is not served.", nil, nil
	case errors.Is(err, export.ErrAborted):
		return kindUnavailable, "The export was interrupted by the cluster; nothing of it was kept. Retry it.", nil, []header{{fiber.HeaderRetryAfter, "1"}}
	case errors.Is(err, records.ErrIntegrity):
		return kindIntegrity, "A stored value failed its integrity check (altered or moved); it is not served.", nil, nil
	case errors.Is(err, records.ErrNotFound):
		return kindNotFound, "No such record (or nothing held about this subject).", nil, nil
	case errors.Is(err, records.ErrExists):
		return kindConflict, "A record with this id exists.", nil, nil
	case errors.Is(err, records.ErrVersion):
		return kindPreconditionFailed, "The record changed meanwhile; read it again.", nil, nil
	case errors.Is(err, blobs.ErrIntegrity):
		return kindIntegrity, "A stored blob failed its integrity check (altered, moved or incomplete); it is not served.", nil, nil
	case errors.Is(err, blobs.ErrNotFound):
		return kindNotFound, "No blob has this id.", nil, nil
	case errors.Is(err, blobs.ErrTooLarge):
		return kindPayloadTooLarge, "The blob exceeds the size limit; nothing of it was kept.", nil, nil
	case errors.Is(err, blobs.ErrMediaType):
		return kindUnsupportedMediaType, "The blob's Content-Type is missing or not an accepted media type.", nil, nil
	case errors.Is(err, blobs.ErrTruncated):
		return kindBadRequest, "The body ended before its announced Content-Length; nothing of it was kept.", nil, nil
	case errors.Is(err, blobs.ErrDigest):
		return kindValidation, "The body's SHA-256 is not the one Custos-Content-SHA256 announced; nothing of it was kept.",
			[]FieldProblem{{Field: "Custos-Content-SHA256", Reason: "does not match the body"}}, nil
	case errors.Is(err, blobs.ErrAborted):
		return kindUnavailable, "The upload was interrupted by the cluster; nothing of it was kept. Retry it.", nil, []header{{fiber.HeaderRetryAfter, "1"}}
	case errors.Is(err, collections.ErrConflict):
		return kindPreconditionFailed, "The collection is not at the version If-Match names (or changed meanwhile); read it again.", nil, nil
	case errors.Is(err, collections.ErrNotFound):
		return kindNotFound, "No collection has this name (or version).", nil, nil
	case errors.Is(err, collections.ErrTooMany):
		return kindConflict, "The tenant has the maximum number of collections.", nil, nil
	case errors.Is(err, accounts.ErrMFARequired):
		return kindMFARequired, "The account has a second factor: send the code (or a recovery code) with the password.", nil, challenge
	case errors.Is(err, accounts.ErrInvalidCredentials):
		return kindUnauthorized, "The username or password is wrong.", nil, challenge
	case errors.Is(err, accounts.ErrInvalidCode):
		return kindUnauthorized, "The second-factor code is wrong or was already used.", nil, challenge
	case errors.Is(err, accounts.ErrInvalidSession) && !errors.As(err, &ae):
		return kindUnauthorized, "The refresh token is not valid (expired, already used, or its session ended): log in again.", nil, challenge
	case errors.Is(err, accounts.ErrRoleNotFound):
		return kindNotFound, "No role of the tenant has this name.", nil, nil
	case errors.Is(err, accounts.ErrNotFound):
		return kindNotFound, "No user (or session) of the tenant has this id.", nil, nil
	case errors.Is(err, accounts.ErrExists):
		return kindConflict, "A user with this username (or a role with this name) exists.", nil, nil
	case errors.Is(err, accounts.ErrConflict):
		return kindConflict, "The user changed meanwhile; read it again and retry.", nil, nil
	case errors.Is(err, accounts.ErrTooMany):
		return kindConflict, "The tenant has the maximum number of users (or roles).", nil, nil
	case errors.Is(err, accounts.ErrMFAState):
		return kindConflict, "The second factor is not in a state that allows this (already enrolled: an administrator resets it first; or no enrolment to confirm).", nil, nil
	case errors.Is(err, accounts.ErrForbidden):
		return kindForbidden, "Not allowed for this user: an operator creates only a tenant's first Owner; nobody changes their own role or disables themselves, grants permissions their own role lacks, or removes the last enabled Owner.", nil, nil
	case errors.Is(err, apikeys.ErrNotFound):
		return kindNotFound, "No API key has this id.", nil, nil
	case errors.Is(err, cluster.ErrNoRootToken):
		return kindConflict, "The root operator token is revoked already; regenerate one with the seal identity.", nil, nil
	case errors.Is(err, cluster.ErrNoAttempt):
		return kindValidation, "nonce does not answer an open root token generation: start one, and answer its challenge with the nonce the seal identity opens, within its time.",
			[]FieldProblem{{Field: "nonce", Reason: "does not answer an open root token generation"}}, nil
	case errors.Is(err, breakglass.ErrNotFound):
		return kindNotFound, "No break-glass grant has this id.", nil, nil
	case errors.Is(err, breakglass.ErrNoTenant):
		return kindNotFound, "No tenant has this id.", nil, nil
	case errors.Is(err, breakglass.ErrState):
		return kindConflict, "The grant's state does not allow this: only a pending grant is approved, only a pending or active one revoked.", nil, nil
	case errors.Is(err, breakglass.ErrConflict):
		return kindConflict, "The grant changed meanwhile; list the grants and retry.", nil, nil
	case errors.Is(err, breakglass.ErrTooMany):
		return kindConflict, "The tenant holds the maximum number of break-glass grants.", nil, nil
	case errors.Is(err, apikeys.ErrTooMany):
		return kindConflict, "The tenant has the maximum number of API keys; delete one first.", nil, nil
	case errors.Is(err, keyring.ErrConcurrent):
		return kindConflict, "Another key operation on this tenant ran at the same time; read the key status and retry.", nil, nil
	case errors.Is(err, keyring.ErrNoKeys):
		return kindNotFound, "The tenant has no keys.", nil, nil
	case errors.Is(err, apikeys.ErrClientCertRequired):
		return kindUnauthorized, "This API key is bound to a client certificate: present it (mutual TLS) on the connection.", nil,
			[]header{{fiber.HeaderWWWAuthenticate, `Bearer realm="custos", error="invalid_token"`}}
	case errors.As(err, &ae):
		h := []header{{fiber.HeaderWWWAuthenticate, `Bearer realm="custos"`}}
		if ae.missing {
			return kindUnauthorized, "This endpoint requires an operator bearer token.", nil, h
		}
		h[0].value = `Bearer realm="custos", error="invalid_token"`
		return kindUnauthorized, "The bearer token is not a valid operator token, API key or access token (an access token expires after 15 minutes: refresh it).", nil, h
	case errors.As(err, &rm):
		return kindRegionMismatch, fmt.Sprintf("The tenant's region %q is not this cluster's region %q; create it in a cluster of its region.", rm.Requested, rm.Cluster),
			[]FieldProblem{{Field: "region", Reason: "must be " + rm.Cluster}}, nil
	case errors.Is(err, tenants.ErrRegionMismatch):
		return kindRegionMismatch, "The tenant's region is not this cluster's region.", nil, nil
	case errors.Is(err, validation.ErrInvalid):
		return kindValidation, "The request holds an invalid value.", nil, nil
	case errors.Is(err, tenants.ErrNotFound):
		return kindNotFound, "No tenant has this id.", nil, nil
	case errors.Is(err, tenants.ErrExists):
		return kindConflict, "A tenant with this id already exists.", nil, nil
	case errors.Is(err, tenants.ErrConflict):
		return kindConflict, "The tenant was changed concurrently; read it again and retry.", nil, nil
	case errors.Is(err, raftstore.ErrLastVoter):
		return kindConflict, "The peer is the cluster's last voter: a cluster cannot remove its last voter. Add another voter first.", nil, nil
	case errors.Is(err, raftstore.ErrUnknownPeer):
		return kindValidation, "id is not a member of the cluster", []FieldProblem{{Field: "id", Reason: "is not a member of the cluster"}}, nil
	case errors.As(err, &fb):
		return fiberProblem(fb)
	}
	return kindInternal, "internal error", nil, nil
}

// consentDetail names the purpose refused and why; purpose ids are the
// tenant's own (a schema's, a blob kind's), never the request's text.
func consentDetail(cr *consent.RequiredError) string {
	why := map[string]string{
		consent.ReasonNotGranted: "the subject has not granted it",
		consent.ReasonWithdrawn:  "the subject withdrew it (or objected)",
		consent.ReasonRestricted: "the subject restricted processing",
		consent.ReasonDoNotSell:  "it is a sale and the subject opted out (do not sell)",
		consent.ReasonUndefined:  "the tenant defines no such purpose",
	}[cr.Reason]
	if why == "" {
		why = cr.Reason
	}
	return fmt.Sprintf("The subject's consent does not allow purpose %s: %s. The request was refused, and nothing was changed.", clip(cr.Purpose), why)
}

// keyUnavailableDetail names the tenant and says why, in words of this
// package: the provider's own error text stays in the log.
func keyUnavailableDetail(ue *keyring.UnavailableError) string {
	who := "the tenant"
	if ue.Tenant != "" {
		who = fmt.Sprintf("tenant %q", ue.Tenant)
	}
	switch {
	case errors.Is(ue.Cause, keyring.ErrSealed):
		return fmt.Sprintf("The keys of %s are unavailable: this node is sealed (it has no seal identity). Use another node, or restart this one with the cluster's seal identity.", who)
	case errors.Is(ue.Cause, keyring.ErrOpen):
		return fmt.Sprintf("The keys of %s are unavailable: the key provider could not decrypt the tenant's key (a different or trimmed key).", who)
	}
	return fmt.Sprintf("The keys of %s are unavailable: the tenant's key provider refused or could not be reached (key disabled, access revoked, or the provider is down). Service resumes when it answers again.", who)
}

// fiberProblem maps the errors fiber and fasthttp raise before or instead
// of a handler: routing misses and protocol errors.
func fiberProblem(fb *fiber.Error) (kind, string, []FieldProblem, []header) {
	switch fb.Code {
	case fiber.StatusNotFound:
		return kindNotFound, "No endpoint has this path.", nil, nil
	case fiber.StatusMethodNotAllowed:
		// fiber has already set the Allow header.
		return kindMethodNotAllowed, "This endpoint does not support this method; see the Allow header.", nil, nil
	case fiber.StatusRequestEntityTooLarge:
		return kindPayloadTooLarge, "The request body exceeds the size limit.", nil, nil
	case fiber.StatusUnsupportedMediaType:
		return kindUnsupportedMediaType, "The request body's media type is not supported.", nil, nil
	}
	if fb.Code >= 400 && fb.Code < 500 {
		return kindBadRequest, "The request could not be read.", nil, nil
	}
	return kindInternal, "internal error", nil, nil
}

// handleError writes the problem response for err. It is fiber's error
// handler and is also called by the request frame, so it runs for handler
// errors, routing misses, panics and errors the HTTP server raises before
// routing (such as an oversized body).
func (s *frame) handleError(c *fiber.Ctx, err error) error {
	k, detail, fields, headers := problemFor(err)
	slug, title, status := k.spec()
	rid := requestID(c)
	switch {
	case k == kindInternal:
		s.log.LogAttrs(context.Background(), slog.LevelError, "request failed",
			slog.String("request_id", rid), slog.String("method", c.Method()), slog.String("route", routeOf(c)), slog.Any("error", err))
	case k == kindIntegrity:
		// err names the collection, record and field (or blob and chunk):
		// for the log only, the response says none of it.
		s.log.LogAttrs(context.Background(), slog.LevelError, "request failed: integrity check",
			slog.String("request_id", rid), slog.String("method", c.Method()), slog.String("route", routeOf(c)), slog.Any("error", err))
	case k == kindUnavailable:
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "request failed: cluster unavailable",
			slog.String("request_id", rid), slog.String("method", c.Method()), slog.String("route", routeOf(c)), slog.Any("error", err))
	}
	p := Problem{
		Type: ProblemTypeBase + slug, Title: title, Status: status, Detail: detail,
		Instance: clipPath(c.Path()), RequestID: rid, Errors: fields,
	}
	body, merr := json.Marshal(p)
	if merr != nil {
		return fmt.Errorf("api: encode problem: %w", merr)
	}
	for _, h := range headers {
		c.Set(h.name, h.value)
	}
	setCommonHeaders(c)
	c.Set(fiber.HeaderContentType, ProblemContentType)
	return c.Status(status).Send(body)
}

// clip shortens client-supplied text echoed in a problem (such as an
// unknown field name) to a bounded length, on a rune boundary.
func clip(s string) string { return clipN(s, 100) }

func clipPath(p string) string { return clipN(p, 1024) }

func clipN(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
