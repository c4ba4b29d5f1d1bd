package breakglass

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// Limits.
const (
	// DefaultDuration is a grant's duration when the request names none.
	DefaultDuration = time.Hour
	// MaxDuration bounds every grant, whatever a policy says.
	MaxDuration = 24 * time.Hour
	// MinDuration is the shortest grant.
	MinDuration = time.Minute
	// DefaultPolicyMax is the longest grant of a tenant that set no policy.
	DefaultPolicyMax = 4 * time.Hour
	// PendingTTL is how long a request waits for approval.
	PendingTTL = 24 * time.Hour
	// MaxGrants bounds a tenant's stored grants (ended ones included: they
	// are its record of who read its data).
	MaxGrants = 1000
	maxReason = 500
)

// States of a grant.
const (
	Pending = "pending"
	Active  = "active"
	Revoked = "revoked"
	Expired = "expired" // ended by time: an active grant past its end, or a request that lapsed
)

var (
	// ErrNotFound: no grant of the tenant has this id.
	ErrNotFound = errors.New("breakglass: no such grant")
	// ErrState: the grant is not in a state that allows the change
	// (approving a grant that is not pending, revoking an ended one).
	ErrState = errors.New("breakglass: the grant's state does not allow this")
	// ErrConflict: the grant changed concurrently.
	ErrConflict = errors.New("breakglass: the grant changed concurrently")
	// ErrTooMany: the tenant holds MaxGrants grants.
	ErrTooMany = errors.New("breakglass: too many grants")
	// ErrNoTenant: the tenant does not exist.
	ErrNoTenant = errors.New("breakglass: no such tenant")
)

