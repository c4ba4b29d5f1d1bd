package keyring

import (
	"errors"
	"fmt"
)

// Sentinel errors. An invalid ProviderSpec is a *validation.FieldError
// (validation.ErrInvalid) naming the part; a key that cannot be had is an
// *UnavailableError.
var (
	// ErrOpen: the ciphertext does not authenticate under this key and
	// place — tampered, truncated, or moved from another place.
	ErrOpen = errors.New("keyring: message authentication failed")
	// ErrFormat: the bytes are not a ciphertext of a known format.
	ErrFormat = errors.New("keyring: malformed ciphertext")
	// ErrKeyVersion: the ciphertext names another key version.
	ErrKeyVersion = errors.New("keyring: ciphertext was sealed with another key version")
	// ErrRootUnavailable: the root key cannot be used (sealed node, revoked
	// Vault key); the caller fails closed.
	ErrRootUnavailable = errors.New("keyring: root key unavailable")
	// ErrSealed: this node has no seal identity, so it cannot use any
	// tenant root; it answers every key operation with it until restarted
	// with one. It is ErrRootUnavailable.
	ErrSealed = fmt.Errorf("%w: this node is sealed (no seal identity)", ErrRootUnavailable)
	// ErrNoKeys: the tenant has no key hierarchy (not provisioned, or
	// deleted).
	ErrNoKeys = errors.New("keyring: tenant has no keys")
	// ErrConcurrent: a concurrent key operation on the same tenant won;
	// read the state again and retry.
	ErrConcurrent = errors.New("keyring: a concurrent key operation won")

	errNoSealRecipients = errors.New("keyring: the cluster has no seal recipients (not bootstrapped by operator init)")
)

// UnavailableError is a key of Tenant that cannot be had, so the operation
// failed closed and changed nothing. Cause says why: it is
// ErrRootUnavailable when the tenant's root cannot be used — this node is
// sealed (ErrSealed), or the tenant's Vault refused or could not be reached
// — and ErrOpen when the root (or a KEK) does not decrypt the tenant's
// stored key (a different or trimmed key). Every Hierarchy operation that
// needs a tenant's key returns this type for these causes, so that callers
// (the HTTP layer's one problem mapping) need no list of the paths.
type UnavailableError struct {
	Tenant string
	Cause  error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("keyring: keys of tenant %s unavailable: %v", e.Tenant, e.Cause)
}

// Unwrap returns Cause.
func (e *UnavailableError) Unwrap() error { return e.Cause }

// failClosed makes *err an *UnavailableError of tenant when it says that a
// key cannot be had (ErrRootUnavailable, ErrOpen). Every exported
// Hierarchy method that reaches a tenant's root or unwraps one of its keys
// defers it (the others reach keys only through those), so no path
// returns these causes untyped.
func failClosed(tenant string, err *error) {
	var ue *UnavailableError
	if *err == nil || errors.As(*err, &ue) || !(errors.Is(*err, ErrRootUnavailable) || errors.Is(*err, ErrOpen)) {
		return
	}
	*err = &UnavailableError{Tenant: tenant, Cause: *err}
}
