package export

import (
	"errors"

	"github.com/custos/custos/appliance/records"
)

// Sentinel errors.
var (
	// ErrNotFound: no such export, or it expired.
	ErrNotFound = errors.New("export: not found")
	// ErrIntegrity: a stored export does not open (damaged or moved).
	ErrIntegrity = errors.New("export: integrity check failed")
	// ErrAborted: a condition failed (the export changed or the tenant
	// was deleted meanwhile); nothing was written.
	ErrAborted = errors.New("export: aborted by a concurrent change")
	// ErrNoRequests: the service was built without the requests service.
	ErrNoRequests = errors.New("export: no requests service")
	// ErrNoSubject: a subject export without a subject.
	ErrNoSubject = errors.New("export: no subject")
	// ErrScoped: a principal with attribute scopes cannot export (an
	// export must be whole); the records service's error, so that one
	// problem answers both.
	ErrScoped = records.ErrScoped
)
