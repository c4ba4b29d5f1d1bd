package tenants

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/deadline"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// State is a tenant's lifecycle state.
type State string

// Tenant states.
const (
	StateActive    State = "active"
	StateSuspended State = "suspended"
)

// Audit actions written by this package.
const (
	ActionCreate  = "tenant.create"
	ActionUpdate  = "tenant.update"
	ActionSuspend = "tenant.suspend"
	ActionResume  = "tenant.resume"
	ActionDelete  = "tenant.delete"
)

// DefaultListLimit is the page size of List when none is asked for; the
// largest is validation.MaxPage.
const DefaultListLimit = 50

const (
	// updateAttempts bounds the read-decide-write cycles of one change
	// when concurrent writers keep changing the tenant.
	updateAttempts = 5
	// createAttempts bounds the retries of a generated id that collided.
	createAttempts = 3
	generatedIDLen = 10
)

// Tenant is one registry entry; its JSON form is both the stored value and
// what the API returns.
type Tenant struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	Region      string `json:"region"`
	State       State  `json:"state"`
	KeyProvider string `json:"key_provider,omitempty"`
	// AuditRetentionDays overrides the cluster's audit retention (0: the
	// default, five years).
	AuditRetentionDays int `json:"audit_retention_days,omitempty"`
	// Regulation is the regulation mode the tenant's data-subject
	// requests are timed by (default gdpr).
	Regulation deadline.Mode `json:"regulation"`
	// TimeZone is the IANA zone whose calendar days request deadlines
	// are counted in (default UTC).
	TimeZone string `json:"time_zone"`
	// DPDPResponseDays is the response period under the dpdp mode, in
	// days (default 30; kept, and unused, under the other modes).
	DPDPResponseDays int `json:"dpdp_response_days"`
	// RetentionDays is how long a record of a collection that sets no
	// retention_days of its own is kept (default 365).
	RetentionDays int       `json:"retention_days"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// CreateInput is what a caller supplies to create a tenant.
type CreateInput struct {
	ID          string // empty: generated
	DisplayName string
	Region      string // empty: the cluster's region
	// Keys says where the tenant's root key lives (default: age, held by
	// the cluster). Used only when the Service has a Keys (WithKeys).
	Keys keyring.ProviderSpec
}

// Keys creates a tenant's key hierarchy in the transaction that creates
// the tenant, and signals its destruction in the one that deletes it (with
// writes of its system records); *keyring.Hierarchy implements it.
type Keys interface {
	PrepareProvision(ctx context.Context, caller keyring.Auditor, tenant string, spec keyring.ProviderSpec) (*keyring.Provisioning, error)
	DeleteTenantOps(tenant string) []raftstore.Op
}

var _ Keys = (*keyring.Hierarchy)(nil)

// Patch lists the fields to change; nil fields are left alone.
type Patch struct {
	DisplayName *string
	// AuditRetentionDays: how long the tenant's audit entries are kept (0:
	// the cluster's audit.retention).
	AuditRetentionDays *int
	// Regulation: gdpr, ccpa, pipeda or dpdp (any ASCII case).
	Regulation *string
	// TimeZone: an IANA zone name.
	TimeZone *string
	// DPDPResponseDays: 1 to 90.
	DPDPResponseDays *int
	// RetentionDays: 1 to MaxRetentionDays.
	RetentionDays *int
}

// empty reports whether p changes nothing at all.
func (p Patch) empty() bool {
	return p.DisplayName == nil && p.AuditRetentionDays == nil && p.Regulation == nil &&
		p.TimeZone == nil && p.DPDPResponseDays == nil && p.RetentionDays == nil
}

// Service is the tenant registry. It is safe for concurrent use.
type Service struct {
	store  tenancy.Registry
	region string
	clock  func() time.Time
	random io.Reader
	keys   Keys
}

// Option adjusts a Service; tests use them to fix the clock.
type Option func(*Service)

// WithClock sets the source of timestamps (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.clock = now } }

// WithKeys makes every new tenant get its key hierarchy in the same
// transaction (without it, tenants have no keys: tests of the registry).
func WithKeys(k Keys) Option { return func(s *Service) { s.keys = k } }

// WithRandom sets the source of generated ids (default crypto/rand.Reader).
func WithRandom(r io.Reader) Option { return func(s *Service) { s.random = r } }

// New returns the registry of a cluster whose region is region, over the
// tenancy boundary's registry storage. A nil boundary or a region that is
// not a region name is a wiring mistake (the node configuration is
// validated before this is called), so New panics rather than return a
// half-usable service.
func New(b *tenancy.Boundary, region string, opts ...Option) *Service {
	if b == nil {
		panic("tenants: New needs the tenancy boundary")
	}
	if !validRegion(region) {
		panic(fmt.Sprintf("tenants: cluster region %q is not a region name", region))
	}
	s := &Service{store: b.Registry(), region: region, clock: time.Now, random: rand.Reader}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Region is the cluster's region.
func (s *Service) Region() string { return s.region }

// Create registers a tenant and creates its storage bucket, with an audit
// entry, in one transaction.
func (s *Service) Create(ctx context.Context, who audit.Principal, in CreateInput) (Tenant, error) {
	if err := checkPrincipal(who); err != nil {
		return Tenant{}, err
	}
	name, err := normalizeDisplayName(in.DisplayName)
	if err != nil {
		return Tenant{}, err
	}
	region := in.Region
	if region == "" {
		region = s.region
	}
	if !validRegion(region) {
		return Tenant{}, validation.Field("region", "must be a region name such as eu-west-1")
	}
	if region != s.region {
		return Tenant{}, &RegionMismatchError{Requested: region, Cluster: s.region}
	}
	generated := in.ID == ""
	if !generated && !ValidID(in.ID) {
		return Tenant{}, validation.Field("id", "must be 2 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit")
	}
	for attempt := 1; ; attempt++ {
		id := in.ID
		if generated {
			if id, err = s.generateID(); err != nil {
				return Tenant{}, err
			}
		}
		t, err := s.create(ctx, who, id, name, region, in.Keys)
		if generated && errors.Is(err, ErrExists) && attempt < createAttempts {
			continue // a generated id collided: draw another
		}
		return t, err
	}
}

func (s *Service) create(ctx context.Context, who audit.Principal, id, name, region string, spec keyring.ProviderSpec) (Tenant, error) {
	now := s.now()
	t := Tenant{ID: id, DisplayName: name, Region: region, State: StateActive, CreatedAt: now, UpdatedAt: now}.withDefaults()
	var prov *keyring.Provisioning
	if s.keys != nil {
		// Before anything is written: a Vault tenant's key must answer.
		var err error
		if prov, err = s.keys.PrepareProvision(ctx, who, id, spec); err != nil {
			return Tenant{}, fmt.Errorf("tenants: keys of %q: %w", id, err)
		}
		t.KeyProvider = prov.Spec.Kind
	}
	value, err := json.Marshal(t)
	if err != nil {
		return Tenant{}, fmt.Errorf("tenants: encode %q: %w", id, err)
	}
	entry, err := auditEntry(now, who, ActionCreate, id)
	if err != nil {
		return Tenant{}, err
	}
	var keys *tenancy.Txn
	if prov != nil {
		keys = &prov.Txn
	}
	res, err := s.store.Create(ctx, id, value, entry, keys)
	if err != nil {
		return Tenant{}, fmt.Errorf("tenants: create %q: %w", id, err)
	}
	switch {
	case res.Applied:
		return t, nil
	case res.Err != nil:
		return Tenant{}, fmt.Errorf("tenants: create %q: %w", id, res.Err)
	case res.FailedCond == 0:
		return Tenant{}, fmt.Errorf("tenants: create %q: %w", id, ErrExists)
	default:
		return Tenant{}, fmt.Errorf("tenants: create %q: storage bucket exists without a registry entry: %w", id, ErrExists)
	}
}

// Get returns the tenant with id.
func (s *Service) Get(ctx context.Context, c raftstore.Consistency, id string) (Tenant, error) {
	t, _, err := s.read(ctx, c, id)
	return t, err
}

// IDs returns the ids of every tenant (for background work that visits
// each tenant, such as sweeping abandoned uploads).
func (s *Service) IDs(ctx context.Context) ([]string, error) {
	var ids []string
	after := ""
	for {
		page, next, err := s.List(ctx, raftstore.Stale, after, validation.MaxPage)
		if err != nil {
			return nil, err
		}
		for _, t := range page {
			ids = append(ids, t.ID)
		}
		if next == "" {
			return ids, nil
		}
		after = next
	}
}

// List returns up to limit tenants in id order, starting after the id
// after (empty: from the first). next is the last id of the page when more
// tenants follow, and empty otherwise. A limit of 0 means
// DefaultListLimit.
func (s *Service) List(ctx context.Context, c raftstore.Consistency, after string, limit int) (page []Tenant, next string, err error) {
	if limit, err = validation.PageLimit(limit, DefaultListLimit); err != nil {
		return nil, "", err
	}
	if after != "" && !ValidID(after) {
		return nil, "", validation.Field("after", "must be a tenant id")
	}
	page = make([]Tenant, 0, min(limit, 64))
	more := false
	var decodeErr error
	err = s.store.View(ctx, c, func(tx tenancy.RegistryRead) error {
		page, more, decodeErr = page[:0], false, nil
		// One extra entry tells whether another page follows.
		tx.Scan(after, limit+1, func(key string, value []byte, _ uint64) bool {
			if len(page) == limit {
				more = true
				return false
			}
			var t Tenant
			if t, decodeErr = Decode(value); decodeErr != nil {
				decodeErr = fmt.Errorf("tenants: registry entry %q: %w", key, decodeErr)
				return false
			}
			page = append(page, t)
			return true
		})
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("tenants: list: %w", err)
	}
	if decodeErr != nil {
		return nil, "", decodeErr
	}
	if more {
		next = page[len(page)-1].ID
	}
	return page, next, nil
}

// Update changes the fields set in p. An empty patch is invalid; a patch
// that changes nothing returns the tenant unchanged.
func (s *Service) Update(ctx context.Context, who audit.Principal, id string, p Patch) (Tenant, error) {
	if p.empty() {
		return Tenant{}, validation.Field("display_name", "is required (or another setting to change)")
	}
	var name string
	if p.DisplayName != nil {
		var err error
		if name, err = normalizeDisplayName(*p.DisplayName); err != nil {
			return Tenant{}, err
		}
	}
	if d := p.AuditRetentionDays; d != nil && (*d < 0 || *d > MaxAuditRetentionDays) {
		return Tenant{}, validation.Field("audit_retention_days", "must be between 0 (the cluster's default) and 36500")
	}
	mode, zone, err := p.checkPrivacy()
	if err != nil {
		return Tenant{}, err
	}
	return s.modify(ctx, who, id, func(cur Tenant, now time.Time) (change, error) {
		next := cur
		if p.DisplayName != nil {
			next.DisplayName = name
		}
		if p.AuditRetentionDays != nil {
			next.AuditRetentionDays = *p.AuditRetentionDays
		}
		next = p.applyPrivacy(next, mode, zone)
		if next == cur {
			return change{}, nil
		}
		next.UpdatedAt = now
		return change{action: ActionUpdate, next: next}, nil
	})
}

// MaxAuditRetentionDays bounds a tenant's audit retention (100 years).
const MaxAuditRetentionDays = 36500

// Suspend marks the tenant suspended. Suspending a suspended tenant
// succeeds and changes nothing.
func (s *Service) Suspend(ctx context.Context, who audit.Principal, id string) (Tenant, error) {
	return s.setState(ctx, who, id, StateSuspended, ActionSuspend)
}

// Resume marks the tenant active. Resuming an active tenant succeeds and
// changes nothing.
func (s *Service) Resume(ctx context.Context, who audit.Principal, id string) (Tenant, error) {
	return s.setState(ctx, who, id, StateActive, ActionResume)
}

func (s *Service) setState(ctx context.Context, who audit.Principal, id string, state State, action string) (Tenant, error) {
	return s.modify(ctx, who, id, func(cur Tenant, now time.Time) (change, error) {
		if cur.State == state {
			return change{}, nil
		}
		cur.State, cur.UpdatedAt = state, now
		return change{action: action, next: cur}, nil
	})
}

// Delete removes the tenant's registry entry and its whole storage bucket
// in one transaction.
func (s *Service) Delete(ctx context.Context, who audit.Principal, id string) error {
	_, err := s.modify(ctx, who, id, func(cur Tenant, _ time.Time) (change, error) {
		return change{action: ActionDelete, next: cur, delete: true}, nil
	})
	return err
}

// change is what a modification decided: nothing (empty action), a new
// registry value, or a deletion.
type change struct {
	action string
	next   Tenant
	delete bool
}

// modify runs read, decide, write with a version condition, repeating when
// a concurrent writer changed the tenant between the read and the write.
func (s *Service) modify(ctx context.Context, who audit.Principal, id string, decide func(cur Tenant, now time.Time) (change, error)) (Tenant, error) {
	if err := checkPrincipal(who); err != nil {
		return Tenant{}, err
	}
	for range updateAttempts {
		cur, version, err := s.read(ctx, raftstore.Linearizable, id)
		if err != nil {
			return Tenant{}, err
		}
		now := s.now()
		ch, err := decide(cur, now)
		if err != nil {
			return Tenant{}, err
		}
		if ch.action == "" {
			return cur, nil
		}
		res, err := s.change(ctx, id, version, ch, who, now)
		if err != nil {
			return Tenant{}, fmt.Errorf("tenants: %s %q: %w", ch.action, id, err)
		}
		if res.Applied {
			return ch.next, nil
		}
		if res.Err != nil {
			return Tenant{}, fmt.Errorf("tenants: %s %q: %w", ch.action, id, res.Err)
		}
		// The version condition failed: read again.
	}
	return Tenant{}, fmt.Errorf("tenants: %q changed %d times while being modified: %w", id, updateAttempts, ErrConflict)
}

// change writes ch, conditioned on the tenant's entry being at version.
func (s *Service) change(ctx context.Context, id string, version uint64, ch change, who audit.Principal, now time.Time) (raftstore.Result, error) {
	entry, err := auditEntry(now, who, ch.action, id)
	if err != nil {
		return raftstore.Result{}, err
	}
	if ch.delete {
		var sys []raftstore.Op
		if s.keys != nil {
			sys = s.keys.DeleteTenantOps(id)
		}
		return s.store.Delete(ctx, id, version, entry, sys)
	}
	value, err := json.Marshal(ch.next)
	if err != nil {
		return raftstore.Result{}, fmt.Errorf("tenants: encode %q: %w", id, err)
	}
	return s.store.Update(ctx, id, version, value, entry)
}

// read returns the tenant and the version of its registry entry.
func (s *Service) read(ctx context.Context, c raftstore.Consistency, id string) (Tenant, uint64, error) {
	if !ValidID(id) {
		return Tenant{}, 0, fmt.Errorf("tenants: %w", ErrNotFound)
	}
	var (
		value   []byte
		version uint64
		found   bool
	)
	err := s.store.View(ctx, c, func(tx tenancy.RegistryRead) error {
		value, version, found = tx.Get(id)
		return nil
	})
	if err != nil {
		return Tenant{}, 0, fmt.Errorf("tenants: read %q: %w", id, err)
	}
	if !found {
		return Tenant{}, 0, fmt.Errorf("tenants: %q: %w", id, ErrNotFound)
	}
	t, err := Decode(value)
	if err != nil {
		return Tenant{}, 0, fmt.Errorf("tenants: %q: %w", id, err)
	}
	return t, version, nil
}

// Decode reads a registry entry, as tenancy.Read.Entry gives it to a
// component that reads a tenant's data and needs its state in the same
// snapshot. Privacy settings an older entry lacks read as their defaults.
func Decode(entry []byte) (Tenant, error) {
	var t Tenant
	if err := json.Unmarshal(entry, &t); err != nil {
		return Tenant{}, fmt.Errorf("tenants: decode registry entry: %w", err)
	}
	return t.withDefaults(), nil
}

// now is the service's clock in UTC, without a monotonic reading, so that
// values survive a JSON round trip unchanged.
func (s *Service) now() time.Time { return s.clock().UTC() }

// generateID returns "t-" and ten random base32 characters (50 bits).
func (s *Service) generateID() (string, error) {
	var b [7]byte // 56 bits encode to 12 base32 characters; 10 are kept
	if _, err := io.ReadFull(s.random, b[:]); err != nil {
		return "", fmt.Errorf("tenants: generate id: %w", err)
	}
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
	return "t-" + strings.ToLower(enc[:generatedIDLen]), nil
}

// auditEntry is the system-chain entry of a tenant change. Its fields hold
// no free text from the request (the display name stays out), so no
// personal data reaches the audit log.
func auditEntry(now time.Time, who audit.Principal, action, id string) ([]byte, error) {
	e := who.Entry(now, action, tenancy.AuditTarget(id), audit.OutcomeSuccess, nil)
	b, err := e.Encode()
	if err != nil {
		return nil, fmt.Errorf("tenants: audit entry: %w", err)
	}
	return b, nil
}
