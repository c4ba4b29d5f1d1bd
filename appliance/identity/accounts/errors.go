package accounts

import (
	"errors"
	"time"
)

// Errors. Invalid input is a *validation.FieldError (validation.ErrInvalid)
// naming the field. The API answers ErrInvalidCredentials, ErrInvalidCode
// and ErrInvalidSession alike for every cause they cover: which check
// refused a login is for the audit log, not for the client.
var (
	// ErrInvalidCredentials: no such user, a wrong password, a disabled
	// user, a suspended or unknown tenant — at login.
	ErrInvalidCredentials = errors.New("accounts: invalid credentials")
	// ErrMFARequired: the password was right and the user has a second
	// factor, but the login carried no code.
	ErrMFARequired = errors.New("accounts: a second-factor code is required")
	// ErrInvalidCode: the second-factor code (or recovery code) is wrong,
	// replayed or already used.
	ErrInvalidCode = errors.New("accounts: invalid second-factor code")
	// ErrInvalidSession: an access or refresh token that is malformed,
	// expired, of a revoked session or of a disabled or deleted user.
	ErrInvalidSession = errors.New("accounts: invalid or revoked session")
	// ErrMFAEnrolmentOnly: the session may only enrol a second factor
	// (its user's role requires MFA and the user has none yet).
	ErrMFAEnrolmentOnly = errors.New("accounts: this session may only enrol a second factor")
	// ErrNotFound: no user (session, role) of the tenant has this id.
	ErrNotFound = errors.New("accounts: not found")
	// ErrRoleNotFound: the role named is neither built in nor one of the
	// tenant's custom roles.
	ErrRoleNotFound = errors.New("accounts: no such role")
	// ErrExists: a user of this username (a role of this name) exists.
	ErrExists = errors.New("accounts: already exists")
	// ErrConflict: the user changed meanwhile; read it again and retry.
	ErrConflict = errors.New("accounts: changed concurrently")
	// ErrForbidden: the caller may not do this to this user: an operator
	// creating anything but a tenant's first Owner, a user changing
	// their own role, or removing the last enabled Owner.
	ErrForbidden = errors.New("accounts: not allowed")
	// ErrTooMany: the tenant has MaxUsers users (MaxRoles roles).
	ErrTooMany = errors.New("accounts: too many")
	// ErrMFAState: the MFA operation does not fit the user's state
	// (confirming without a pending enrolment, enrolling when enrolled).
	ErrMFAState = errors.New("accounts: MFA state does not allow this")
	// ErrBackoff: the login backoff refused the attempt, unchecked; every
	// *BackoffError unwraps to it.
	ErrBackoff = errors.New("accounts: login backoff")
)

// BackoffError refuses a login attempt that comes before the account's or
// the source's backoff allows another (ratelimit.Backoff): the password is
// not checked. It unwraps to ErrInvalidCredentials' sibling ErrBackoff.
type BackoffError struct {
	RetryAfter time.Duration
}

func (e *BackoffError) Error() string {
	return "accounts: too many failed attempts; retry after " + e.RetryAfter.String()
}

// Unwrap returns ErrBackoff.
func (e *BackoffError) Unwrap() error { return ErrBackoff }
