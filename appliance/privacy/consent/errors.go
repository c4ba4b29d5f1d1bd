package consent

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: the tenant has no purpose of this id.
	ErrNotFound = errors.New("consent: no such purpose")
	// ErrExists: the tenant has a purpose of this id already.
	ErrExists = errors.New("consent: the purpose exists")
	// ErrConflict: the purpose or the ledger changed concurrently (after
	// the retries a ledger append makes).
	ErrConflict = errors.New("consent: changed concurrently")
	// ErrNoTenant: the tenant does not exist (or the caller belongs to
	// another).
	ErrNoTenant = errors.New("consent: no such tenant")
	// ErrTooMany: the tenant holds MaxPurposes purposes, or the subject's
	// ledger MaxEvents events.
	ErrTooMany = errors.New("consent: too many")
	// ErrNotConsentBased: a grant or withdrawal of a purpose whose legal
	// basis (contract, legal obligation) does not rest on the subject's
	// agreement.
	ErrNotConsentBased = errors.New("consent: the purpose does not rest on consent")
	// ErrNoSubject: the tenant holds nothing about the subject — no
	// record, no blob, no consent event.
	ErrNoSubject = errors.New("consent: no such subject")
	// ErrNoKind: the tenant defines no such blob kind.
	ErrNoKind = errors.New("consent: no such blob kind")
	// ErrScoped: a principal restricted to an attribute scope asked for
	// the tenant's consent rates, which count subjects of every scope.
	ErrScoped = errors.New("consent: consent rates count every scope's subjects")
	// ErrConsentRequired is what every *RequiredError unwraps to.
	ErrConsentRequired = errors.New("consent required")
)

// Reasons a RequiredError gives.
const (
	ReasonNotGranted = "not-granted" // no grant, or no grant since the last withdrawal
	ReasonWithdrawn  = "withdrawn"   // the subject withdrew (or objected to) it
	ReasonRestricted = "restricted"  // the subject restricted processing
	ReasonDoNotSell  = "do-not-sell" // a sale, and the subject opted out
	ReasonUndefined  = "undefined"   // the tenant defines no such purpose
)

// RequiredError refuses processing for a purpose the subject's ledger does
// not allow; the API answers it 403 consent-required, naming the purpose.
type RequiredError struct {
	Purpose string
	Reason  string
}

func (e *RequiredError) Error() string {
	return fmt.Sprintf("consent required for purpose %s (%s)", e.Purpose, e.Reason)
}

// Unwrap returns ErrConsentRequired.
func (e *RequiredError) Unwrap() error { return ErrConsentRequired }
