package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/custos/custos/raftstore"
)

// RunConfig configures a node's background audit work.
type RunConfig struct {
	// IsLeader says whether this node leads: only the leader signs.
	IsLeader func() bool
	// Tick is how often the leader looks for chains to checkpoint
	// (default 1s).
	Tick time.Duration
	// MaxAge and MaxEntries: a chain that grew is checkpointed once its
	// last checkpoint is MaxAge old (default 60s) or MaxEntries behind
	// (default 1000).
	MaxAge     time.Duration
	MaxEntries uint64
	// SelfCheckEvery is the period of the self-check (default 10 min; the
	// first runs at start).
	SelfCheckEvery time.Duration
	Witness        *Witness
	// Retention says how long a chain's entries are kept (nil or 0: for
	// ever). Older entries are pruned on the leader every PruneEvery
	// (default 1 h); their tree hashes stay, so the tree still verifies.
	Retention  func(ctx context.Context, chain string) (time.Duration, error)
	PruneEvery time.Duration
	Logger     *slog.Logger
}

// Runner is the background audit work of one node: checkpoints (leader)
// and self-checks (every node).
type Runner struct {
	s   *Service
	cfg RunConfig
	log *slog.Logger

	mu   sync.Mutex
	last *CheckReport
}

// NewRunner makes the runner of s.
func NewRunner(s *Service, cfg RunConfig) *Runner {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Minute
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 1000
	}
	if cfg.SelfCheckEvery <= 0 {
		cfg.SelfCheckEvery = 10 * time.Minute
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return false }
	}
	if cfg.PruneEvery <= 0 {
		cfg.PruneEvery = time.Hour
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{s: s, cfg: cfg, log: log}
}

// Run works until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	var lastCheck, lastPrune time.Time
	for {
		if r.cfg.IsLeader() {
			if err := r.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("audit checkpoints", "error", err)
			}
			if r.cfg.Retention != nil && time.Since(lastPrune) >= r.cfg.PruneEvery {
				lastPrune = time.Now()
				if err := r.Prune(ctx); err != nil && ctx.Err() == nil {
					r.log.Warn("audit retention", "error", err)
				}
			}
		}
		if time.Since(lastCheck) >= r.cfg.SelfCheckEvery {
			lastCheck = time.Now()
			r.SelfCheck(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SelfCheck runs the self-check now, logs its outcome and keeps it for
// LastCheck.
func (r *Runner) SelfCheck(ctx context.Context) *CheckReport {
	rep, err := r.s.SelfCheck(ctx, r.cfg.Witness)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("audit self-check could not run", "error", err)
		}
		return nil
	}
	for _, c := range rep.Chains {
		if !c.OK {
			r.log.Error("audit self-check failed", "chain", c.Chain, "problem", c.Problem)
		}
	}
	if rep.OK {
		r.log.Debug("audit self-check passed", "chains", len(rep.Chains), "duration", rep.Duration)
	}
	r.mu.Lock()
	r.last = rep
	r.mu.Unlock()
	return rep
}

// LastCheck is the latest self-check report (nil before the first).
func (r *Runner) LastCheck() *CheckReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// CheckpointAge is how far this node's checkpoints lag its chains: the
// age of the oldest latest checkpoint among the chains that have entries
// no checkpoint covers yet (0 when every entry is covered; a chain never
// checkpointed counts from its first entry's time, which is not read:
// it counts as MaxAge, the most the leader should let it wait). It reads
// this node's state (stale), for a metric: the leader signs a chain
// that grew at least every MaxAge, so an age well above it means
// checkpoints are not being made.
func (r *Runner) CheckpointAge(ctx context.Context) (time.Duration, error) {
	now := r.s.now()
	var oldest time.Duration
	err := r.s.store.View(ctx, raftstore.Stale, func(tx *raftstore.ReadTx) error {
		tx.Chains(func(name []byte, size uint64) bool {
			if size == 0 {
				return true
			}
			age := r.cfg.MaxAge
			if msg, _, ok := tx.Get(bucketLatest, name); ok {
				c, err := ParseCheckpoint(noteText(msg))
				switch {
				case err == nil && size <= c.Size:
					return true
				case err == nil:
					age = now.Sub(c.Time)
				}
			}
			oldest = max(oldest, age)
			return true
		})
		return nil
	})
	return oldest, err
}

// Checkpoint signs every chain that is due.
func (r *Runner) Checkpoint(ctx context.Context) error {
	type due struct {
		chain string
	}
	var todo []due
	now := r.s.now()
	err := r.s.store.View(ctx, raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		tx.Chains(func(name []byte, size uint64) bool {
			msg, _, ok := tx.Get(bucketLatest, name)
			if !ok {
				todo = append(todo, due{string(name)})
				return true
			}
			c, err := ParseCheckpoint(noteText(msg))
			if err != nil || (size > c.Size && (size-c.Size >= r.cfg.MaxEntries || now.Sub(c.Time) >= r.cfg.MaxAge)) {
				todo = append(todo, due{string(name)})
			}
			return true
		})
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range todo {
		if _, err := r.s.SignNow(ctx, d.chain); err != nil {
			return err
		}
	}
	return nil
}

// Prune drops the entries of every chain older than its retention (kept
// hashes keep the tree verifiable; see raftstore.OpPruneChain), each with
// an audit.prune entry in the same transaction.
func (r *Runner) Prune(ctx context.Context) error {
	if r.cfg.Retention == nil {
		return nil
	}
	var chains []string
	if err := r.s.store.View(ctx, raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		tx.Chains(func(name []byte, _ uint64) bool {
			chains = append(chains, string(name))
			return true
		})
		return nil
	}); err != nil {
		return err
	}
	for _, chain := range chains {
		keep, err := r.cfg.Retention(ctx, chain)
		if err != nil {
			return err
		}
		if keep <= 0 {
			continue
		}
		if err := r.s.PruneBefore(ctx, chain, r.s.now().Add(-keep)); err != nil {
			return err
		}
	}
	return nil
}
