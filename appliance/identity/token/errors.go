package token

import "errors"

// Errors. Callers must not tell the client which check refused a token: an
// API answers every one of them alike (401).
var (
	// ErrInvalidToken: the access or refresh token is malformed, badly
	// signed, of an unknown or retired key, of another issuer or audience,
	// not yet valid, or expired. Verify's errors also wrap the cause the
	// JWT library gave (jwt.ErrTokenExpired and the like), for logs and
	// tests.
	ErrInvalidToken = errors.New("token: invalid token")
	// ErrExpired: the token was valid once and has expired; the errors
	// reporting it wrap ErrInvalidToken too. A client refreshes and tries
	// again.
	ErrExpired = errors.New("token: expired")
	// ErrUnknownKey: the token's key id names no key of the set, or a
	// retired one.
	ErrUnknownKey = errors.New("token: unknown signing key")
	// ErrReused: a spent refresh token was presented again; the error is a
	// *ReuseError naming the family to revoke.
	ErrReused = errors.New("token: refresh token reused")
	// ErrKeySet: an encoded key set does not decode to a usable set.
	ErrKeySet = errors.New("token: bad key set")
	// ErrCannotSign: the key set is verify-only (its public half alone):
	// it verifies tokens but cannot issue them or be encoded whole.
	ErrCannotSign = errors.New("token: verify-only key set")
)

// ReuseError reports a spent refresh token presented again: Family is the
// family (the session) the caller must revoke. It unwraps to ErrReused and
// ErrInvalidToken.
type ReuseError struct {
	Family string
}

func (e *ReuseError) Error() string { return "token: refresh token of family " + e.Family + " reused" }

// Unwrap returns ErrReused and ErrInvalidToken.
func (e *ReuseError) Unwrap() []error { return []error{ErrReused, ErrInvalidToken} }
