package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/deadline"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// steps is the state machine: the statuses each open status may move to.
// Completed and rejected are final.
var steps = map[Status][]Status{
	Received:   {Verified, Rejected, Extended},
	Verified:   {InProgress, Rejected, Extended},
	InProgress: {Completed, Rejected, Extended},
	Extended:   {Verified, InProgress, Completed, Rejected},
}

// ownRoute are the kinds whose completion is the work of another
// operation — the export, the erasure, the rectify route — so a manual
// transition to completed cannot claim it.
var ownRoute = []Kind{Export, Portability, Erasure, Rectification}

// Verification methods.
var methods = []string{"account", "email", "phone", "document", "in-person", "knowledge", "other"}

// refusal says why r cannot move to to ("" when it can). manual: asked
// through Transition rather than by the operation that does the work.
func refusal(r Request, to Status, manual bool) string {
	switch {
	case !slices.Contains(steps[r.Status], to):
		return WhyNotAllowed
	case to == Verified && r.Verification != nil:
		return WhyNotAllowed // verified once already (and extended since)
	case (to == InProgress || to == Completed) && r.Verification == nil:
		return WhyNotVerified
	case to == Extended && r.Extension != nil:
		return WhyAlreadyExtended
	case manual && to == Completed && slices.Contains(ownRoute, r.Kind):
		return WhyOwnRoute
	}
	return ""
}

// Evidence is how the subject's identity was verified.
type Evidence struct {
	Method string
	Text   string
}

// TransitionInput moves a request: To, and what that step needs — the
// evidence of a verification, the reason of a rejection or an extension
// (and optionally its length: empty is the most the law allows), the note
// of a completion.
type TransitionInput struct {
	To        Status
	Reason    string
	Extension string
	Evidence  *Evidence
	Note      string
}

func checkText(field, s string, required bool) error {
	if (required && strings.TrimSpace(s) == "") || len(s) > MaxText || !utf8.ValidString(s) {
		return validation.Field(field, fmt.Sprintf("must be 1 to %d bytes of text", MaxText))
	}
	return nil
}

func (in TransitionInput) check() error {
	if _, err := ParseStatus("to", string(in.To)); err != nil {
		return err
	}
	if in.To == Received {
		return validation.Field("to", "a request is received only once, when created")
	}
	needsReason := in.To == Rejected || in.To == Extended
	switch {
	case needsReason:
		if err := checkText("reason", in.Reason, true); err != nil {
			return err
		}
	case in.Reason != "":
		return validation.Field("reason", "is only for to=rejected or to=extended")
	}
	if in.Extension != "" {
		if in.To != Extended {
			return validation.Field("extension", "is only for to=extended")
		}
		if _, err := deadline.ParsePeriod("extension", in.Extension); err != nil {
			return err
		}
	}
	switch {
	case in.To == Verified && in.Evidence == nil:
		return validation.Field("evidence", "is required to verify a request")
	case in.To != Verified && in.Evidence != nil:
		return validation.Field("evidence", "is only for to=verified")
	case in.Evidence != nil:
		if !slices.Contains(methods, in.Evidence.Method) {
			return validation.Field("evidence.method", "must be one of "+strings.Join(methods, ", "))
		}
		if err := checkText("evidence.text", in.Evidence.Text, true); err != nil {
			return err
		}
	}
	if in.Note != "" {
		if in.To != Completed {
			return validation.Field("note", "is only for to=completed")
		}
		if err := checkText("note", in.Note, false); err != nil {
			return err
		}
	}
	return nil
}

// actions name each step's audit entry.
var actions = map[Status]string{
	Verified:   "request.verify",
	InProgress: "request.start",
	Extended:   "request.extend",
	Completed:  "request.complete",
	Rejected:   "request.reject",
}

// Transition moves the request id as in says, with its audit entry, in
// one transaction. A step the state machine does not allow is a
// *TransitionError and changes nothing.
func (s *Service) Transition(ctx context.Context, caller audit.Principal, tenant, id string, in TransitionInput) (Request, error) {
	if err := in.check(); err != nil {
		return Request{}, err
	}
	if err := s.setFlag(ctx, caller, tenant, id, in.To); err != nil {
		return Request{}, err
	}
	return s.change(ctx, caller, tenant, id, in.To, func(r Request, now time.Time, akey []byte) (Request, map[string]string, error) {
		if why := refusal(r, in.To, true); why != "" {
			return Request{}, nil, &TransitionError{ID: id, From: r.Status, To: in.To, Why: why}
		}
		details := map[string]string{}
		switch in.To {
		case Verified:
			r.Verification = &Verification{Method: in.Evidence.Method, Evidence: in.Evidence.Text, Digest: digest(akey, in.Evidence.Text), At: now, Actor: caller.Actor()}
			details["method"], details["evidence"] = in.Evidence.Method, r.Verification.Digest
		case Extended:
			var err error
			if r, err = extend(r, in, now); err != nil {
				return Request{}, nil, err
			}
			details["by"], details["due"], details["reason"] = r.Extension.By, r.Due.Format(time.RFC3339Nano), digest(akey, in.Reason)
		case Rejected:
			r.Rejection = in.Reason
			details["reason"] = digest(akey, in.Reason)
		case Completed:
			if in.Note != "" {
				r.Result = &Result{Note: in.Note}
				details["note"] = digest(akey, in.Note)
			}
		}
		return r, details, nil
	})
}

