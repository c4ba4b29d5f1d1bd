package requests

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: the tenant has no request of this id (or none the
	// caller's scope admits).
	ErrNotFound = errors.New("requests: no such request")
	// ErrNoTenant: the tenant does not exist (or the caller belongs to
	// another).
	ErrNoTenant = errors.New("requests: no such tenant")
	// ErrConflict: the request kept changing under concurrent writers.
	ErrConflict = errors.New("requests: changed concurrently")
	// ErrDuplicate is what every *DuplicateError unwraps to.
	ErrDuplicate = errors.New("duplicate request")
	// ErrInvalidTransition is what every *TransitionError unwraps to.
	ErrInvalidTransition = errors.New("invalid transition")
	// ErrNoRectifier: the service was built without the records' patch
	// (a wiring mistake: the node always gives it).
	ErrNoRectifier = errors.New("requests: no rectifier wired")
)

// DuplicateError refuses a request while the same subject has an open
// request of the same kind; Existing is that request's id. The API answers
// it 409 duplicate-request, naming Existing.
type DuplicateError struct {
	Existing string
	Kind     Kind
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("requests: the subject has an open %s request already: %s", e.Kind, e.Existing)
}

// Unwrap returns ErrDuplicate.
func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// Why a transition is refused (TransitionError.Why): fixed texts, safe to
// show.
const (
	WhyNotAllowed      = "the state machine has no such step"
	WhyNotVerified     = "the subject's identity has not been verified"
	WhyOwnRoute        = "a request of this kind is completed by its own operation (export, erasure or rectify)"
	WhyKind            = "the operation does not handle requests of this kind"
	WhyAlreadyExtended = "the deadline was extended once already; the law allows one extension"
	WhyTooLate         = "the extension comes after the original period ended; the subject must be told within it"
)

// TransitionError refuses a step the request's state does not allow;
// nothing is changed. The API answers it 409 invalid-transition.
type TransitionError struct {
	ID   string
	From Status
	To   Status
	Why  string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("requests: %s cannot go from %s to %s: %s", e.ID, e.From, e.To, e.Why)
}

// Unwrap returns ErrInvalidTransition.
func (e *TransitionError) Unwrap() error { return ErrInvalidTransition }
