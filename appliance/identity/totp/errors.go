package totp

import "errors"

var (
	// ErrWrongCode is returned for a code that matches no step in the
	// window, and for a recovery code that is not (or no longer) in the
	// set.
	ErrWrongCode = errors.New("totp: wrong code")
	// ErrReplayed is returned for a code that is right but for a step at
	// or before the last one a code was accepted for.
	ErrReplayed = errors.New("totp: code already used")
	// ErrNotEnrolled is returned when a code is checked against a state
	// with no secret.
	ErrNotEnrolled = errors.New("totp: not enrolled")
	// ErrPending is returned when a login code or recovery code is checked
	// against an enrolment that has not been confirmed yet.
	ErrPending = errors.New("totp: enrolment not confirmed")
	// ErrAlreadyActive is returned by Confirm for an enrolment that is
	// already confirmed.
	ErrAlreadyActive = errors.New("totp: enrolment already confirmed")
	// ErrMalformedState is returned by ParseState for bytes that are not
	// the canonical encoding of a valid state.
	ErrMalformedState = errors.New("totp: malformed state")
)
