package requests

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/deadline"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Kind is what a data subject asks for.
type Kind string

// The kinds of request.
const (
	// Access: a copy of, or information about, the data held (GDPR
	// Art. 15, CCPA §1798.110, PIPEDA Principle 4.9, DPDP s. 11).
	Access Kind = "access"
	// Export: everything held, as files (the export service answers it).
	Export Kind = "export"
	// Portability: the data the subject provided, in a machine-readable
	// format (GDPR Art. 20).
	Portability Kind = "portability"
	// Rectification: a correction of the subject's data (GDPR Art. 16,
	// CCPA §1798.106, DPDP s. 12); the request carries the patch.
	Rectification Kind = "rectification"
	// Erasure: the subject's data erased (GDPR Art. 17, CCPA §1798.105,
	// DPDP s. 12); the erasure service answers it.
	Erasure Kind = "erasure"
	// Restriction: processing restricted (GDPR Art. 18).
	Restriction Kind = "restriction"
	// OptOut: do not sell or share (CCPA §1798.120).
	OptOut Kind = "opt-out"
)

// Kinds returns every kind, in a stable order.
func Kinds() []Kind {
	return []Kind{Access, Export, Portability, Rectification, Erasure, Restriction, OptOut}
}

// Status is where a request stands.
type Status string

// The states of a request.
const (
	Received   Status = "received"
	Verified   Status = "verified"
	InProgress Status = "in_progress"
	Extended   Status = "extended"
	Completed  Status = "completed"
	Rejected   Status = "rejected"
)

// Statuses returns every status, in the order a request moves through them.
func Statuses() []Status {
	return []Status{Received, Verified, InProgress, Extended, Completed, Rejected}
}

// Open reports whether a request in status s still awaits an answer.
func (s Status) Open() bool { return s != Completed && s != Rejected }

// Request is a data subject's request as the service answers it: the
// subject, the verification evidence and the reasons opened.
type Request struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Kind   Kind   `json:"kind"`
	// Subject is the subject's id, opened; empty once an erasure request
	// completed (its pseudonym remains).
	Subject string `json:"subject,omitempty"`
	// SubjectPseudonym is how the tenant's audit entries name the subject.
	SubjectPseudonym string `json:"subject_pseudonym"`
	Status           Status `json:"status"`
	// Received is when the request arrived; Due when it must be answered
	// (the end of the due day in TimeZone, extension included).
	Received time.Time `json:"received"`
	Due      time.Time `json:"due"`
	// Regulation, Basis, TimeZone and ResponseDays are the rule the due
	// date follows, fixed when the request was received (a later change of
	// the tenant's settings does not move it).
	Regulation   deadline.Mode `json:"regulation"`
	Basis        string        `json:"basis"`
	TimeZone     string        `json:"time_zone"`
	ResponseDays int           `json:"response_days,omitempty"`
	// Attributes place the request in attribute scopes (a property), as a
	// record's do: a scoped principal sees only requests inside its scope.
	Attributes    map[string]string `json:"attributes,omitempty"`
	Verification  *Verification     `json:"verification,omitempty"`
	Extension     *Extension        `json:"extension,omitempty"`
	Rejection     string            `json:"rejection,omitempty"`
	Rectification *Patch            `json:"rectification,omitempty"`
	History       []Step            `json:"history"`
	Updated       time.Time         `json:"updated"`
	Result        *Result           `json:"result,omitempty"`
}

// Result is what answered a request: the export's id, the signed receipt
// of an erasure, counts by kind of what was handled, a note.
type Result struct {
	Export  string            `json:"export,omitempty"`
	Receipt string            `json:"receipt,omitempty"` // signed receipt text
	Counts  map[string]uint64 `json:"counts,omitempty"`
	Note    string            `json:"note,omitempty"`
}

// Verification is how the subject's identity was checked: a method and
// its evidence (a text, sealed at rest; Digest is its keyed digest as the
// audit entry holds it).
type Verification struct {
	Method   string      `json:"method"`
	Evidence string      `json:"evidence,omitempty"`
	Digest   string      `json:"digest,omitempty"`
	At       time.Time   `json:"at"`
	Actor    audit.Actor `json:"actor"`
}

// Extension is the request's one extension: by how much ("2 months"),
// why (sealed at rest), when it was decided, and the due date before it.
type Extension struct {
	By          string    `json:"by"`
	Reason      string    `json:"reason,omitempty"`
	At          time.Time `json:"at"`
	OriginalDue time.Time `json:"original_due"`
}

// Patch is a rectification: the fields of one of the subject's records
// to change (a JSON merge patch of its fields, as records.Patch applies).
type Patch struct {
	Collection string                     `json:"collection"`
	Record     string                     `json:"record"`
	Fields     map[string]json.RawMessage `json:"fields"`
}

