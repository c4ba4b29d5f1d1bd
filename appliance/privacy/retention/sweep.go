package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// Defaults and limits of Config.
const (
	DefaultInterval = time.Hour
	DefaultBatch    = 256
	MaxBatch        = 256
	DefaultPause    = 20 * time.Millisecond
	DefaultShare    = 0.5
	// scanPage bounds the keys one scan of a collection reads in one read
	// transaction.
	scanPage = 4096
	// txnSlack is what a transaction holds besides the removal: the
	// audit entry and the scope's condition that the tenant exists.
	txnSlack = 8
	// attempts bounds the tries of one batch whose records changed under
	// it; what is left is the next sweep's.
	attempts = 3
)

// Records is what the sweeper needs of the records service;
// *records.Service implements it.
type Records interface {
	Expired(ctx context.Context, tenant string, q records.ExpiredQuery) ([]records.Expiring, string, error)
	RemoveOps(ctx context.Context, tenant string, items []records.Held) (ops []raftstore.Op, conds []raftstore.Cond, n int, err error)
}

// Schemas lists a tenant's collections; *collections.Service implements
// it.
type Schemas interface {
	List(ctx context.Context, c raftstore.Consistency, tenant string) ([]collections.Schema, error)
}

// Config drives a Sweeper.
type Config struct {
	// Interval is the time between sweeps (0: DefaultInterval).
	Interval time.Duration
	// Batch is the most records one transaction erases (0: DefaultBatch;
	// at most MaxBatch).
	Batch int
	// Pause is the least time between two transactions of a sweep (0:
	// DefaultPause; negative: no fixed pause).
	Pause time.Duration
	// Share is the largest share of the time a sweep spends building
	// and applying its transactions (0: DefaultShare; at most 1): after
	// a transaction that took d it waits d×(1−Share)/Share if that is
	// longer than Pause, so writers always get the rest.
	Share float64
	// Now is the clock (nil: time.Now); the tests shorten time with it.
	Now func() time.Time
	// IsLeader says whether this node leads: only the leader sweeps, and
	// a sweep stops when the node loses the lead.
	IsLeader func() bool
	// Tenants lists the ids of the tenants to sweep.
	Tenants func(ctx context.Context) ([]string, error)
	// TenantDays is a tenant's default retention in days (nil, or 0:
	// DefaultTenantDays). It may read the local state (the sweeper calls
	// it after a linearizable read on the same node).
	TenantDays func(ctx context.Context, tenant string) (int, error)
	// Withdrawals has the sweeper carry out withdrawal marks too.
	Withdrawals WithdrawalConfig
	Logger      *slog.Logger
}

// Sweeper erases what expired.
type Sweeper struct {
	b       *tenancy.Boundary
	recs    Records
	schemas Schemas
	cfg     Config
	log     *slog.Logger
}

// New makes a sweeper over the tenancy boundary.
func New(b *tenancy.Boundary, recs Records, schemas Schemas, cfg Config) *Sweeper {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	switch {
	case cfg.Batch <= 0:
		cfg.Batch = DefaultBatch
	case cfg.Batch > MaxBatch:
		cfg.Batch = MaxBatch
	}
	if cfg.Pause == 0 {
		cfg.Pause = DefaultPause
	}
	if cfg.Share <= 0 || cfg.Share > 1 {
		cfg.Share = DefaultShare
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return false }
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{b: b, recs: recs, schemas: schemas, cfg: cfg, log: log}
}

// Report is what one sweep did.
type Report struct {
	Tenants      int // tenants swept
	Collections  int // collections examined
	Erased       int // records erased
	Anonymised   int // records anonymised (withdrawals)
	Withdrawals  int // withdrawal marks carried out
	Transactions int // transactions that erased or anonymised them
	Scanned      int // scan pages read
}

// Run sweeps every Interval on the leader until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.cfg.IsLeader() {
			continue
		}
		start := time.Now()
		rep, err := s.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("retention sweep", "error", err, "erased", rep.Erased)
		case rep.Erased > 0 || rep.Anonymised > 0:
			s.log.Info("retention sweep", "erased", rep.Erased, "anonymised", rep.Anonymised, "withdrawals", rep.Withdrawals,
				"transactions", rep.Transactions, "tenants", rep.Tenants, "took", time.Since(start))
		}
	}
}

// ErrNotLeader stops a sweep on a node that lost the lead; the next
// leader's sweep takes over.
var ErrNotLeader = errors.New("retention: not the leader any more")

// Sweep erases what expired in every tenant, once. A tenant that fails
// (its keys unavailable, say) is reported and the others are swept.
func (s *Sweeper) Sweep(ctx context.Context) (Report, error) {
	var rep Report
	ids, err := s.cfg.Tenants(ctx)
	if err != nil {
		return rep, fmt.Errorf("retention: list tenants: %w", err)
	}
	var errs []error
	for _, t := range ids {
		if err := s.sweepTenant(ctx, t, &rep); err != nil {
			if errors.Is(err, ErrNotLeader) || ctx.Err() != nil {
				return rep, err
			}
			errs = append(errs, fmt.Errorf("tenant %s: %w", t, err))
			continue
		}
		rep.Tenants++
	}
	return rep, errors.Join(errs...)
}

