package collections

import "errors"

// Errors. An invalid definition is a *validation.FieldError
// (validation.ErrInvalid) whose Field is the JSON path of the part
// ("fields[2].type").
var (
	// ErrNotFound: no collection has this name (or version).
	ErrNotFound = errors.New("collections: no such collection")
	// ErrTooMany: the tenant has the maximum number of collections.
	ErrTooMany = errors.New("collections: the tenant has too many collections")
	// ErrConflict: a concurrent change won (or If-Match named another
	// version).
	ErrConflict = errors.New("collections: the collection changed meanwhile")
)
