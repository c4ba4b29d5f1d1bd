package sso

import "errors"

// Errors. Invalid settings are *validation.FieldError (ErrInvalid); a
// refused sign-in is a *FlowError, which unwraps to ErrRefused.
var (
	// ErrNotConfigured: the tenant has no single sign-on settings (or
	// the tenant does not exist: both answer alike).
	ErrNotConfigured = errors.New("sso: single sign-on is not configured for the tenant")
	// ErrRefused: a sign-in was refused; the *FlowError says why.
	ErrRefused = errors.New("sso: sign-in refused")
	// ErrProvider: the identity provider could not be reached, or
	// answered what is not OpenID Connect discovery, token or key set.
	ErrProvider = errors.New("sso: identity provider unavailable")
	// ErrTooManyFlows: the tenant has too many sign-ins under way.
	ErrTooManyFlows = errors.New("sso: too many sign-ins under way for the tenant")
	// ErrUnknownUser: the identity maps onto no user of the tenant and
	// just-in-time creation is off ([Accounts] reports it).
	ErrUnknownUser = errors.New("sso: no user of the tenant has this identity")
	// ErrUserDisabled: the identity's user is disabled ([Accounts]
	// reports it).
	ErrUserDisabled = errors.New("sso: the user is disabled")
	// ErrTenantSuspended: the tenant is suspended: its people do not
	// sign in ([Accounts] reports it).
	ErrTenantSuspended = errors.New("sso: the tenant is suspended")
)

// Reasons a sign-in is refused ([FlowError.Reason]): stable slugs,
// recorded in the tenant's audit chain and answered to the client.
const (
	ReasonState     = "bad-state"        // no sign-in under way has this state (unknown, used, expired, or another browser's)
	ReasonIdP       = "idp-error"        // the provider answered an error instead of a code
	ReasonExchange  = "code-exchange"    // the provider refused the code
	ReasonIDToken   = "bad-id-token"     // no ID token, bad signature, wrong issuer or audience, expired
	ReasonNonce     = "bad-nonce"        // the ID token's nonce is not this sign-in's
	ReasonTenantID  = "bad-tenant-id"    // the token's tid is not one the settings allow (templated issuer)
	ReasonNoRole    = "no-role"          // no mapping matched and there is no default role
	ReasonUser      = "unknown-user"     // no such user and just-in-time creation is off
	ReasonDisabled  = "user-disabled"    // the user is disabled
	ReasonSuspended = "tenant-suspended" // the tenant is suspended
	ReasonMFA       = "mfa-required"     // the role requires MFA and the provider's does not satisfy the tenant's rule
)

// FlowError is a refused sign-in: Reason is one of the Reason* slugs;
// Err, when not nil, is the underlying cause (for logs: it may name
// the provider's message, never a token or a code).
type FlowError struct {
	Reason string
	Err    error
}

func (e *FlowError) Error() string {
	if e.Err != nil {
		return "sso: sign-in refused: " + e.Reason + ": " + e.Err.Error()
	}
	return "sso: sign-in refused: " + e.Reason
}

// Unwrap returns ErrRefused and the cause.
func (e *FlowError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrRefused, e.Err}
	}
	return []error{ErrRefused}
}

func refused(reason string, err error) error { return &FlowError{Reason: reason, Err: err} }
