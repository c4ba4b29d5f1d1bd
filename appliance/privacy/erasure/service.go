package erasure

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Records is what the erasure needs of the records service;
// *records.Service implements it.
type Records interface {
	Holdings(ctx context.Context, tenant, subject string) ([]records.Held, error)
	Referrers(ctx context.Context, tenant string, targets []records.Held) ([]records.Referrer, error)
	RemovePieces(ctx context.Context, tenant string, items []records.Held, room int) ([]records.Piece, error)
	DetachPieces(ctx context.Context, tenant string, refs []records.Referrer, room int) ([]records.Piece, error)
}

// Blobs is what it needs of the blobs service; *blobs.Service implements
// it.
type Blobs interface {
	SubjectBlobs(ctx context.Context, tenant, subject string) ([]string, error)
	RemoveOps(ctx context.Context, tenant string, ids []string) ([]raftstore.Op, []raftstore.Cond, int, error)
	SubjectBucketOp(subject string) raftstore.Op
}

// Consent reduces a subject's consent ledger to its minimal proof;
// *consent.Service implements it.
type Consent interface {
	EraseOps(ctx context.Context, tenant, subject string) ([]raftstore.Op, int, error)
}

// Keys is the part of the keyring it uses; *keyring.Hierarchy implements
// it.
type Keys interface {
	ShredOps(ctx context.Context, caller keyring.Auditor, tenant, subject string) (*tenancy.Txn, error)
	Forget(tenant, subject string)
	IndexKey(ctx context.Context, tenant string) ([]byte, error)
	AuditKey(ctx context.Context, tenant string) ([]byte, error)
}

// Audit signs: the receipt with the cluster's audit key, a checkpoint of
// the tenant's chain covering the erasure's entry; *audit.Service
// implements it.
type Audit interface {
	Signer(ctx context.Context) (note.Signer, error)
	SignNow(ctx context.Context, chain string) ([]byte, error)
}

// Requests is the erasure's view of data-subject requests;
// *requests.Service implements it. Begin checks that the request is an
// erasure that may proceed (verified, or in progress or extended: a
// retry), moves it to in progress and names its subject; Finish completes
// it with the receipt and the counts.
type Requests interface {
	Get(ctx context.Context, caller audit.Principal, tenant, id string) (requests.Request, error)
	Begin(ctx context.Context, caller audit.Principal, tenant, id string, kinds ...requests.Kind) (requests.Request, error)
	Finish(ctx context.Context, caller audit.Principal, tenant, id string, res requests.Result) (requests.Request, error)
}

// Service erases subjects. It is safe for concurrent use.
type Service struct {
	tenancy  *tenancy.Boundary
	records  Records
	blobs    Blobs
	consent  Consent
	keys     Keys
	audit    Audit
	requests Requests
	now      func() time.Time
}

// Deps are the service's dependencies.
type Deps struct {
	Records  Records
	Blobs    Blobs
	Consent  Consent
	Keys     Keys
	Audit    Audit
	Requests Requests
	Now      func() time.Time // nil: time.Now
}

// New makes the service.
func New(b *tenancy.Boundary, d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{tenancy: b, records: d.Records, blobs: d.Blobs, consent: d.Consent, keys: d.Keys, audit: d.Audit, requests: d.Requests, now: d.Now}
}

// attempts bounds the plans of one erasure whose pieces lose races with
// concurrent writes.
const attempts = 4