// flags are the consent flags that completing a request of a kind sets.
var flags = map[Kind]string{Restriction: "restrict-processing", OptOut: "do-not-sell"}

// setFlag sets, before a restriction or opt-out request is completed, the
// subject's flag through the Flagger (its own transaction, with its own
// audit entry). Setting it is idempotent, so a completion that fails
// afterwards (a race, a lost leader) is simply retried; a step the
// request may not take sets nothing.
func (s *Service) setFlag(ctx context.Context, caller audit.Principal, tenant, id string, to Status) error {
	if to != Completed || s.flagger == nil {
		return nil
	}
	r, err := s.Get(ctx, caller, tenant, id)
	if err != nil {
		return err
	}
	flag, ok := flags[r.Kind]
	if !ok {
		return nil
	}
	if why := refusal(r, to, true); why != "" {
		return &TransitionError{ID: id, From: r.Status, To: to, Why: why}
	}
	if err := s.flagger(ctx, caller, tenant, r.Subject, flag, id); err != nil {
		return fmt.Errorf("requests: %s of %s: set %s: %w", r.Kind, id, flag, err)
	}
	return nil
}

// extend gives r its one extension, as in asks (the law's most when in
// names no length), decided at now.
func extend(r Request, in TransitionInput, now time.Time) (Request, error) {
	d, err := deadlineOf(r)
	if err != nil {
		return Request{}, err
	}
	by := d.Rule().MaxExtension()
	if in.Extension != "" {
		if by, err = deadline.ParsePeriod("extension", in.Extension); err != nil {
			return Request{}, err
		}
	}
	// GDPR Art. 12(3) two further months, CCPA §1798.130(a)(2) 45 more
	// days, PIPEDA s. 8(4) 30 more days, DPDP none: Extend refuses more
	// than the law's, a second one, and one decided after the first period.
	ext, err := d.Extend(by, in.Reason, now)
	switch {
	case errors.Is(err, deadline.ErrAlreadyExtended):
		return Request{}, &TransitionError{ID: r.ID, From: r.Status, To: Extended, Why: WhyAlreadyExtended}
	case errors.Is(err, deadline.ErrExtensionTooLate):
		return Request{}, &TransitionError{ID: r.ID, From: r.Status, To: Extended, Why: WhyTooLate}
	case err != nil:
		return Request{}, err
	}
	r.Extension = &Extension{By: by.String(), Reason: in.Reason, At: now, OriginalDue: d.OriginalDue().UTC()}
	r.Due = ext.Due().UTC()
	return r, nil
}

// Begin checks that the request id is of one of kinds (any, when none is
// named) and verified, in progress or extended (its subject verified), moves
// a verified one to in progress (audited) and returns it, its subject in
// the clear: how the export and erasure services take up a request.
func (s *Service) Begin(ctx context.Context, caller audit.Principal, tenant, id string, kinds ...Kind) (Request, error) {
	return s.change(ctx, caller, tenant, id, InProgress, func(r Request, _ time.Time, _ []byte) (Request, map[string]string, error) {
		if len(kinds) > 0 && !slices.Contains(kinds, r.Kind) {
			return Request{}, nil, &TransitionError{ID: id, From: r.Status, To: InProgress, Why: WhyKind}
		}
		switch {
		case r.Verification == nil || !slices.Contains([]Status{Verified, InProgress, Extended}, r.Status):
			why := WhyNotVerified
			if !r.Status.Open() {
				why = WhyNotAllowed
			}
			return Request{}, nil, &TransitionError{ID: id, From: r.Status, To: InProgress, Why: why}
		case r.Status != Verified:
			return r, nil, nil // under way already: nothing to write
		}
		return r, map[string]string{}, nil
	})
}

// Finish moves an in-progress or extended request to completed with res,
// audited: how the export and erasure services close the request they
// took up. A completed erasure request keeps its subject only as a
// pseudonym (see the package doc).
func (s *Service) Finish(ctx context.Context, caller audit.Principal, tenant, id string, res Result) (Request, error) {
	if err := res.check(); err != nil {
		return Request{}, err
	}
	return s.change(ctx, caller, tenant, id, Completed, func(r Request, _ time.Time, akey []byte) (Request, map[string]string, error) {
		if r.Status != InProgress && r.Status != Extended {
			return Request{}, nil, &TransitionError{ID: id, From: r.Status, To: Completed, Why: WhyNotAllowed}
		}
		if why := refusal(r, Completed, false); why != "" {
			return Request{}, nil, &TransitionError{ID: id, From: r.Status, To: Completed, Why: why}
		}
		r.Result = &res
		details := map[string]string{}
		if res.Export != "" {
			details["export"] = res.Export
		}
		if res.Receipt != "" {
			details["receipt"] = digest(akey, res.Receipt)
		}
		if res.Note != "" {
			details["note"] = digest(akey, res.Note)
		}
		if len(res.Counts) > 0 {
			names := make([]string, 0, len(res.Counts))
			for k, v := range res.Counts {
				names = append(names, fmt.Sprintf("%s=%d", k, v))
			}
			sort.Strings(names)
			details["counts"] = strings.Join(names, ",")
		}
		return r, details, nil
	})
}

