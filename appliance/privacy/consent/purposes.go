package consent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// Legal bases (GDPR art. 6(1) (a), (b), (c), (f)).
const (
	BasisConsent            = "consent"
	BasisContract           = "contract"
	BasisLegitimateInterest = "legitimate-interest"
	BasisLegalObligation    = "legal-obligation"
)

// Limits.
const (
	// MaxPurposes bounds a tenant's purposes.
	MaxPurposes = 128
	// MaxPurposeID bounds a purpose id, in bytes.
	MaxPurposeID = 48
	// MaxDescription bounds a purpose's description, in bytes.
	MaxDescription = 1000
)

// Purpose is one processing purpose of a tenant.
type Purpose struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Basis       string `json:"basis"`
	Required    bool   `json:"required"`
	// DefaultOn: without a grant or withdrawal a legitimate-interest
	// purpose is allowed. Never true on the consent basis.
	DefaultOn bool `json:"default_on"`
	// Sale: the purpose sells or shares the subject's data; a subject who
	// opted out (do-not-sell) refuses it.
	Sale bool `json:"sale"`
	// OnWithdraw is what happens to the data the purpose covers when a
	// subject withdraws it (OnWithdrawKeep, OnWithdrawErase,
	// OnWithdrawAnonymise; "" reads as keep): a rule other than keep
	// leaves a withdrawal mark the retention sweeper carries out.
	OnWithdraw string `json:"on_withdraw"`
	// PolicyVersion starts at 1; every update adds one.
	PolicyVersion int       `json:"policy_version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// PurposeInput is a purpose to create, or a purpose's new terms.
type PurposeInput struct {
	ID          string
	Description string
	Basis       string
	Required    bool
	DefaultOn   bool
	Sale        bool
	// OnWithdraw: "" is keep.
	OnWithdraw string
}

// What a withdrawal does to the data a purpose covers.
const (
	OnWithdrawKeep      = "keep"      // nothing: later processing is refused, the data stays until its retention
	OnWithdrawErase     = "erase"     // the retention sweeper erases it
	OnWithdrawAnonymise = "anonymise" // the retention sweeper anonymises it
)

var (
	purposesPath = raftstore.Path("consent_purposes")
	// versionsPath keeps every version of every purpose, so that a state
	// as of a past moment judges by the terms in force then.
	versionsPath = raftstore.Path("consent_purpose_versions")
)

// versionKey orders a purpose's versions after one another: id, 0, version.
func versionKey(id string, version int) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(id), 0), uint32(version))
}

// onWithdraw is the stored rule: "" is keep.
func onWithdraw(rule string) string {
	if rule == "" {
		return OnWithdrawKeep
	}
	return rule
}

// validPurposeID: 1 to MaxPurposeID of a-z 0-9 -, starting with a letter,
// not ending with -.
func validPurposeID(s string) bool {
	if s == "" || len(s) > MaxPurposeID || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}

// validate checks in's terms (not its id).
func (in PurposeInput) validate() error {
	d := strings.TrimSpace(in.Description)
	if d == "" || len(in.Description) > MaxDescription || !utf8.ValidString(in.Description) ||
		strings.ContainsFunc(in.Description, func(r rune) bool { return r < 0x20 && r != '\n' }) {
		return validation.Field("description", fmt.Sprintf("must be 1 to %d bytes of text", MaxDescription))
	}
	switch in.Basis {
	case BasisConsent, BasisContract, BasisLegitimateInterest, BasisLegalObligation:
	default:
		return validation.Field("basis", "must be consent, contract, legitimate-interest or legal-obligation")
	}
	switch in.OnWithdraw {
	case "", OnWithdrawKeep, OnWithdrawErase, OnWithdrawAnonymise:
	default:
		return validation.Field("on_withdraw", "must be keep, erase or anonymise")
	}
	if in.Basis == BasisConsent && in.DefaultOn {
		return validation.Field("default_on", "a purpose on the consent basis cannot default to on: consent is an affirmative act")
	}
	return nil
}

// CreatePurpose adds a purpose to the tenant, at policy version 1.
func (s *Service) CreatePurpose(ctx context.Context, caller audit.Principal, tenant string, in PurposeInput) (Purpose, error) {
	if !validPurposeID(in.ID) {
		return Purpose{}, validation.Field("id", fmt.Sprintf("must be 1 to %d of a-z, 0-9 and -, starting with a letter", MaxPurposeID))
	}
	if err := in.validate(); err != nil {
		return Purpose{}, err
	}
	if err := callerIn(caller, tenant); err != nil {
		return Purpose{}, err
	}
	count := 0
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		count = r.Count(purposesPath)
		return nil
	})
	if err != nil {
		return Purpose{}, err
	}
	if count >= MaxPurposes {
		return Purpose{}, fmt.Errorf("%w: purposes (at most %d)", ErrTooMany, MaxPurposes)
	}
	now := s.now().UTC()
	p := Purpose{ID: in.ID, Description: in.Description, Basis: in.Basis, Required: in.Required, DefaultOn: in.DefaultOn,
		Sale: in.Sale, OnWithdraw: onWithdraw(in.OnWithdraw), PolicyVersion: 1, CreatedAt: now, UpdatedAt: now}
	err = s.writePurpose(ctx, caller, tenant, "consent.purpose.create", p, raftstore.Cond{Kind: raftstore.CondAbsent, Bucket: purposesPath, Key: []byte(p.ID)})
	if errors.Is(err, ErrConflict) {
		return Purpose{}, fmt.Errorf("%w: %s", ErrExists, p.ID)
	}
	return p, err
}

// UpdatePurpose replaces the terms of a purpose, as a new policy version.
// ifMatch, when not 0, is the policy version the caller last read
// (ErrConflict when the purpose has moved on).
func (s *Service) UpdatePurpose(ctx context.Context, caller audit.Principal, tenant string, in PurposeInput, ifMatch int) (Purpose, error) {
	if err := in.validate(); err != nil {
		return Purpose{}, err
	}
	if err := callerIn(caller, tenant); err != nil {
		return Purpose{}, err
	}
	cur, version, err := s.purpose(ctx, tenant, in.ID)
	if err != nil {
		return Purpose{}, err
	}
	if ifMatch != 0 && ifMatch != cur.PolicyVersion {
		return Purpose{}, fmt.Errorf("%w: purpose %s is at policy version %d", ErrConflict, in.ID, cur.PolicyVersion)
	}
	p := cur
	p.Description, p.Basis, p.Required, p.DefaultOn, p.Sale = in.Description, in.Basis, in.Required, in.DefaultOn, in.Sale
	p.OnWithdraw = onWithdraw(in.OnWithdraw)
	p.PolicyVersion++
	p.UpdatedAt = s.now().UTC()
	err = s.writePurpose(ctx, caller, tenant, "consent.purpose.update", p, raftstore.Cond{Kind: raftstore.CondVersion, Bucket: purposesPath, Key: []byte(p.ID), Version: version})
	return p, err
}

// writePurpose stores p on cond, with its audit entry.
func (s *Service) writePurpose(ctx context.Context, caller audit.Principal, tenant, action string, p Purpose, cond raftstore.Cond) error {
	val, err := json.Marshal(p)
	if err != nil {
		return err
	}
	entry, err := caller.Entry(p.UpdatedAt, action, "consent-purpose:"+p.ID, audit.OutcomeSuccess, map[string]string{
		"basis": p.Basis, "required": fmt.Sprint(p.Required), "default_on": fmt.Sprint(p.DefaultOn),
		"sale": fmt.Sprint(p.Sale), "on_withdraw": p.OnWithdraw, "policy_version": fmt.Sprint(p.PolicyVersion),
	}).Encode()
	if err != nil {
		return err
	}
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: []raftstore.Cond{cond, {Kind: raftstore.CondAbsent, Bucket: versionsPath, Key: versionKey(p.ID, p.PolicyVersion)}},
		Ops: []raftstore.Op{
			{Kind: raftstore.OpPut, Bucket: purposesPath, Key: []byte(p.ID), Value: val},
			{Kind: raftstore.OpPut, Bucket: versionsPath, Key: versionKey(p.ID, p.PolicyVersion), Value: val},
		},
		Audit: [][]byte{entry},
	})
	if err := applied(res, err); err != nil {
		return fmt.Errorf("consent: %s %s of %s: %w", action, p.ID, tenant, err)
	}
	return nil
}

// Purpose returns one purpose of the tenant.
func (s *Service) Purpose(ctx context.Context, caller audit.Principal, tenant, id string) (Purpose, error) {
	if err := callerIn(caller, tenant); err != nil {
		return Purpose{}, err
	}
	p, _, err := s.purpose(ctx, tenant, id)
	return p, err
}

func (s *Service) purpose(ctx context.Context, tenant, id string) (p Purpose, version uint64, err error) {
	if !validPurposeID(id) {
		return Purpose{}, 0, ErrNotFound
	}
	found := false
	err = s.view(ctx, tenant, func(r tenancy.Read) error {
		v, ver, ok := r.Get(purposesPath, []byte(id))
		if !ok {
			return nil
		}
		found, version = true, ver
		return json.Unmarshal(v, &p)
	})
	if err != nil {
		return Purpose{}, 0, err
	}
	if !found {
		return Purpose{}, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return p, version, nil
}

// Purposes lists the tenant's purposes by id.
func (s *Service) Purposes(ctx context.Context, caller audit.Principal, tenant string) ([]Purpose, error) {
	if err := callerIn(caller, tenant); err != nil {
		return nil, err
	}
	var out []Purpose
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		var err error
		out, _, err = readPurposes(r)
		return err
	})
	return out, err
}

// PurposeVersions lists every version of one purpose, oldest first.
func (s *Service) PurposeVersions(ctx context.Context, caller audit.Principal, tenant, id string) ([]Purpose, error) {
	if err := callerIn(caller, tenant); err != nil {
		return nil, err
	}
	if !validPurposeID(id) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	var out []Purpose
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		var err error
		out, err = readVersions(r, id)
		return err
	})
	if err == nil && len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return out, err
}

// readVersions reads the versions of purpose id, or of every purpose
// (id ""), by id then version.
func readVersions(r tenancy.Read, id string) ([]Purpose, error) {
	var after []byte
	if id != "" {
		after = append([]byte(id), 0) // just before the purpose's first version key
	}
	var out []Purpose
	var bad error
	r.Scan(versionsPath, after, 0, func(k, v []byte, _ uint64) bool {
		if id != "" && !bytes.HasPrefix(k, append([]byte(id), 0)) {
			return false
		}
		var p Purpose
		if err := json.Unmarshal(v, &p); err != nil {
			bad = fmt.Errorf("consent: purpose version %q: %w", k, err)
			return false
		}
		out = append(out, p)
		return true
	})
	return out, bad
}

// termsAt is, of versions (by id then version), each purpose's version in
// force at at: its latest made at or before at. Purposes created later are
// left out.
func termsAt(versions []Purpose, at time.Time) []Purpose {
	var out []Purpose
	for _, p := range versions {
		if p.UpdatedAt.After(at) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].ID == p.ID {
			out[n-1] = p
		} else {
			out = append(out, p)
		}
	}
	return out
}

// readPurposes reads every purpose, with the version each was read at.
func readPurposes(r tenancy.Read) ([]Purpose, map[string]uint64, error) {
	out := []Purpose{}
	versions := map[string]uint64{}
	var bad error
	r.Scan(purposesPath, nil, 0, func(k, v []byte, version uint64) bool {
		var p Purpose
		if err := json.Unmarshal(v, &p); err != nil {
			bad = fmt.Errorf("consent: purpose %s: %w", k, err)
			return false
		}
		p.OnWithdraw = onWithdraw(p.OnWithdraw)
		out = append(out, p)
		versions[p.ID] = version
		return true
	})
	return out, versions, bad
}

// ValidPurposeID reports whether s can name a purpose: 1 to
// MaxPurposeID of a-z, 0-9 and -, starting with a letter.
func ValidPurposeID(s string) bool { return validPurposeID(s) }
