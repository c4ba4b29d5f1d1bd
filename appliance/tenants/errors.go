package tenants

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers match them with errors.Is; the HTTP layer maps
// them to statuses in one place.
var (
	// ErrNotFound: no tenant has that id.
	ErrNotFound = errors.New("tenant not found")
	// ErrExists: a tenant with that id already exists.
	ErrExists = errors.New("tenant already exists")
	// ErrInvalid: a value breaks a rule; see the wrapping *FieldError.
	ErrInvalid = errors.New("invalid tenant input")
	// ErrRegionMismatch: the tenant's region is not the cluster's.
	ErrRegionMismatch = errors.New("region mismatch")
	// ErrConflict: the tenant kept changing under a concurrent writer and
	// the change was not applied; the caller may retry.
	ErrConflict = errors.New("tenant modified concurrently")
)

// FieldError reports an invalid value of one input field. It unwraps to
// ErrInvalid. Reason is a fixed, human-readable phrase that never contains
// the rejected value, so it is safe to show to a client and to log.
type FieldError struct {
	Field  string // JSON name of the field, such as "display_name"
	Reason string // such as "must be 1 to 200 characters"
}

func (e *FieldError) Error() string { return "tenants: invalid " + e.Field + ": " + e.Reason }
func (e *FieldError) Unwrap() error { return ErrInvalid }

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
func (e *RegionMismatchError) Unwrap() error { return ErrRegionMismatch }
