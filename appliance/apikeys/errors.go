package apikeys

import "errors"

// Errors. Invalid input is a *validation.FieldError (validation.ErrInvalid)
// naming the field.
var (
	// ErrNotFound: no API key of the tenant has this id.
	ErrNotFound = errors.New("apikeys: no such key")
	// ErrInvalidToken: the token is malformed, unknown, revoked or expired.
	// Callers must not tell these apart to the client.
	ErrInvalidToken = errors.New("apikeys: invalid API key")
	// ErrTooMany: the tenant has MaxKeysPerTenant keys.
	ErrTooMany = errors.New("apikeys: the tenant has too many keys")
	// ErrClientCertRequired: the key is bound to a client certificate
	// (Key.ClientCertCN) and the request's connection did not present it.
	ErrClientCertRequired = errors.New("apikeys: the key requires its client certificate")
	// ErrUnknownRole: a stored key names a role that is no built-in
	// tenant role.
	ErrUnknownRole = errors.New("apikeys: unknown role")
)