// Erase carries out erasure request id of tenant: it erases the
// request's subject (see the package doc), signs the receipt, completes
// the request with it and returns the ledger's entry with the signed
// receipt. Run again after a failure, it finishes what is left; once the
// request is completed, Begin refuses it (the receipt is read with
// Receipt).
func (s *Service) Erase(ctx context.Context, caller audit.Principal, tenant, id string) (Entry, error) {
	if !validRequestID(id) {
		return Entry{}, ErrNotFound
	}
	if caller.Restriction().Restricted() {
		// An erasure acts on everything the tenant holds about the
		// subject, inside any attribute scope or not: a scoped principal
		// learns whether the request exists (as it may read it), no more.
		if _, err := s.requests.Get(ctx, caller, tenant, id); err != nil {
			return Entry{}, err
		}
		return Entry{}, ErrScoped
	}
	req, err := s.requests.Begin(ctx, caller, tenant, id, requests.Erasure)
	if err != nil {
		return Entry{}, err
	}
	e, found, err := s.Get(ctx, tenant, id)
	if err != nil {
		return Entry{}, err
	}
	if !found || e.Phase != PhaseCompleted {
		if e, err = s.erase(ctx, caller, tenant, req.Subject, id, e, false); err != nil {
			return Entry{}, err
		}
	}
	if e.Receipt == "" {
		if e, err = s.sign(ctx, tenant, e); err != nil {
			return Entry{}, err
		}
	}
	if _, err := s.requests.Finish(ctx, caller, tenant, id, requests.Result{Receipt: e.Receipt, Counts: maps.Clone(e.Counts)}); err != nil {
		return e, fmt.Errorf("erasure: complete the request: %w", err)
	}
	return e, nil
}

// erase removes everything of subject for request id: prev is the
// ledger's entry of an erasure begun before (Phase shredded) or zero.
// With reapply (Reapply) it writes no ledger entry.
func (s *Service) erase(ctx context.Context, caller audit.Principal, tenant, subject, id string, prev Entry, reapply bool) (Entry, error) {
	e := prev
	if e.Phase == "" {
		var err error
		if e, err = s.shred(ctx, caller, tenant, subject, id, reapply); err != nil {
			return Entry{}, err
		}
	}
	counts := map[string]uint64{}
	for i := 0; ; i++ {
		p, err := s.plan(ctx, tenant, subject)
		if err != nil {
			return Entry{}, err
		}
		lost, err := s.applySteps(ctx, caller, tenant, id, p.steps, counts)
		if err != nil {
			return Entry{}, err
		}
		if !lost {
			break
		}
		if i == attempts {
			return Entry{}, fmt.Errorf("%w: %d attempts lost to concurrent writes", ErrConflict, attempts)
		}
	}
	e.Counts = counts
	return s.finish(ctx, caller, tenant, subject, e, reapply)
}

// shred applies the first transaction: the subject's data key shredded
// (keyring.ShredOps, with its key.shred entry) and the ledger's entry
// begun (Phase shredded). From it on, every value sealed under the key is
// unreadable on every node that applied it.
func (s *Service) shred(ctx context.Context, caller audit.Principal, tenant, subject, id string, reapply bool) (Entry, error) {
	txn, err := s.keys.ShredOps(ctx, caller, tenant, subject)
	if err != nil {
		return Entry{}, err
	}
	hadKey, err := s.present(ctx, tenant, txn.Ops)
	if err != nil {
		return Entry{}, err
	}
	akey, err := s.keys.AuditKey(ctx, tenant)
	if err != nil {
		return Entry{}, err
	}
	ikey, err := s.keys.IndexKey(ctx, tenant)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Request: id, Subject: audit.Pseudonym(akey, "subject", subject), Token: subjectToken(ikey, subject),
		KeyShredded: hadKey, Counts: map[string]uint64{}, Phase: PhaseShredded}
	if !reapply {
		put, err := ledgerPut(e)
		if err != nil {
			return Entry{}, err
		}
		txn.Ops = append(txn.Ops, put)
	}
	if err := s.apply(ctx, tenant, "shred", txn); err != nil {
		return Entry{}, err
	}
	s.keys.Forget(tenant, subject)
	return e, nil
}

// applySteps applies the steps in order, each with its own audit entry
// (subject.erase_step: the request, the kind, the count), adding what
// they removed to counts; lost reports a step whose conditions no longer
// held (a concurrent write): the caller plans again.
func (s *Service) applySteps(ctx context.Context, caller audit.Principal, tenant, id string, steps []step, counts map[string]uint64) (lost bool, err error) {
	for _, st := range steps {
		entry, err := caller.Entry(s.now().UTC(), "subject.erase_step", "request:"+id, audit.OutcomeSuccess,
			map[string]string{"kind": st.kind, "count": strconv.Itoa(st.n)}).Encode()
		if err != nil {
			return false, err
		}
		err = s.apply(ctx, tenant, st.kind, &tenancy.Txn{Conds: st.conds, Ops: st.ops, Audit: [][]byte{entry}})
		if errors.Is(err, ErrConflict) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if st.kind != kindBuckets {
			counts[st.kind] += uint64(st.n)
		}
	}
	return false, nil
}

