package consent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Sources of an event.
const (
	SourceIVR    = "ivr"
	SourceWeb    = "web"
	SourceApp    = "app"
	SourceAPI    = "api"
	SourceImport = "import"
)

// Kinds of an event.
const (
	KindGrant    = "grant"
	KindWithdraw = "withdraw"
	KindFlag     = "flag"
)

// Flags a subject sets or clears.
const (
	FlagDoNotSell          = "do-not-sell"
	FlagRestrictProcessing = "restrict-processing"
)

// Limits.
const (
	// MaxEvidenceText bounds an event's evidence text, in bytes.
	MaxEvidenceText = 4096
	// MaxEventPurposes bounds the purposes one grant or withdrawal names.
	MaxEventPurposes = 8
	// MaxEvents bounds one subject's ledger.
	MaxEvents = 10000
	// appendAttempts bounds the retries of an append that lost the race
	// for its sequence number to a concurrent one.
	appendAttempts = 16
)

// Evidence is what shows the subject's decision: a text (a transcript, the
// wording the subject accepted) or the id of a blob (the IVR greeting's
// recording), not both; it may be empty.
type Evidence struct {
	Text string
	Blob string
}

// Input is a grant or a withdrawal.
type Input struct {
	Subject string
	// Purposes names the purposes (1 to MaxEventPurposes); a withdrawal
	// may instead name none and set All.
	Purposes []string
	All      bool
	Source   string
	// PolicyVersion, when not 0, is the policy version the subject was
	// shown: every purpose granted must be at it. 0: the current ones.
	PolicyVersion int
	Evidence      Evidence
}

// FlagInput sets (On) or clears a subject's flag.
type FlagInput struct {
	Subject  string
	Flag     string
	On       bool
	Source   string
	Evidence Evidence
}

// Event is one entry of a subject's ledger.
type Event struct {
	Seq      uint64    `json:"seq"`
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	Purposes []string  `json:"purposes,omitempty"`
	// All: a withdrawal of every purpose.
	All bool `json:"all,omitempty"`
	// PolicyVersions are the versions of the purposes granted, as they
	// were when granted.
	PolicyVersions map[string]int `json:"policy_versions,omitempty"`
	Flag           string         `json:"flag,omitempty"`
	On             bool           `json:"on,omitempty"`
	Source         string         `json:"source"`
	// EvidenceText is the evidence text, opened (never stored in the
	// clear); EvidenceDigest its keyed digest, as the audit entry has it.
	EvidenceText   string `json:"evidence_text,omitempty"`
	EvidenceDigest string `json:"evidence_digest,omitempty"`
	EvidenceBlob   string `json:"evidence_blob,omitempty"`
	// EvidenceWithheld: the event has an evidence text the reader does
	// not read (it reads pii masked or not at all); its digest is given.
	EvidenceWithheld bool        `json:"evidence_withheld,omitempty"`
	Actor            audit.Actor `json:"actor"`
}

// stored is an event as the ledger keeps it: its evidence text sealed.
type stored struct {
	Event
	Sealed []byte `json:"evidence_sealed,omitempty"`
}

var ledgerRoot = "consent_ledger"

