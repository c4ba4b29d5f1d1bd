package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/deadline"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// Limits.
const (
	// MaxText bounds a free text (evidence, reason, note), in bytes.
	MaxText = 4096
	// MaxAttributes bounds a request's attributes.
	MaxAttributes = 16
	// MaxPatchFields bounds the fields one rectification changes.
	MaxPatchFields = 64
	// MaxPatchBytes bounds a rectification's encoded fields.
	MaxPatchBytes = 64 << 10
	// writeAttempts bounds the read-decide-write cycles of one change.
	writeAttempts = 8
)

// Input is a new request.
type Input struct {
	Kind    Kind
	Subject string
	// Received is when the request arrived (zero: now). It may be earlier
	// than now — a letter recorded on a later day — which only brings the
	// due date closer; never later than now.
	Received   time.Time
	Attributes map[string]string
	// Rectification is the patch of a rectification request (required for
	// that kind, refused for the others).
	Rectification *Patch
}

// ParseKind reads a kind by its name; anything else is a
// *validation.FieldError on field.
func ParseKind(field, s string) (Kind, error) {
	for _, k := range Kinds() {
		if string(k) == s {
			return k, nil
		}
	}
	return "", validation.Field(field, "must be one of access, export, portability, rectification, erasure, restriction, opt-out")
}

// ParseStatus reads a status by its name; anything else is a
// *validation.FieldError on field.
func ParseStatus(field, s string) (Status, error) {
	for _, st := range Statuses() {
		if string(st) == s {
			return st, nil
		}
	}
	return "", validation.Field(field, "must be one of received, verified, in_progress, extended, completed, rejected")
}

func checkSubject(subject string) error {
	if !validation.ID(subject) {
		return validation.Field("subject", fmt.Sprintf("must be 1 to %d of a-z A-Z 0-9 . _ - :", validation.MaxID))
	}
	return nil
}

func checkAttributes(attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return validation.Field("attributes", fmt.Sprintf("must hold at most %d attributes", MaxAttributes))
	}
	for name, v := range attrs {
		if !validation.ID(name) || !validation.ID(v) {
			return validation.Field("attributes", "names and values must be 1 to 64 of a-z A-Z 0-9 . _ - :")
		}
	}
	return nil
}

func (p *Patch) check() error {
	switch {
	case !validation.ID(p.Collection):
		return validation.Field("rectification.collection", "must be a collection name")
	case !validation.ID(p.Record):
		return validation.Field("rectification.record", "must be a record id")
	case len(p.Fields) == 0 || len(p.Fields) > MaxPatchFields:
		return validation.Field("rectification.fields", fmt.Sprintf("must change 1 to %d fields", MaxPatchFields))
	}
	size := 0
	for name, v := range p.Fields {
		if !validation.ID(name) || !json.Valid(v) {
			return validation.Field("rectification.fields", "must map field names to JSON values")
		}
		size += len(name) + len(v)
	}
	if size > MaxPatchBytes {
		return validation.Field("rectification.fields", fmt.Sprintf("must be at most %d bytes", MaxPatchBytes))
	}
	return nil
}

func (in Input) check(now time.Time) error {
	if _, err := ParseKind("kind", string(in.Kind)); err != nil {
		return err
	}
	if err := checkSubject(in.Subject); err != nil {
		return err
	}
	if err := checkAttributes(in.Attributes); err != nil {
		return err
	}
	if in.Received.After(now) {
		return validation.Field("received", "must not be in the future")
	}
	switch {
	case in.Kind == Rectification && in.Rectification == nil:
		return validation.Field("rectification", "is required for a rectification request")
	case in.Kind != Rectification && in.Rectification != nil:
		return validation.Field("rectification", "is only for a rectification request")
	case in.Rectification != nil:
		return in.Rectification.check()
	}
	return nil
}

