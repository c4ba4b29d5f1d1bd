package tenants

import (
	"errors"
	"fmt"

	"github.com/custos/custos/internal/tenancy"
)

// Sentinel errors. Callers match them with errors.Is; the HTTP layer maps
// them to statuses in one place. Invalid input is a
// *validation.FieldError (validation.ErrInvalid) naming the field.
var (
	// ErrNotFound: no tenant has that id. It is the tenancy boundary's
	// ErrNoTenant, so a write to a tenant deleted meanwhile (which the
	// boundary refuses) reports the same error as a lookup.
	ErrNotFound = tenancy.ErrNoTenant
	// ErrExists: a tenant with that id already exists.
	ErrExists = errors.New("tenant already exists")
	// ErrRegionMismatch: the tenant's region is not the cluster's.
	ErrRegionMismatch = errors.New("region mismatch")
	// ErrConflict: the tenant kept changing under a concurrent writer and
	// the change was not applied; the caller may retry.
	ErrConflict = errors.New("tenant modified concurrently")
	// ErrOutOfScope is a transaction that names something outside its
	// tenant: an audit chain other than the tenant's own. It is a bug in
	// the caller, and nothing of the transaction is applied.
	ErrOutOfScope = errors.New("tenants: the transaction reaches outside its tenant")
)

// RegionMismatchError reports a tenant requested in another region than the
// cluster's. It unwraps to ErrRegionMismatch. Requested has been checked to
// be a well-formed region name.
type RegionMismatchError struct {
	Requested string
	Cluster   string
}

func (e *RegionMismatchError) Error() string {
	return fmt.Sprintf("tenants: region %q requested, but this cluster serves region %q", e.Requested, e.Cluster)
}

// Unwrap returns ErrRegionMismatch.
func (e *RegionMismatchError) Unwrap() error { return ErrRegionMismatch }
