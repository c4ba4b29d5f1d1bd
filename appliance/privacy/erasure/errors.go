package erasure

import "errors"

// Errors.
var (
	// ErrNotFound: no erasure of this request in the ledger (or a
	// malformed request id).
	ErrNotFound = errors.New("erasure: no erasure of this request")
	// ErrNoTenant: the tenant does not exist.
	ErrNoTenant = errors.New("erasure: no such tenant")
	// ErrConflict: concurrent writes kept the erasure from finishing;
	// running it again finishes it.
	ErrConflict = errors.New("erasure: concurrent changes; run the erasure again")
	// ErrScoped: a principal with attribute scopes cannot carry out an
	// erasure, which acts on everything the tenant holds about the
	// subject.
	ErrScoped = errors.New("erasure: a principal with attribute scopes cannot erase a subject")
	// ErrTooDeep: refs with on_erase erase chain further than the
	// erasure follows.
	ErrTooDeep = errors.New("erasure: refs chain too deep")
)
