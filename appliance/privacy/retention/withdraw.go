package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// maxMarks bounds the withdrawal marks one sweep of a tenant carries
// out; the rest wait for the next sweep.
const maxMarks = 100

// Withdrawals is what the sweeper needs of the consent service to carry
// out withdrawals; *consent.Service implements it.
type Withdrawals interface {
	WithdrawalMarks(ctx context.Context, tenant string, limit int) ([]consent.Mark, error)
	MarkDoneOps(marks ...consent.Mark) []raftstore.Op
}

// Subjects is what carrying out a withdrawal needs of records beyond
// Records; *records.Service implements it.
type Subjects interface {
	Holdings(ctx context.Context, tenant, subject string) ([]records.Held, error)
	AnonymiseOps(ctx context.Context, tenant string, items []records.Held) (ops []raftstore.Op, conds []raftstore.Cond, n int, unable []records.Held, err error)
}

// AuditKeys gives a tenant's audit key, which names subjects in entries
// by pseudonym; *keyring.Hierarchy implements it.
type AuditKeys interface {
	AuditKey(ctx context.Context, tenant string) ([]byte, error)
}

// WithdrawalConfig has the sweeper carry out withdrawals (see the
// package doc); without it (nil Marks) it only enforces periods.
type WithdrawalConfig struct {
	Marks    Withdrawals
	Subjects Subjects
	Keys     AuditKeys
}

// covered are the collections of schemas that require purpose.
func covered(schemas []collections.Schema, purpose string) map[string]bool {
	out := map[string]bool{}
	for _, sc := range schemas {
		if slices.Contains(sc.Purposes, purpose) {
			out[sc.Name] = true
		}
	}
	return out
}

// withdrawals carries out the tenant's withdrawal marks, oldest first. A
// mark whose records changed during its transaction stays for the next
// sweep.
func (s *Sweeper) withdrawals(ctx context.Context, tenant string, schemas []collections.Schema, rep *Report) error {
	w := s.cfg.Withdrawals
	if w.Marks == nil {
		return nil
	}
	marks, err := w.Marks.WithdrawalMarks(ctx, tenant, maxMarks)
	if err != nil {
		return fmt.Errorf("retention: withdrawals of %s: %w", tenant, err)
	}
	for _, m := range marks {
		if !s.cfg.IsLeader() {
			return ErrNotLeader
		}
		err := s.carryOut(ctx, tenant, m, covered(schemas, m.Purpose), rep)
		switch {
		case errors.Is(err, errChanged):
			s.log.Info("retention: records changed while a withdrawal was carried out; left for the next sweep", "purpose", m.Purpose)
		case err != nil:
			return err
		default:
			rep.Withdrawals++
		}
	}
	return nil
}

// carryOut applies m's rule to the subject's records in the collections
// cols: in transactions of at most Batch records, each with one
// retention.withdrawal entry (the subject's pseudonym, the purpose, the
// rule, how many records were erased and anonymised); the last also
// deletes the mark, so a mark is gone exactly when its rule is carried
// out. A subject with nothing covered left still gets its entry.
func (s *Sweeper) carryOut(ctx context.Context, tenant string, m consent.Mark, cols map[string]bool, rep *Report) error {
	w := s.cfg.Withdrawals
	held, err := w.Subjects.Holdings(ctx, tenant, m.Subject)
	if err != nil {
		return fmt.Errorf("retention: withdrawal in %s: %w", tenant, err)
	}
	var items []records.Held
	for _, h := range held {
		if cols[h.Collection] {
			items = append(items, h)
		}
	}
	akey, err := w.Keys.AuditKey(ctx, tenant)
	if err != nil {
		return err
	}
	target := audit.Pseudonym(akey, "subject", m.Subject)
	for first := true; first || len(items) > 0; first = false {
		chunk := items[:min(len(items), s.cfg.Batch)]
		for {
			t, err := s.withdrawalTxn(ctx, tenant, m, chunk, len(chunk) == len(items))
			if errors.Is(err, errTooLarge) && len(chunk) > 1 {
				chunk = chunk[:len(chunk)/2]
				continue
			}
			if err != nil {
				return err
			}
			if err := s.applyWithdrawal(ctx, tenant, m, target, t, rep); err != nil {
				return err
			}
			break
		}
		items = items[len(chunk):]
	}
	return nil
}

// errTooLarge: a chunk's writes do not fit one transaction.
var errTooLarge = errors.New("retention: too many writes for one transaction")

// withdrawal is one transaction of a withdrawal: its writes and
// conditions, and what it counts.
type withdrawal struct {
	ops               []raftstore.Op
	conds             []raftstore.Cond
	erased, anonymous int
}

// withdrawalTxn builds the transaction applying m's rule to chunk (with
// the mark's deletion when last).
func (s *Sweeper) withdrawalTxn(ctx context.Context, tenant string, m consent.Mark, chunk []records.Held, last bool) (withdrawal, error) {
	w := s.cfg.Withdrawals
	var t withdrawal
	erase := chunk
	if m.Rule == consent.OnWithdrawAnonymise && len(chunk) > 0 {
		ops, conds, n, unable, err := w.Subjects.AnonymiseOps(ctx, tenant, chunk)
		if err != nil {
			return t, fmt.Errorf("retention: withdrawal in %s: %w", tenant, err)
		}
		t.ops, t.conds, t.anonymous, erase = ops, conds, n, unable
	}
	if len(erase) > 0 {
		ops, conds, n, err := s.recs.RemoveOps(ctx, tenant, erase)
		if err != nil {
			return t, fmt.Errorf("retention: withdrawal in %s: %w", tenant, err)
		}
		t.ops, t.conds, t.erased = append(t.ops, ops...), append(t.conds, conds...), n
	}
	if last {
		t.ops = append(t.ops, w.Marks.MarkDoneOps(m)...)
	}
	if len(t.ops)+len(t.conds)+txnSlack > raftstore.MaxTxnItems {
		return t, errTooLarge
	}
	return t, nil
}

// applyWithdrawal applies t with its audit entry, then pauses as a sweep
// does.
func (s *Sweeper) applyWithdrawal(ctx context.Context, tenant string, m consent.Mark, target string, t withdrawal, rep *Report) error {
	entry, err := audit.System().Entry(s.cfg.Now().UTC(), "retention.withdrawal", target, audit.OutcomeSuccess, map[string]string{
		"purpose":    m.Purpose,
		"rule":       m.Rule,
		"erased":     strconv.Itoa(t.erased),
		"anonymised": strconv.Itoa(t.anonymous),
		"seq":        strconv.FormatUint(m.Seq, 10),
	}).Encode()
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := s.b.Scope(tenant).Apply(ctx, &tenancy.Txn{Conds: t.conds, Ops: t.ops, Audit: [][]byte{entry}})
	switch {
	case err != nil:
		return fmt.Errorf("retention: withdrawal in %s: %w", tenant, err)
	case res.Err != nil:
		return fmt.Errorf("retention: withdrawal in %s: %w", tenant, res.Err)
	case !res.Applied:
		return errChanged
	}
	rep.Erased += t.erased
	rep.Anonymised += t.anonymous
	rep.Transactions++
	return s.pause(ctx, time.Since(start))
}