func ledgerPath(token string) [][]byte { return raftstore.Path(ledgerRoot, token) }

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// token is the subject's blind index: what its ledger is stored under.
func token(indexKey []byte, subject string) string {
	m := hmac.New(sha256.New, indexKey)
	m.Write([]byte("consent-subject"))
	m.Write([]byte{0})
	m.Write([]byte(subject))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// evidencePlace binds a sealed evidence text to its event.
func evidencePlace(tenant, tok string, seq uint64) keyring.Place {
	return keyring.Place{Tenant: tenant, Collection: "consent", RecordID: tok, Field: "evidence", Version: seq}
}

func checkSubject(subject string) error {
	if !validation.ID(subject) {
		return validation.Field("subject", fmt.Sprintf("must be 1 to %d of a-z A-Z 0-9 . _ - :", validation.MaxID))
	}
	return nil
}

func checkSource(source string) error {
	switch source {
	case SourceIVR, SourceWeb, SourceApp, SourceAPI, SourceImport:
		return nil
	}
	return validation.Field("source", "must be ivr, web, app, api or import")
}

func (e Evidence) check() error {
	if e.Text != "" && e.Blob != "" {
		return validation.Field("evidence", "must be a text or a blob id, not both")
	}
	if len(e.Text) > MaxEvidenceText || !utf8.ValidString(e.Text) {
		return validation.Field("evidence.text", fmt.Sprintf("must be at most %d bytes of UTF-8 text", MaxEvidenceText))
	}
	if e.Blob != "" && !validation.ID(e.Blob) {
		return validation.Field("evidence.blob", "must be a blob id")
	}
	return nil
}

// checkPurposes resolves named purposes against the tenant's: each known,
// once, and resting on the subject's agreement.
func checkPurposes(names []string, known map[string]Purpose) error {
	if len(names) == 0 || len(names) > MaxEventPurposes {
		return validation.Field("purposes", fmt.Sprintf("must name 1 to %d purposes", MaxEventPurposes))
	}
	for i, n := range names {
		field := fmt.Sprintf("purposes[%d]", i)
		p, ok := known[n]
		switch {
		case !ok && validPurposeID(n):
			return validation.Field(field, fmt.Sprintf("%s is not a purpose of the tenant", n))
		case !ok:
			return validation.Field(field, "is not a purpose of the tenant")
		case slices.Index(names, n) != i:
			return validation.Field(field, "is named twice")
		case p.Basis == BasisContract || p.Basis == BasisLegalObligation:
			return fmt.Errorf("%w: %s rests on %s", ErrNotConsentBased, n, p.Basis)
		}
	}
	return nil
}

// Grant records the subject's consent to purposes.
func (s *Service) Grant(ctx context.Context, caller audit.Principal, tenant string, in Input) (Event, error) {
	if in.All {
		return Event{}, validation.Field("all", "a grant names its purposes")
	}
	if in.PolicyVersion < 0 {
		return Event{}, validation.Field("policy_version", "must be 0 or a policy version")
	}
	if err := firstErr(checkSubject(in.Subject), checkSource(in.Source), in.Evidence.check()); err != nil {
		return Event{}, err
	}
	return s.append(ctx, caller, tenant, in.Subject, in.Evidence, func(known map[string]Purpose) (Event, error) {
		if err := checkPurposes(in.Purposes, known); err != nil {
			return Event{}, err
		}
		ev := Event{Kind: KindGrant, Purposes: slices.Clone(in.Purposes), Source: in.Source, PolicyVersions: map[string]int{}}
		for _, n := range in.Purposes {
			v := known[n].PolicyVersion
			if in.PolicyVersion != 0 && in.PolicyVersion != v {
				return Event{}, validation.Field("policy_version", "is not the current policy version of every purpose granted")
			}
			ev.PolicyVersions[n] = v
		}
		return ev, nil
	})
}

// Withdraw records the subject's withdrawal of (or objection to) purposes,
// or of all of them.
func (s *Service) Withdraw(ctx context.Context, caller audit.Principal, tenant string, in Input) (Event, error) {
	if in.All && len(in.Purposes) > 0 {
		return Event{}, validation.Field("purposes", "a withdrawal of all purposes names none")
	}
	if in.PolicyVersion != 0 {
		return Event{}, validation.Field("policy_version", "a withdrawal names no policy version")
	}
	if err := firstErr(checkSubject(in.Subject), checkSource(in.Source), in.Evidence.check()); err != nil {
		return Event{}, err
	}
	return s.append(ctx, caller, tenant, in.Subject, in.Evidence, func(known map[string]Purpose) (Event, error) {
		if in.All {
			return Event{Kind: KindWithdraw, All: true, Source: in.Source}, nil
		}
		if err := checkPurposes(in.Purposes, known); err != nil {
			return Event{}, err
		}
		return Event{Kind: KindWithdraw, Purposes: slices.Clone(in.Purposes), Source: in.Source}, nil
	})
}

// SetFlag sets or clears the subject's do-not-sell or
// restrict-processing flag.
func (s *Service) SetFlag(ctx context.Context, caller audit.Principal, tenant string, in FlagInput) (Event, error) {
	if in.Flag != FlagDoNotSell && in.Flag != FlagRestrictProcessing {
		return Event{}, validation.Field("flag", "must be do-not-sell or restrict-processing")
	}
	if err := firstErr(checkSubject(in.Subject), checkSource(in.Source), in.Evidence.check()); err != nil {
		return Event{}, err
	}
	return s.append(ctx, caller, tenant, in.Subject, in.Evidence, func(map[string]Purpose) (Event, error) {
		return Event{Kind: KindFlag, Flag: in.Flag, On: in.On, Source: in.Source}, nil
	})
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ledger is what an append or a state reads: the tenant's purposes and
// the subject's events.
type ledger struct {
	purposes []Purpose
	versions map[string]uint64
	events   []stored
	// history is every version of every purpose (read with history only).
	history []Purpose
}

// read reads the ledger of the subject whose blind index is tok, and with
// history every version of the tenant's purposes.
func (s *Service) read(ctx context.Context, tenant, tok string, history bool) (ledger, error) {
	var l ledger
	err := s.view(ctx, tenant, func(r tenancy.Read) error {
		var err error
		if l.purposes, l.versions, err = readPurposes(r); err != nil {
			return err
		}
		if history {
			if l.history, err = readVersions(r, ""); err != nil {
				return err
			}
		}
		r.Scan(ledgerPath(tok), nil, 0, func(k, v []byte, _ uint64) bool {
			var e stored
			if err = json.Unmarshal(v, &e); err != nil {
				err = fmt.Errorf("consent: ledger event %x: %w", k, err)
				return false
			}
			l.events = append(l.events, e)
			return true
		})
		return err
	})
	return l, err
}

// append appends the event build makes (from the tenant's purposes) to
// the subject's ledger, with its audit entry, retrying when a concurrent
// append took its sequence number.
func (s *Service) append(ctx context.Context, caller audit.Principal, tenant, subject string, evidence Evidence, build func(map[string]Purpose) (Event, error)) (Event, error) {
	if err := callerIn(caller, tenant); err != nil {
		return Event{}, err
	}
	ikey, err := s.keys.IndexKey(ctx, tenant)
	if err != nil {
		return Event{}, err
	}
	akey, err := s.keys.AuditKey(ctx, tenant)
	if err != nil {
		return Event{}, err
	}
	tok := token(ikey, subject)
	for range appendAttempts {
		l, err := s.read(ctx, tenant, tok, false)
		if err != nil {
			return Event{}, err
		}
		if err := s.known(ctx, caller, tenant, subject, len(l.events)); err != nil {
			return Event{}, err
		}
		if len(l.events) >= MaxEvents {
			return Event{}, fmt.Errorf("%w: events of one subject (at most %d)", ErrTooMany, MaxEvents)
		}
		known := make(map[string]Purpose, len(l.purposes))
		for _, p := range l.purposes {
			known[p.ID] = p
		}
		ev, err := build(known)
		if err != nil {
			return Event{}, err
		}
		ev.Seq, ev.At = 1, s.now().UTC()
		if n := len(l.events); n > 0 {
			last := l.events[n-1].Event
			ev.Seq = last.Seq + 1
			if ev.At.Before(last.At) {
				ev.At = last.At
			}
		}
		ev.Actor = caller.Actor()
		marks, err := s.marks(ctx, tenant, tok, subject, ev, known)
		if err != nil {
			return Event{}, err
		}
		sconds, sops, err := s.statWrites(ctx, tenant, tok, ev.At, statChanges(ev, l.events, known))
		if err != nil {
			return Event{}, err
		}
		rec, err := s.write(ctx, caller, tenant, tok, audit.Pseudonym(akey, "subject", subject), akey, ev, evidence, l.versions,
			append(marks, sops...), sconds)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return Event{}, err
		}
		out := rec.Event
		out.EvidenceText = evidence.Text
		return out, nil
	}
	return Event{}, fmt.Errorf("%w: the ledger of a subject of %s", ErrConflict, tenant)
}

// write stores ev at its sequence (absent until now), on the versions of
// the purposes it names, with its audit entry.
// ops (withdrawal marks, counters) and conds (the counters' versions) go
// into the same transaction.
func (s *Service) write(ctx context.Context, caller audit.Principal, tenant, tok, pseudonym string, akey []byte, ev Event, evidence Evidence, versions map[string]uint64, ops []raftstore.Op, extra []raftstore.Cond) (stored, error) {
	rec := stored{Event: ev}
	rec.EvidenceBlob = evidence.Blob
	if evidence.Text != "" {
		k, err := s.keys.DataKey(ctx, tenant, "")
		if err != nil {
			return stored{}, err
		}
		if rec.Sealed, err = keyring.Seal(k, evidencePlace(tenant, tok, ev.Seq), []byte(evidence.Text)); err != nil {
			return stored{}, err
		}
		sum := sha256.Sum256([]byte(evidence.Text))
		rec.EvidenceDigest = audit.Pseudonym(akey, "sha256", hex.EncodeToString(sum[:]))
	}
	details := map[string]string{"source": ev.Source, "seq": fmt.Sprint(ev.Seq)}
	action := "consent." + ev.Kind
	switch {
	case ev.Kind == KindFlag:
		details["flag"], details["on"] = ev.Flag, fmt.Sprint(ev.On)
	case ev.All:
		details["purposes"] = "*"
	default:
		details["purposes"] = strings.Join(ev.Purposes, ",")
	}
	if n := countMarks(ops); n > 0 {
		details["marks"] = fmt.Sprint(n)
	}
	if len(ev.PolicyVersions) > 0 {
		vs := make([]string, 0, len(ev.PolicyVersions))
		for _, p := range ev.Purposes {
			vs = append(vs, fmt.Sprintf("%s=%d", p, ev.PolicyVersions[p]))
		}
		details["policy_versions"] = strings.Join(vs, ",")
	}
	switch {
	case rec.EvidenceDigest != "":
		details["evidence"] = "text:" + rec.EvidenceDigest
	case rec.EvidenceBlob != "":
		details["evidence"] = "blob:" + rec.EvidenceBlob
	}
	entry, err := caller.Entry(ev.At, action, pseudonym, audit.OutcomeSuccess, details).Encode()
	if err != nil {
		return stored{}, err
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return stored{}, err
	}
	conds := []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: ledgerPath(tok), Key: seqKey(ev.Seq)}}
	names := slices.Clone(ev.Purposes)
	sort.Strings(names)
	for _, n := range names {
		conds = append(conds, raftstore.Cond{Kind: raftstore.CondVersion, Bucket: purposesPath, Key: []byte(n), Version: versions[n]})
	}
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: append(conds, extra...),
		Ops:   append([]raftstore.Op{{Kind: raftstore.OpPut, Bucket: ledgerPath(tok), Key: seqKey(ev.Seq), Value: val}}, ops...),
		Audit: [][]byte{entry},
	})
	if err := applied(res, err); err != nil {
		return stored{}, fmt.Errorf("consent: %s in %s: %w", action, tenant, err)
	}
	return rec, nil
}

// FlagForRequest sets the subject's flag on because a data-subject request
// asked for it (a restriction: restrict-processing; an opt-out:
// do-not-sell), with the request's id as the evidence, from source "api".
// A subject the tenant holds nothing about has nothing to flag: that is
// not an error, so the request can still be completed. Its signature is
// the requests service's Flagger.
func (s *Service) FlagForRequest(ctx context.Context, caller audit.Principal, tenant, subject, flag, requestID string) error {
	_, err := s.SetFlag(ctx, caller, tenant, FlagInput{Subject: subject, Flag: flag, On: true, Source: "api",
		Evidence: Evidence{Text: "data-subject request " + requestID}})
	if errors.Is(err, ErrNoSubject) {
		return nil
	}
	return err
}
