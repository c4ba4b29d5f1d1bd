package consent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/visibility"
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

// Subjects tells whether a tenant holds anything about a subject (a
// record or a blob) within the caller's attribute scope; the node gives
// one over records' and blobs' subject indexes.
type Subjects interface {
	HasSubject(ctx context.Context, caller audit.Principal, tenant, subject string) (bool, error)
}

// Service keeps purposes and consent ledgers. It is safe for concurrent
// use.
type Service struct {
	tenancy  *tenancy.Boundary
	keys     Keys
	now      func() time.Time
	subjects Subjects             // nil: every subject exists
	reads    *audit.Batcher       // writes the entries of audited reads; nil: one transaction each
	vis      *visibility.Resolver // who reads evidence texts (pii)
}

// Option varies a Service.
type Option func(*Service)

// WithSubjects has the service refuse consent of a subject the tenant
// holds nothing about (ErrNoSubject): no record, no blob (as subj tells)
// and no consent event. Without it every subject exists.
func WithSubjects(subj Subjects) Option { return func(s *Service) { s.subjects = subj } }

// WithReadAudit has the service write the entries of audited reads (a
// subject's state and history) through b, the node's read-audit batcher.
func WithReadAudit(b *audit.Batcher) Option { return func(s *Service) { s.reads = b } }

// WithVisibility decides who reads evidence texts (pii) in a history:
// without it, visibility.New() (built-in roles and API keys).
func WithVisibility(r *visibility.Resolver) Option { return func(s *Service) { s.vis = r } }

// New makes a service over b with the tenants' keys; now is its clock
// (nil: time.Now).
func New(b *tenancy.Boundary, keys Keys, now func() time.Time, opts ...Option) *Service {
	if now == nil {
		now = time.Now
	}
	s := &Service{tenancy: b, keys: keys, now: now, vis: visibility.New()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// known reports whether the tenant holds anything about the subject for
// the caller: a consent event (events > 0), or what Subjects reports. A
// caller restricted to an attribute scope must find a record or blob of
// the subject inside it — a ledger carries no attributes, so it alone
// would let a scoped principal confirm a subject outside its scope.
func (s *Service) known(ctx context.Context, caller audit.Principal, tenant, subject string, events int) error {
	if s.subjects == nil || events > 0 && !caller.Restriction().Restricted() {
		return nil
	}
	ok, err := s.subjects.HasSubject(ctx, caller, tenant, subject)
	if err != nil {
		return fmt.Errorf("consent: subject of %s: %w", tenant, err)
	}
	if !ok {
		return ErrNoSubject
	}
	return nil
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