// Step is one transition of a request.
type Step struct {
	From  Status      `json:"from,omitempty"`
	To    Status      `json:"to"`
	At    time.Time   `json:"at"`
	Actor audit.Actor `json:"actor"`
}

// Keys gives the tenant's keys; *keyring.Hierarchy implements it.
type Keys interface {
	// DataKey with subject "" is the tenant's data key: the private part
	// of a request (subject, evidence, reasons, patch) is sealed under it.
	DataKey(ctx context.Context, tenant, subject string) (*keyring.Key, error)
	// IndexKey keys the blind index a subject's requests are found by.
	IndexKey(ctx context.Context, tenant string) ([]byte, error)
	// AuditKey keys the subject's pseudonym and the digests of texts in
	// audit entries.
	AuditKey(ctx context.Context, tenant string) ([]byte, error)
}

// Rectifier applies a rectification: it patches fields of the record id
// of collection, which must be the subject's (records.ErrNotFound-like
// otherwise), as caller, and returns the record's new version.
// *records.Service implements it (Rectify).
type Rectifier interface {
	Rectify(ctx context.Context, caller audit.Principal, tenant, subject, collection, id string, fields map[string]json.RawMessage) (uint64, error)
}

// DefaultDueSoon is how close to its due date an open request counts as
// due soon, unless the service is given another window (WithDueSoon).
const DefaultDueSoon = 7 * 24 * time.Hour

// Service tracks data-subject requests. It is safe for concurrent use.
type Service struct {
	tenancy   *tenancy.Boundary
	keys      Keys
	now       func() time.Time
	random    io.Reader
	dueSoon   time.Duration
	rectifier Rectifier
	flagger   Flagger
}

// Option varies a Service.
type Option func(*Service)

// WithClock sets the service's clock (default time.Now): tests of
// deadlines move it.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithRandom sets the source of request ids' random part.
func WithRandom(r io.Reader) Option { return func(s *Service) { s.random = r } }

// WithDueSoon sets how close to its due date a request is due soon.
func WithDueSoon(d time.Duration) Option { return func(s *Service) { s.dueSoon = d } }

// WithRectifier gives the records' patch that rectifications apply.
func WithRectifier(r Rectifier) Option { return func(s *Service) { s.rectifier = r } }

// Flagger sets a subject's consent flag — "restrict-processing" for a
// completed restriction request, "do-not-sell" for a completed opt-out —
// with the request's id as its evidence. The node gives the consent
// service's SetFlag; this package does not import it (both are services
// of one rank).
type Flagger func(ctx context.Context, caller audit.Principal, tenant, subject, flag, requestID string) error

// WithFlagger makes completing a restriction or an opt-out request set
// the subject's flag first (see Flagger).
func WithFlagger(f Flagger) Option { return func(s *Service) { s.flagger = f } }

// New makes the service over b with the tenants' keys.
func New(b *tenancy.Boundary, keys Keys, opts ...Option) *Service {
	if b == nil || keys == nil {
		panic("requests: New needs the tenancy boundary and the keys")
	}
	s := &Service{tenancy: b, keys: keys, now: time.Now, random: rand.Reader, dueSoon: DefaultDueSoon}
	for _, o := range opts {
		o(s)
	}
	return s
}

// clock is the service's clock in UTC without a monotonic reading, so
// that times survive a JSON round trip unchanged.
func (s *Service) clock() time.Time { return s.now().UTC().Round(0) }

// callerIn refuses a principal of another tenant (as if the tenant did not
// exist); the operator and the system belong to none and may act in any.
func callerIn(caller audit.Principal, tenant string) error {
	if caller.Tenant != "" && caller.Tenant != tenant {
		return fmt.Errorf("%w: %s", ErrNoTenant, tenant)
	}
	return nil
}

// scope is the caller's handle on the tenant's store, restricted to its
// attribute scope: the one place the service makes one for a caller.
func (s *Service) scope(caller audit.Principal, tenant string) tenancy.Scope {
	return s.tenancy.Scope(tenant).Restrict(caller.Restriction(), layout)
}

// view reads the tenant through sc linearizably; ErrNoTenant when it does
// not exist.
func view(ctx context.Context, sc tenancy.Scope, fn func(tenancy.Read) error) error {
	exists := false
	err := sc.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		if exists = r.Exists(); !exists {
			return nil
		}
		return fn(r)
	})
	if errors.Is(err, tenancy.ErrNoTenant) || (err == nil && !exists) {
		return fmt.Errorf("%w: %s", ErrNoTenant, sc.ID())
	}
	if err != nil {
		return fmt.Errorf("requests: read %s: %w", sc.ID(), err)
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