// MaxReceipt bounds a result's receipt text, in bytes.
const MaxReceipt = 64 << 10

func (res Result) check() error {
	if res.Export != "" && !validation.ID(res.Export) {
		return validation.Field("result.export", "must be an export id")
	}
	if len(res.Receipt) > MaxReceipt || !utf8.ValidString(res.Receipt) {
		return validation.Field("result.receipt", fmt.Sprintf("must be at most %d bytes of text", MaxReceipt))
	}
	if len(res.Counts) > MaxPatchFields {
		return validation.Field("result.counts", fmt.Sprintf("must hold at most %d counts", MaxPatchFields))
	}
	for k := range res.Counts {
		if !validation.ID(k) {
			return validation.Field("result.counts", "names must be 1 to 64 of a-z A-Z 0-9 . _ - :")
		}
	}
	return checkText("result.note", res.Note, false)
}

// decision is what a step makes of the request (opened) at now: the
// request after it and its audit details, or nil details for no change.
type decision func(r Request, now time.Time, akey []byte) (Request, map[string]string, error)

// change reads the request, lets decide make the step to status to and
// writes it, conditioned on the version read, with its audit entry; a
// concurrent change is read again and decided anew. decide returns nil
// details for no change.
func (s *Service) change(ctx context.Context, caller audit.Principal, tenant, id string, to Status, decide decision) (Request, error) {
	if err := callerIn(caller, tenant); err != nil {
		return Request{}, err
	}
	if !validation.ID(id) {
		return Request{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	dkey, _, akey, err := s.keysOf(ctx, tenant)
	if err != nil {
		return Request{}, err
	}
	sc := s.scope(caller, tenant)
	for range writeAttempts {
		st, version, err := readOne(ctx, sc, id)
		if err != nil {
			return Request{}, err
		}
		cur, err := open(dkey, st)
		if err != nil {
			return Request{}, err
		}
		now := s.clock()
		if now.Before(cur.Updated) {
			now = cur.Updated // a request's steps are in time order
		}
		next, details, err := decide(cur, now, akey)
		if err != nil {
			return Request{}, err
		}
		if details == nil {
			return cur, nil
		}
		next.Status, next.Updated = to, now
		next.History = append(slices.Clip(cur.History), Step{From: cur.Status, To: to, At: now, Actor: caller.Actor()})
		keep := next
		if to == Completed && next.Kind == Erasure {
			// The subject is erased: the request keeps its pseudonym and
			// blind index, not its id or the evidence that named them.
			keep.Subject = ""
			if v := keep.Verification; v != nil {
				w := *v
				w.Evidence = ""
				keep.Verification = &w
			}
		}
		out, err := seal(dkey, st.Token, st.Rev+1, keep)
		if err != nil {
			return Request{}, err
		}
		val, err := json.Marshal(out)
		if err != nil {
			return Request{}, fmt.Errorf("requests: encode %s: %w", id, err)
		}
		details["request"], details["kind"], details["from"], details["to"] = id, string(cur.Kind), string(cur.Status), string(to)
		entry, err := caller.Entry(now, actions[to], cur.SubjectPseudonym, audit.OutcomeSuccess, details).Encode()
		if err != nil {
			return Request{}, err
		}
		txn := &tenancy.Txn{
			Conds: []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: requestsPath, Key: []byte(id), Version: version}},
			Ops:   []raftstore.Op{{Kind: raftstore.OpPut, Bucket: requestsPath, Key: []byte(id), Value: val}},
			Audit: [][]byte{entry},
		}
		if !to.Open() {
			// The subject may ask again: the open marker goes.
			txn.Ops = append(txn.Ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: openPath(st.Token), Key: []byte(cur.Kind)})
		}
		switch err := applied(sc.Apply(ctx, txn)); {
		case errors.Is(err, ErrConflict):
			continue
		case err != nil:
			return Request{}, fmt.Errorf("requests: %s %s: %w", actions[to], id, err)
		}
		return next, nil
	}
	return Request{}, fmt.Errorf("%w: %s", ErrConflict, id)
}

// readOne reads the stored request id through sc with its version.
func readOne(ctx context.Context, sc tenancy.Scope, id string) (stored, uint64, error) {
	var (
		st      stored
		version uint64
		found   bool
	)
	err := view(ctx, sc, func(r tenancy.Read) error {
		var v []byte
		if v, version, found = r.Get(requestsPath, []byte(id)); !found {
			return nil
		}
		var err error
		st, err = decode(id, v)
		return err
	})
	if err != nil {
		return stored{}, 0, err
	}
	if !found {
		return stored{}, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return st, version, nil
}
