package records

import (
	"errors"
	"fmt"
	"strings"

	"github.com/custos/custos/appliance/identity/visibility"
)

// Errors. Invalid input is a *validation.FieldError (validation.ErrInvalid)
// naming the JSON path of the part.
var (
	// ErrNotFound: no record has this id (or nothing is held about the
	// subject).
	ErrNotFound = errors.New("records: no such record")
	// ErrExists: a record with this id exists.
	ErrExists = errors.New("records: a record with this id exists")
	// ErrIntegrity: a stored value does not open under its place: altered
	// or moved. It is never served.
	ErrIntegrity = errors.New("records: a stored value failed its integrity check")
	// ErrVersion: If-Match named another version.
	ErrVersion = errors.New("records: the record is at another version")
	// ErrFindWithheld: a find by a blind-indexed field whose
	// classification the caller does not read in clear (an exact match
	// would confirm the value). It wraps visibility.ErrWithheld.
	ErrFindWithheld = fmt.Errorf("records: find by a field not read in clear: %w", visibility.ErrWithheld)

	// errStale: the operation read this node's local state and that state
	// may have been behind; nothing was written. Run it again from a
	// linearizable read.
	errStale = errors.New("records: this node's state may be behind")
)

// integrityError is ErrIntegrity for one record: the fields whose stored
// values do not open (their names, sorted), or the envelope itself when it
// does not decode.
type integrityError struct {
	collection, id string
	fields         []string
	envelope       bool
}

func (e *integrityError) Unwrap() error { return ErrIntegrity }

func (e *integrityError) Error() string {
	at := ErrIntegrity.Error() + ": " + e.collection + "/" + e.id
	if e.envelope {
		return at + " envelope"
	}
	named, others := e.names()
	switch {
	case len(named) == 1 && others == 0:
		return at + " field " + named[0]
	case others == 0:
		return at + " fields " + strings.Join(named, ", ")
	default:
		return fmt.Sprintf("%s fields %s (and %d not named)", at, strings.Join(named, ", "), others)
	}
}
