package consent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/keyring"
)

// Decisions: why a purpose is allowed or refused.
const (
	DecisionGranted    = "granted"
	DecisionWithdrawn  = "withdrawn"
	DecisionDefaultOn  = "default-on"
	DecisionDefaultOff = "default-off"
	DecisionBasis      = "basis"      // contract or legal obligation: no agreement needed
	DecisionRestricted = "restricted" // the subject restricted processing
	DecisionDoNotSell  = "do-not-sell"
)

// PurposeState is what a subject's ledger says of one purpose.
type PurposeState struct {
	Purpose  string `json:"purpose"`
	Basis    string `json:"basis"`
	Required bool   `json:"required"`
	Allowed  bool   `json:"allowed"`
	Decision string `json:"decision"`
	// Since is the time of the event that decided it (none for a
	// default or the basis).
	Since *time.Time `json:"since,omitempty"`
	// GrantedVersion is the policy version of the grant in force (0:
	// none); PolicyVersion the purpose's version in force at the state's
	// moment.
	GrantedVersion int    `json:"granted_version,omitempty"`
	PolicyVersion  int    `json:"policy_version"`
	Source         string `json:"source,omitempty"`
}

// State is a subject's consent at a moment.
type State struct {
	At         time.Time      `json:"at"`
	Purposes   []PurposeState `json:"purposes"`
	DoNotSell  bool           `json:"do_not_sell"`
	Restricted bool           `json:"restrict_processing"`
	// Events counts the ledger's events up to At.
	Events int `json:"events"`
}

// Purpose returns the state of one purpose, if the state has it.
func (st State) Purpose(id string) (PurposeState, bool) {
	i := slices.IndexFunc(st.Purposes, func(p PurposeState) bool { return p.Purpose == id })
	if i < 0 {
		return PurposeState{}, false
	}
	return st.Purposes[i], true
}

// evaluate is the state the events up to at give purposes (the terms in
// force at at).
func evaluate(purposes []Purpose, events []stored, at time.Time) State {
	st := State{At: at, Purposes: []PurposeState{}}
	type last struct {
		ev      *Event
		granted int
	}
	latest := map[string]last{}
	var all *Event // the latest withdrawal of all purposes
	for i := range events {
		ev := &events[i].Event
		if ev.At.After(at) {
			break
		}
		st.Events++
		switch {
		case ev.Kind == KindFlag && ev.Flag == FlagDoNotSell:
			st.DoNotSell = ev.On
		case ev.Kind == KindFlag && ev.Flag == FlagRestrictProcessing:
			st.Restricted = ev.On
		case ev.Kind == KindWithdraw && ev.All:
			all = ev
			clear(latest)
		default:
			for _, p := range ev.Purposes {
				latest[p] = last{ev: ev, granted: ev.PolicyVersions[p]}
			}
		}
	}
	for _, p := range purposes {
		ps := PurposeState{Purpose: p.ID, Basis: p.Basis, Required: p.Required, PolicyVersion: p.PolicyVersion}
		l, decided := latest[p.ID]
		switch {
		case p.Basis == BasisContract || p.Basis == BasisLegalObligation:
			ps.Allowed, ps.Decision = true, DecisionBasis
		case decided:
			ps.Since, ps.Source = &l.ev.At, l.ev.Source
			if l.ev.Kind == KindGrant {
				ps.Allowed, ps.Decision, ps.GrantedVersion = true, DecisionGranted, l.granted
			} else {
				ps.Decision = DecisionWithdrawn
			}
		case all != nil:
			ps.Since, ps.Source, ps.Decision = &all.At, all.Source, DecisionWithdrawn
		case p.Basis == BasisLegitimateInterest && p.DefaultOn:
			ps.Allowed, ps.Decision = true, DecisionDefaultOn
		default:
			ps.Decision = DecisionDefaultOff
		}
		// Restriction (GDPR art. 18(2)) leaves consent given and legal
		// obligations; do-not-sell refuses every sale.
		if st.Restricted && ps.Allowed && !(p.Basis == BasisLegalObligation || ps.Decision == DecisionGranted && p.Basis == BasisConsent) {
			ps.Allowed, ps.Decision = false, DecisionRestricted
		}
		if st.DoNotSell && p.Sale && ps.Allowed {
			ps.Allowed, ps.Decision = false, DecisionDoNotSell
		}
		st.Purposes = append(st.Purposes, ps)
	}
	return st
}

// State is the subject's consent now.
func (s *Service) State(ctx context.Context, caller audit.Principal, tenant, subject string) (State, error) {
	return s.StateAt(ctx, caller, tenant, subject, time.Time{})
}

// StateAt is the subject's consent at a past moment, from the ledger's
// events up to it, judged by the purposes' terms in force then (those
// created later left out); the zero time, or a time not in the past: now,
// by the current terms.
func (s *Service) StateAt(ctx context.Context, caller audit.Principal, tenant, subject string, at time.Time) (State, error) {
	if err := firstErr(callerIn(caller, tenant), checkSubject(subject)); err != nil {
		return State{}, err
	}
	now := s.now().UTC()
	past := !at.IsZero() && at.Before(now)
	l, err := s.ledger(ctx, tenant, subject, past)
	if err != nil {
		return State{}, err
	}
	if err := s.known(ctx, caller, tenant, subject, len(l.events)); err != nil {
		return State{}, err
	}
	st := evaluate(l.purposes, l.events, now)
	if past {
		st = evaluate(termsAt(l.history, at.UTC()), l.events, at.UTC())
	}
	details := map[string]string{"what": "state", "events": fmt.Sprint(st.Events)}
	if past {
		details["at"] = st.At.Format(time.RFC3339Nano)
	}
	if err := s.auditRead(ctx, caller, tenant, subject, details); err != nil {
		return State{}, err
	}
	return st, nil
}

