package consent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Keys gives the tenant's keys; *keyring.Hierarchy implements it.
type Keys interface {
	// DataKey with subject "" is the tenant's data key: evidence texts
	// are sealed under it.
	DataKey(ctx context.Context, tenant, subject string) (*keyring.Key, error)
	// IndexKey keys the blind index a subject's ledger is stored under.
	IndexKey(ctx context.Context, tenant string) ([]byte, error)
	// AuditKey keys the pseudonyms of subjects and evidence digests in
	// audit entries.
	AuditKey(ctx context.Context, tenant string) ([]byte, error)
}

// Service keeps purposes and consent ledgers. It is safe for concurrent
// use.
type Service struct {
	tenancy *tenancy.Boundary
	keys    Keys
	now     func() time.Time
}

// New makes a service over b with the tenants' keys; now is its clock
// (nil: time.Now).
func New(b *tenancy.Boundary, keys Keys, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{tenancy: b, keys: keys, now: now}
}

// callerIn refuses a principal of another tenant (as if the tenant did not
// exist); the operator and the system belong to none and may act in any.
func callerIn(caller audit.Principal, tenant string) error {
	if caller.Tenant != "" && caller.Tenant != tenant {
		return fmt.Errorf("%w: %s", ErrNoTenant, tenant)
	}
	return nil
}

// view reads the tenant linearizably; ErrNoTenant when it does not exist.
func (s *Service) view(ctx context.Context, tenant string, fn func(tenancy.Read) error) error {
	exists := false
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		if exists = r.Exists(); !exists {
			return nil
		}
		return fn(r)
	})
	if errors.Is(err, tenancy.ErrNoTenant) || (err == nil && !exists) {
		return fmt.Errorf("%w: %s", ErrNoTenant, tenant)
	}
	if err != nil {
		return fmt.Errorf("consent: read %s: %w", tenant, err)
	}
	return nil
}

// applied is the outcome of a write: ErrConflict when a condition failed.
func applied(res raftstore.Result, err error) error {
	switch {
	case errors.Is(err, tenancy.ErrNoTenant):
		return ErrNoTenant
	case err != nil:
		return err
	case res.Err != nil:
		return res.Err
	case !res.Applied:
		return ErrConflict
	}
	return nil
}