// Grant is one break-glass grant as stored and listed.
type Grant struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Operator is the id of the operator principal that requested it
	// ("operator" for the root credential, an operator user's id); only
	// it reads under the grant.
	Operator        string     `json:"operator"`
	Reason          string     `json:"reason"`
	DurationSeconds int64      `json:"duration_seconds"`
	State           string     `json:"state"`
	RequestedAt     time.Time  `json:"requested_at"`
	ApprovedBy      string     `json:"approved_by,omitempty"` // the approver's actor ("apikey:…", "user:…"), or "policy"
	ApprovedAt      *time.Time `json:"approved_at,omitempty"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
	EndedAt         *time.Time `json:"ended_at,omitempty"`
	EndedBy         string     `json:"ended_by,omitempty"` // who revoked it, or "expiry"
	// Visibility is how the operator reads the tenant's data under the
	// grant: "clear", as the tenant's approval says.
	Visibility string `json:"visibility"`
	// recorded: the expiry entry is in the chain (stored, not served).
	ExpiryRecorded bool `json:"expiry_recorded,omitempty"`
}

// Policy is what a tenant decided in advance about break-glass.
type Policy struct {
	// AutoApprove: requests are active at once, approved by the policy.
	AutoApprove bool `json:"auto_approve"`
	// MaxDurationSeconds bounds the tenant's grants (≤ MaxDuration).
	MaxDurationSeconds int64 `json:"max_duration_seconds"`
}

// DefaultPolicy is a tenant's policy until it sets one: every request
// waits for the Owner, for at most DefaultPolicyMax.
func DefaultPolicy() Policy {
	return Policy{MaxDurationSeconds: int64(DefaultPolicyMax / time.Second)}
}

// Validate checks p (errors are *validation.FieldError).
func (p Policy) Validate() error {
	if p.MaxDurationSeconds < int64(MinDuration/time.Second) || p.MaxDurationSeconds > int64(MaxDuration/time.Second) {
		return validation.Field("max_duration_seconds", fmt.Sprintf("must be %d to %d", int64(MinDuration/time.Second), int64(MaxDuration/time.Second)))
	}
	return nil
}

// Store paths, relative to the tenant's bucket.
var (
	grantsPath = raftstore.Path("breakglass")
	policyPath = raftstore.Path("breakglass_policy")
	policyKey  = []byte("policy")
)

// Service keeps tenants' break-glass grants. It is safe for concurrent
// use.
type Service struct {
	tenancy *tenancy.Boundary
	now     func() time.Time
}

// New makes a service over b; now is its clock (nil: time.Now).
func New(b *tenancy.Boundary, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{tenancy: b, now: now}
}

// stored is a grant with the version it was read at.
type stored struct {
	g       Grant
	version uint64
}

// state is g's state at now: an active grant past its end, or a pending
// one past PendingTTL, has expired whatever is stored.
func (g Grant) stateAt(now time.Time) string {
	switch {
	case g.State == Active && g.ExpiresAt != nil && !now.Before(*g.ExpiresAt):
		return Expired
	case g.State == Pending && !now.Before(g.RequestedAt.Add(PendingTTL)):
		return Expired
	}
	return g.State
}

// endAt is when an expired grant ended.
func (g Grant) endAt() time.Time {
	if g.State == Active && g.ExpiresAt != nil {
		return *g.ExpiresAt
	}
	return g.RequestedAt.Add(PendingTTL)
}

// read loads the tenant's grants and policy.
func (s *Service) read(ctx context.Context, tenant string) ([]stored, Policy, error) {
	var out []stored
	pol := DefaultPolicy()
	exists := false
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		exists = r.Exists()
		r.Scan(grantsPath, nil, 0, func(_, v []byte, version uint64) bool {
			var g Grant
			if json.Unmarshal(v, &g) == nil {
				out = append(out, stored{g: g, version: version})
			}
			return true
		})
		if v, _, ok := r.Get(policyPath, policyKey); ok {
			if err := json.Unmarshal(v, &pol); err != nil {
				return fmt.Errorf("breakglass: policy of %s: %w", tenant, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, Policy{}, fmt.Errorf("breakglass: read %s: %w", tenant, err)
	}
	if !exists {
		return nil, Policy{}, ErrNoTenant
	}
	return out, pol, nil
}

// sweep records the expiry of every grant of gs that ended by time and
// has no expiry entry yet: one transaction, conditioned on each grant's
// version (a concurrent sweep makes it a no-op).
func (s *Service) sweep(ctx context.Context, tenant string, gs []stored) error {
	now := s.now().UTC()
	var txn tenancy.Txn
	for _, st := range gs {
		g := st.g
		if g.stateAt(now) != Expired || g.ExpiryRecorded {
			continue
		}
		end := g.endAt()
		g.State, g.EndedAt, g.EndedBy, g.ExpiryRecorded = Expired, &end, "expiry", true
		entry, err := audit.System().Entry(now, "breakglass.expire", "breakglass:"+g.ID, audit.OutcomeSuccess,
			map[string]string{"operator": g.Operator, "ended_at": end.Format(time.RFC3339)}).Encode()
		if err != nil {
			return err
		}
		val, _ := json.Marshal(g)
		txn.Conds = append(txn.Conds, raftstore.Cond{Kind: raftstore.CondVersion, Bucket: grantsPath, Key: []byte(g.ID), Version: st.version})
		txn.Ops = append(txn.Ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: grantsPath, Key: []byte(g.ID), Value: val})
		txn.Audit = append(txn.Audit, entry)
	}
	if len(txn.Ops) == 0 {
		return nil
	}
	if _, err := s.tenancy.Scope(tenant).Apply(ctx, &txn); err != nil {
		return fmt.Errorf("breakglass: record expiries of %s: %w", tenant, err)
	}
	return nil // not applied: another sweep recorded them
}

// List returns the tenant's grants with their current state, newest
// first, after recording expiries.
func (s *Service) List(ctx context.Context, tenant string) ([]Grant, error) {
	gs, _, err := s.read(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if err := s.sweep(ctx, tenant, gs); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	out := make([]Grant, 0, len(gs))
	for _, st := range gs {
		out = append(out, served(st.g, now))
	}
	slices.SortFunc(out, func(a, b Grant) int { return b.RequestedAt.Compare(a.RequestedAt) })
	return out, nil
}

// served is g as clients see it at now.
func served(g Grant, now time.Time) Grant {
	if st := g.stateAt(now); st == Expired && g.State != Expired {
		end := g.endAt()
		g.State, g.EndedAt, g.EndedBy = Expired, &end, "expiry"
	}
	g.ExpiryRecorded = false
	return g
}

// RequestInput is an operator's request.
type RequestInput struct {
	Reason string
	// Duration of the grant once approved; 0: DefaultDuration.
	Duration time.Duration
}

// Request records operator who's request for a grant on tenant: pending,
// or active at once when the tenant's policy auto-approves.
func (s *Service) Request(ctx context.Context, who audit.Principal, tenant string, in RequestInput) (Grant, error) {
	if who.Kind != audit.ActorOperator {
		return Grant{}, fmt.Errorf("breakglass: %w: only operators request break-glass", ErrState)
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" || utf8.RuneCountInString(reason) > maxReason || !utf8.ValidString(reason) || strings.ContainsFunc(reason, func(r rune) bool { return r < 0x20 }) {
		return Grant{}, validation.Field("reason", fmt.Sprintf("must say why, in 1 to %d characters without control characters", maxReason))
	}
	d := in.Duration
	if d == 0 {
		d = DefaultDuration
	}
	gs, pol, err := s.read(ctx, tenant)
	if err != nil {
		return Grant{}, err
	}
	if max := time.Duration(pol.MaxDurationSeconds) * time.Second; d < MinDuration || d > max || d%time.Second != 0 {
		return Grant{}, validation.Field("duration_seconds", fmt.Sprintf("must be %d to %d (the tenant's policy), whole seconds", int64(MinDuration/time.Second), pol.MaxDurationSeconds))
	}
	if len(gs) >= MaxGrants {
		return Grant{}, ErrTooMany
	}
	if err := s.sweep(ctx, tenant, gs); err != nil {
		return Grant{}, err
	}
	id, err := newID()
	if err != nil {
		return Grant{}, err
	}
	now := s.now().UTC()
	g := Grant{ID: id, Tenant: tenant, Operator: who.ID, Reason: reason, DurationSeconds: int64(d / time.Second), State: Pending, RequestedAt: now, Visibility: "clear"}
	details := map[string]string{"reason": reason, "duration_seconds": fmt.Sprint(g.DurationSeconds)}
	var entries [][]byte
	e, err := who.Entry(now, "breakglass.request", "breakglass:"+id, audit.OutcomeSuccess, details).Encode()
	if err != nil {
		return Grant{}, err
	}
	entries = append(entries, e)
	if pol.AutoApprove {
		exp := now.Add(d)
		g.State, g.ApprovedBy, g.ApprovedAt, g.ExpiresAt = Active, "policy", &now, &exp
		e, err := audit.System().Entry(now, "breakglass.approve", "breakglass:"+id, audit.OutcomeSuccess,
			map[string]string{"by": "policy", "operator": who.ID, "expires_at": exp.Format(time.RFC3339)}).Encode()
		if err != nil {
			return Grant{}, err
		}
		entries = append(entries, e)
	}
	val, _ := json.Marshal(g)
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: grantsPath, Key: []byte(id)}},
		Ops:   []raftstore.Op{{Kind: raftstore.OpPut, Bucket: grantsPath, Key: []byte(id), Value: val}},
		Audit: entries,
	})
	if err := applied(res, err); err != nil {
		return Grant{}, fmt.Errorf("breakglass: request on %s: %w", tenant, err)
	}
	return served(g, now), nil
}

// Approve activates a pending grant for its duration, from now; who is
// a principal of the tenant (the API admits only one whose role holds
// breakglass:update).
func (s *Service) Approve(ctx context.Context, who audit.Principal, tenant, id string) (Grant, error) {
	return s.change(ctx, who, tenant, id, "breakglass.approve", func(g *Grant, now time.Time) error {
		if g.stateAt(now) != Pending {
			return ErrState
		}
		exp := now.Add(time.Duration(g.DurationSeconds) * time.Second)
		g.State, g.ApprovedBy, g.ApprovedAt, g.ExpiresAt = Active, actorName(who), &now, &exp
		return nil
	})
}

// Revoke ends a pending or active grant now.
func (s *Service) Revoke(ctx context.Context, who audit.Principal, tenant, id string) (Grant, error) {
	return s.change(ctx, who, tenant, id, "breakglass.revoke", func(g *Grant, now time.Time) error {
		if st := g.stateAt(now); st != Pending && st != Active {
			return ErrState
		}
		g.State, g.EndedAt, g.EndedBy = Revoked, &now, actorName(who)
		return nil
	})
}

// actorName is how a grant names the principal that changed it.
func actorName(p audit.Principal) string { return p.Kind + ":" + p.ID }

// change applies fn to grant id and records action, conditioned on the
// version read.
func (s *Service) change(ctx context.Context, who audit.Principal, tenant, id, action string, fn func(*Grant, time.Time) error) (Grant, error) {
	var st stored
	found := false
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		v, version, ok := r.Get(grantsPath, []byte(id))
		if !ok {
			return nil
		}
		found = true
		st.version = version
		return json.Unmarshal(v, &st.g)
	})
	if err != nil {
		return Grant{}, fmt.Errorf("breakglass: read grant %s of %s: %w", id, tenant, err)
	}
	if !found {
		return Grant{}, ErrNotFound
	}
	now := s.now().UTC()
	g := st.g
	if err := fn(&g, now); err != nil {
		return Grant{}, err
	}
	details := map[string]string{"operator": g.Operator}
	if g.ExpiresAt != nil && action == "breakglass.approve" {
		details["expires_at"] = g.ExpiresAt.Format(time.RFC3339)
	}
	entry, err := who.Entry(now, action, "breakglass:"+id, audit.OutcomeSuccess, details).Encode()
	if err != nil {
		return Grant{}, err
	}
	val, _ := json.Marshal(g)
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: grantsPath, Key: []byte(id), Version: st.version}},
		Ops:   []raftstore.Op{{Kind: raftstore.OpPut, Bucket: grantsPath, Key: []byte(id), Value: val}},
		Audit: [][]byte{entry},
	})
	if err := applied(res, err); err != nil {
		return Grant{}, fmt.Errorf("breakglass: %s %s of %s: %w", action, id, tenant, err)
	}
	return served(g, now), nil
}

// active is operator's active grant among gs at now.
func active(gs []stored, operator string, now time.Time) (Grant, bool) {
	for _, st := range gs {
		if st.g.Operator == operator && st.g.stateAt(now) == Active {
			return st.g, true
		}
	}
	return Grant{}, false
}

// Granted reports whether operator holds an active grant on tenant now
// (visibility.Grants): a read, nothing recorded.
func (s *Service) Granted(ctx context.Context, tenant string, operator audit.Principal) (bool, error) {
	if operator.Kind != audit.ActorOperator {
		return false, nil
	}
	gs, _, err := s.read(ctx, tenant)
	if errors.Is(err, ErrNoTenant) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, ok := active(gs, operator.ID, s.now().UTC())
	return ok, nil
}

// Use admits operator who to a read of tenant's data under an active
// grant, and records it (breakglass.use, naming the permission it uses)
// before the read: ok is false when who holds none. Expiries found are
// recorded first.
func (s *Service) Use(ctx context.Context, who audit.Principal, tenant, permission string) (Grant, bool, error) {
	if who.Kind != audit.ActorOperator {
		return Grant{}, false, nil
	}
	gs, _, err := s.read(ctx, tenant)
	if errors.Is(err, ErrNoTenant) {
		return Grant{}, false, nil
	}
	if err != nil {
		return Grant{}, false, err
	}
	if err := s.sweep(ctx, tenant, gs); err != nil {
		return Grant{}, false, err
	}
	now := s.now().UTC()
	g, ok := active(gs, who.ID, now)
	if !ok {
		return Grant{}, false, nil
	}
	entry, err := who.Entry(now, "breakglass.use", "breakglass:"+g.ID, audit.OutcomeSuccess, map[string]string{"permission": permission}).Encode()
	if err != nil {
		return Grant{}, false, err
	}
	if _, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{Audit: [][]byte{entry}}); err != nil {
		return Grant{}, false, fmt.Errorf("breakglass: record use of %s: %w", g.ID, err)
	}
	return served(g, now), true, nil
}

// Policy returns the tenant's policy (DefaultPolicy until it sets one).
func (s *Service) Policy(ctx context.Context, tenant string) (Policy, error) {
	_, pol, err := s.read(ctx, tenant)
	return pol, err
}

// SetPolicy replaces the tenant's policy (breakglass.policy in its chain).
func (s *Service) SetPolicy(ctx context.Context, who audit.Principal, tenant string, p Policy) (Policy, error) {
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	now := s.now().UTC()
	entry, err := who.Entry(now, "breakglass.policy", "breakglass-policy", audit.OutcomeSuccess,
		map[string]string{"auto_approve": fmt.Sprint(p.AutoApprove), "max_duration_seconds": fmt.Sprint(p.MaxDurationSeconds)}).Encode()
	if err != nil {
		return Policy{}, err
	}
	val, _ := json.Marshal(p)
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Ops:   []raftstore.Op{{Kind: raftstore.OpPut, Bucket: policyPath, Key: policyKey, Value: val}},
		Audit: [][]byte{entry},
	})
	if err := applied(res, err); err != nil {
		return Policy{}, fmt.Errorf("breakglass: set the policy of %s: %w", tenant, err)
	}
	return p, nil
}

// applied turns a transaction's outcome into an error.
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

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID is a random grant id: 16 characters of lower-case base32.
func newID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("breakglass: id: %w", err)
	}
	return strings.ToLower(b32.EncodeToString(b[:])), nil
}

// ValidID reports whether id is shaped like a grant id.
func ValidID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
