package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/custos/custos/raftstore"
)

// Sentinel errors of this package; problemFor (problem.go) maps every
// error a handler returns, these and the services', to a problem.
var (
	// errNoLeaderKnown answers the health check of a node that knows no
	// leader.
	errNoLeaderKnown = fmt.Errorf("api: health: %w", raftstore.ErrNoLeader)
	// errStopScan ends a pathAt walk once the target value is found.
	errStopScan = errors.New("api: scan stopped")
)

// requestError is a problem this package found in the request itself
// (syntax, media type, parameters). Its detail and fields are written by
// this package and never contain internal error text.
type requestError struct {
	kind   kind
	detail string
	fields []FieldProblem
}

func (e *requestError) Error() string { return "api: " + e.detail }

// authError is a refused credential. cause, when set, is what the
// authenticator returned; if it is an availability error the request is
// answered 503, not 401, so that an outage does not look like a bad token.
type authError struct {
	missing bool
	cause   error
}

func (e *authError) Error() string {
	if e.missing {
		return "api: missing bearer token"
	}
	if e.cause != nil {
		return "api: operator token refused: " + e.cause.Error()
	}
	return "api: operator token refused"
}

func (e *authError) Unwrap() error { return e.cause }

// rateLimitedError is a request over its source's or its principal's rate
// limit; retryAfter is how long until the next one would be admitted.
type rateLimitedError struct {
	retryAfter time.Duration
}

func (e *rateLimitedError) Error() string {
	return "api: rate limited, retry after " + e.retryAfter.String()
}