// Create records a new request, received, due by the tenant's regulation
// mode in its time zone. An open request of the same kind for the same
// subject refuses it (*DuplicateError naming that request).
func (s *Service) Create(ctx context.Context, caller audit.Principal, tenant string, in Input) (Request, error) {
	if err := callerIn(caller, tenant); err != nil {
		return Request{}, err
	}
	now := s.clock()
	if err := in.check(now); err != nil {
		return Request{}, err
	}
	received := in.Received.UTC().Round(0)
	if in.Received.IsZero() {
		received = now
	}
	dkey, ikey, akey, err := s.keysOf(ctx, tenant)
	if err != nil {
		return Request{}, err
	}
	tok := token(ikey, in.Subject)
	id, err := s.newID(now)
	if err != nil {
		return Request{}, err
	}
	pseudonym := audit.Pseudonym(akey, "subject", in.Subject)
	sc := s.scope(caller, tenant)
	for range writeAttempts {
		var (
			existing string
			rule     deadline.Rule
			zone     string
			days     int
		)
		err := view(ctx, sc, func(r tenancy.Read) error {
			if v, _, ok := r.Get(openPath(tok), []byte(in.Kind)); ok {
				existing = string(v)
				return nil
			}
			var err error
			rule, zone, days, err = settings(r)
			return err
		})
		if err != nil {
			return Request{}, err
		}
		if existing != "" {
			return Request{}, &DuplicateError{Existing: existing, Kind: in.Kind}
		}
		loc, err := deadline.LoadZone("time_zone", zone)
		if err != nil {
			return Request{}, err
		}
		// The due date: the law's period from the day of receipt in the
		// tenant's zone — GDPR Art. 12(3) one month, CCPA Civ. Code
		// §1798.130(a)(2) 45 days, PIPEDA s. 8(3) 30 days, DPDP Act s. 13(2)
		// the tenant's period (deadline/rules.go cites each in full).
		d, err := deadline.New(received, rule, loc)
		if err != nil {
			return Request{}, err
		}
		req := Request{
			ID: id, Tenant: tenant, Kind: in.Kind, Subject: in.Subject, SubjectPseudonym: pseudonym,
			Status: Received, Received: received, Due: d.Due().UTC(),
			Regulation: rule.Mode(), Basis: rule.Basis(), TimeZone: zone, ResponseDays: days,
			Attributes: maps.Clone(in.Attributes), Rectification: in.Rectification,
			History: []Step{{To: Received, At: now, Actor: caller.Actor()}}, Updated: now,
		}
		st, err := seal(dkey, tok, 1, req)
		if err != nil {
			return Request{}, err
		}
		val, err := json.Marshal(st)
		if err != nil {
			return Request{}, fmt.Errorf("requests: encode %s: %w", id, err)
		}
		entry, err := caller.Entry(now, "request.create", pseudonym, audit.OutcomeSuccess, map[string]string{
			"request": id, "kind": string(in.Kind), "regulation": string(rule.Mode()),
			"received": received.Format(time.RFC3339Nano), "due": req.Due.Format(time.RFC3339Nano),
		}).Encode()
		if err != nil {
			return Request{}, err
		}
		res, err := sc.Apply(ctx, &tenancy.Txn{
			Conds: []raftstore.Cond{
				{Kind: raftstore.CondAbsent, Bucket: requestsPath, Key: []byte(id)},
				{Kind: raftstore.CondAbsent, Bucket: openPath(tok), Key: []byte(in.Kind)},
			},
			Ops: []raftstore.Op{
				{Kind: raftstore.OpPut, Bucket: requestsPath, Key: []byte(id), Value: val},
				{Kind: raftstore.OpPut, Bucket: subjectPath(tok), Key: []byte(id), Value: []byte{}},
				{Kind: raftstore.OpPut, Bucket: openPath(tok), Key: []byte(in.Kind), Value: []byte(id)},
			},
			Audit: [][]byte{entry},
		})
		switch err := applied(res, err); {
		case errors.Is(err, ErrConflict):
			continue // another request of the kind took the marker: read it
		case err != nil:
			return Request{}, fmt.Errorf("requests: create in %s: %w", tenant, err)
		}
		return req, nil
	}
	return Request{}, fmt.Errorf("%w: a request of %s", ErrConflict, tenant)
}

// settings reads the tenant's deadline rule and zone from its registry
// entry in r's snapshot.
func settings(r tenancy.Read) (deadline.Rule, string, int, error) {
	v, ok := r.Entry()
	if !ok {
		return deadline.Rule{}, "", 0, ErrNoTenant
	}
	t, err := tenants.Decode(v)
	if err != nil {
		return deadline.Rule{}, "", 0, err
	}
	rule, zone, err := t.Deadlines()
	if err != nil {
		return deadline.Rule{}, "", 0, fmt.Errorf("requests: the settings of tenant %s: %w", t.ID, err)
	}
	days := 0
	if rule.Mode() == deadline.DPDP {
		days = t.DPDPResponseDays
	}
	return rule, zone.String(), days, nil
}