// apply applies txn to tenant: ErrConflict when a condition failed.
func (s *Service) apply(ctx context.Context, tenant, what string, txn *tenancy.Txn) error {
	res, err := s.tenancy.Scope(tenant).Apply(ctx, txn)
	switch {
	case errors.Is(err, tenancy.ErrNoTenant):
		return ErrNoTenant
	case err != nil:
		return fmt.Errorf("erasure: %s: %w", what, err)
	case res.Err != nil:
		return fmt.Errorf("erasure: %s: %w", what, res.Err)
	case !res.Applied:
		return fmt.Errorf("%w: %s", ErrConflict, what)
	}
	return nil
}

// finish applies the last transaction: the deletes of the buckets named
// by the subject's id, the ledger's entry completed and the subject.erase
// audit entry with the counts — and, should the subject have a data key
// again (a write raced the erasure), its shred once more.
func (s *Service) finish(ctx context.Context, caller audit.Principal, tenant, subject string, e Entry, reapply bool) (Entry, error) {
	txn := &tenancy.Txn{}
	again, err := s.keys.ShredOps(ctx, caller, tenant, subject)
	if err != nil {
		return Entry{}, err
	}
	if back, err := s.present(ctx, tenant, again.Ops); err != nil {
		return Entry{}, err
	} else if back {
		txn = again
	}
	now := s.now().UTC()
	e.Erased, e.Phase = now, PhaseCompleted
	details := map[string]string{"request": e.Request, "key_shredded": strconv.FormatBool(e.KeyShredded)}
	if reapply {
		details["reapply"] = "true"
	}
	for k, n := range e.Counts {
		details[k] = strconv.FormatUint(n, 10)
	}
	raw, err := caller.Entry(now, "subject.erase", e.Subject, audit.OutcomeSuccess, details).Encode()
	if err != nil {
		return Entry{}, err
	}
	txn.Ops = append(txn.Ops, records.SubjectBucketOp(subject), s.blobs.SubjectBucketOp(subject))
	txn.Audit = append(txn.Audit, raw)
	if !reapply {
		// The entry's audit position is known only once applied: put
		// below, as the receipt is once signed.
		put, err := ledgerPut(e)
		if err != nil {
			return Entry{}, err
		}
		txn.Ops = append(txn.Ops, put)
	}
	res, err := s.tenancy.Scope(tenant).Apply(ctx, txn)
	s.keys.Forget(tenant, subject)
	switch {
	case errors.Is(err, tenancy.ErrNoTenant):
		return Entry{}, ErrNoTenant
	case err != nil:
		return Entry{}, fmt.Errorf("erasure: complete: %w", err)
	case res.Err != nil:
		return Entry{}, fmt.Errorf("erasure: complete: %w", res.Err)
	case !res.Applied || len(res.Chains) == 0:
		return Entry{}, fmt.Errorf("%w: the last transaction did not apply", ErrConflict)
	}
	e.AuditSeq = res.Chains[len(res.Chains)-1].Seq
	e.AuditHash = leafHash(raw)
	if !reapply {
		if err := s.put(ctx, tenant, e); err != nil {
			return Entry{}, err
		}
	}
	return e, nil
}

// present reports whether the keys the shred deletes exist (whether
// there is a key to shred).
func (s *Service) present(ctx context.Context, tenant string, ops []raftstore.Op) (bool, error) {
	found := false
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		for _, o := range ops {
			if o.Kind == raftstore.OpDelete {
				if _, _, ok := r.Get(o.Bucket, o.Key); ok {
					found = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("erasure: read the key: %w", err)
	}
	return found, nil
}