// auditRead appends the consent.read entry of a read of the subject's
// consent (its state or history) to the tenant's chain, and returns once
// it is committed: no entry, no answer.
func (s *Service) auditRead(ctx context.Context, caller audit.Principal, tenant, subject string, details map[string]string) error {
	akey, err := s.keys.AuditKey(ctx, tenant)
	if err != nil {
		return err
	}
	e := caller.Entry(s.now().UTC(), "consent.read", audit.Pseudonym(akey, "subject", subject), audit.OutcomeSuccess, details)
	if err := audit.AppendRead(ctx, s.reads, s.tenancy.Scope(tenant), e); err != nil {
		return fmt.Errorf("consent: audit read: %w", err)
	}
	return nil
}

// History is the subject's ledger, oldest first, with evidence texts
// opened for a caller who reads pii in clear (an evidence text is a
// transcript); for any other its digest only, and EvidenceWithheld.
func (s *Service) History(ctx context.Context, caller audit.Principal, tenant, subject string) ([]Event, error) {
	if err := firstErr(callerIn(caller, tenant), checkSubject(subject)); err != nil {
		return nil, err
	}
	ikey, err := s.keys.IndexKey(ctx, tenant)
	if err != nil {
		return nil, err
	}
	tok := token(ikey, subject)
	l, err := s.read(ctx, tenant, tok, false)
	if err != nil {
		return nil, err
	}
	if err := s.known(ctx, caller, tenant, subject, len(l.events)); err != nil {
		return nil, err
	}
	sight, err := s.vis.Sight(ctx, caller, tenant)
	if err != nil {
		return nil, fmt.Errorf("consent: history: %w", err)
	}
	clear := sight.Of(roles.PII) == roles.Clear
	if err := s.auditRead(ctx, caller, tenant, subject, map[string]string{"what": "history", "events": fmt.Sprint(len(l.events))}); err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(l.events))
	var key *keyring.Key
	for _, e := range l.events {
		ev := e.Event
		if len(e.Sealed) > 0 && !clear {
			ev.EvidenceWithheld = true
		}
		if len(e.Sealed) > 0 && clear {
			if key == nil {
				if key, err = s.keys.DataKey(ctx, tenant, ""); err != nil {
					return nil, err
				}
			}
			text, err := keyring.Open(key, evidencePlace(tenant, tok, ev.Seq), e.Sealed)
			if err != nil {
				return nil, fmt.Errorf("consent: evidence of event %d: %w", ev.Seq, err)
			}
			ev.EvidenceText = string(text)
		}
		out = append(out, ev)
	}
	return out, nil
}

// ledger reads the tenant's purposes (with history, every version of
// them) and the subject's events.
func (s *Service) ledger(ctx context.Context, tenant, subject string, history bool) (ledger, error) {
	ikey, err := s.keys.IndexKey(ctx, tenant)
	if err != nil {
		return ledger{}, err
	}
	return s.read(ctx, tenant, token(ikey, subject), history)
}

// RequireRead refuses reading the subject's data for purposes the
// subject refused: withdrew (or objected to), restricted, or opted out
// of as a sale. A purpose merely not granted yet does not refuse a read —
// data stored before a collection required the purpose, or under a
// legitimate interest's default, stays readable until the subject
// refuses — and an undefined one fails closed, as in Require.
func (s *Service) RequireRead(ctx context.Context, tenant, subject string, purposes ...string) error {
	err := s.Require(ctx, tenant, subject, purposes...)
	var re *RequiredError
	if errors.As(err, &re) && re.Reason == ReasonNotGranted {
		return nil
	}
	return err
}

// Require refuses processing of the subject's data for any of purposes
// the subject's ledger does not allow now: a *RequiredError naming the
// first such purpose (unwrapping to ErrConsentRequired), which the API
// answers 403 consent-required. A purpose the tenant does not define is
// refused too (ReasonUndefined): enforcement fails closed. Later routes
// call it before a write or read of a subject's data whose collection or
// blob kind requires purposes.
func (s *Service) Require(ctx context.Context, tenant, subject string, purposes ...string) error {
	if err := checkSubject(subject); err != nil {
		return err
	}
	l, err := s.ledger(ctx, tenant, subject, false)
	if err != nil {
		return err
	}
	st := evaluate(l.purposes, l.events, s.now().UTC())
	for _, id := range purposes {
		ps, ok := st.Purpose(id)
		switch {
		case !ok:
			return &RequiredError{Purpose: id, Reason: ReasonUndefined}
		case ps.Allowed:
			continue
		case ps.Decision == DecisionWithdrawn:
			return &RequiredError{Purpose: id, Reason: ReasonWithdrawn}
		case ps.Decision == DecisionRestricted:
			return &RequiredError{Purpose: id, Reason: ReasonRestricted}
		case ps.Decision == DecisionDoNotSell:
			return &RequiredError{Purpose: id, Reason: ReasonDoNotSell}
		default:
			return &RequiredError{Purpose: id, Reason: ReasonNotGranted}
		}
	}
	return nil
}