// sweepTenant erases what expired in one tenant.
func (s *Sweeper) sweepTenant(ctx context.Context, tenant string, rep *Report) error {
	// The clock is read before the policy, and the policy with a
	// linearizable read: a period changed before a moment is in force at
	// that moment, so a sweep never applies a policy older than its
	// clock. The collections are listed linearizably (one read-index
	// round per tenant and pass); the tenant's default, read after them
	// on the same node, is then at least as new. (Stale reads alone lag
	// the leader's own applied writes by up to the store's commit delay:
	// a sweep could apply the old period to a change acknowledged before
	// its clock — TestSweepOnCluster caught it.)
	now := s.cfg.Now().UTC()
	schemas, err := s.schemas.List(ctx, raftstore.Linearizable, tenant)
	if err != nil {
		return fmt.Errorf("retention: collections of %s: %w", tenant, err)
	}
	days := 0
	if s.cfg.TenantDays != nil {
		if days, err = s.cfg.TenantDays(ctx, tenant); err != nil {
			return fmt.Errorf("retention: default of %s: %w", tenant, err)
		}
	}
	// A withdrawal that cannot be carried out now (its records changing,
	// a key unavailable) does not hold up the periods.
	werr := s.withdrawals(ctx, tenant, schemas, rep)
	if errors.Is(werr, ErrNotLeader) || ctx.Err() != nil {
		return werr
	}
	for _, sc := range schemas {
		rep.Collections++
		if err := s.sweepCollection(ctx, tenant, RuleFor(sc, days), now, rep); err != nil {
			return errors.Join(werr, err)
		}
	}
	return werr
}

// sweepCollection erases the records of one collection that expired
// under rule at now: a page of the collection at a time, each page's
// expired records in transactions of at most Batch.
func (s *Sweeper) sweepCollection(ctx context.Context, tenant string, rule Rule, now time.Time, rep *Report) error {
	cutoff := rule.Cutoff(now)
	after := ""
	for {
		q := records.ExpiredQuery{Collection: rule.Collection, Before: cutoff, SubjectOnly: rule.SubjectOnly,
			After: after, Limit: s.cfg.Batch, MaxScan: scanPage}
		var (
			found []records.Expiring
			next  string
			err   error
		)
		for try := 0; ; try++ {
			if !s.cfg.IsLeader() {
				return ErrNotLeader
			}
			if found, next, err = s.recs.Expired(ctx, tenant, q); err != nil {
				return err
			}
			rep.Scanned++
			if len(found) == 0 {
				break
			}
			start := time.Now()
			err = s.erase(ctx, tenant, rule, cutoff, found, rep)
			if err == nil {
				if err := s.pause(ctx, time.Since(start)); err != nil {
					return err
				}
				break
			}
			if !errors.Is(err, errChanged) {
				return err
			}
			if try+1 == attempts {
				// Records keep changing under the sweep: leave this page
				// to the next one.
				s.log.Info("retention: records changed during the sweep; left for the next", "collection", rule.Collection)
				break
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// errChanged: a record of the batch changed between the scan and the
// transaction (or the store lagged): the batch is read again.
var errChanged = errors.New("retention: records changed during the sweep")

// erase removes found (records of one collection that expired under
// rule) in one transaction with one audit entry, on condition that none
// changed since it was found. Records are deleted, keys are not shredded:
// a subject whose old records expire may hold newer ones under the same
// key, and erasing a subject entirely is the erasure service's.
func (s *Sweeper) erase(ctx context.Context, tenant string, rule Rule, cutoff time.Time, found []records.Expiring, rep *Report) error {
	items := make([]records.Held, len(found))
	for i, f := range found {
		items[i] = f.Held
	}
	ops, conds, n, err := s.recs.RemoveOps(ctx, tenant, items)
	if err != nil {
		return fmt.Errorf("retention: %s/%s: %w", tenant, rule.Collection, err)
	}
	if n == 0 {
		return nil // gone since the scan
	}
	if len(ops)+len(conds)+len(found)+txnSlack > raftstore.MaxTxnItems && len(found) > 1 {
		// Many indexed fields: halve the batch until a transaction
		// holds it.
		half := len(found) / 2
		if err := s.erase(ctx, tenant, rule, cutoff, found[:half], rep); err != nil {
			return err
		}
		return s.erase(ctx, tenant, rule, cutoff, found[half:], rep)
	}
	entry, err := audit.System().Entry(s.cfg.Now().UTC(), "retention.sweep", "collection:"+rule.Collection, audit.OutcomeSuccess, map[string]string{
		"count":          strconv.Itoa(n),
		"cutoff":         cutoff.Format(time.RFC3339),
		"retention_days": strconv.Itoa(rule.Days),
		"basis":          string(rule.Basis),
	}).Encode()
	if err != nil {
		return err
	}
	txn := &tenancy.Txn{Conds: append(conds, records.Unchanged(found)...), Ops: ops, Audit: [][]byte{entry}}
	res, err := s.b.Scope(tenant).Apply(ctx, txn)
	switch {
	case err != nil:
		return fmt.Errorf("retention: %s/%s: %w", tenant, rule.Collection, err)
	case res.Err != nil:
		return fmt.Errorf("retention: %s/%s: %w", tenant, rule.Collection, res.Err)
	case !res.Applied:
		return errChanged
	}
	rep.Erased += n
	rep.Transactions++
	return nil
}

// pause waits between two transactions of a sweep: at least Pause, and
// long enough that the transaction that took took is at most Share of
// the time, so writers always get the rest.
func (s *Sweeper) pause(ctx context.Context, took time.Duration) error {
	d := max(s.cfg.Pause, time.Duration(float64(took)*(1-s.cfg.Share)/s.cfg.Share))
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
