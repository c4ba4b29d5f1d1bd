// Package sweep runs a service's background sweep — one pass of clean-up
// over every tenant that exactly one node should make, such as deleting
// abandoned blob uploads or shredding expired exports — on the cluster's
// leader, at a fixed interval, until its context ends.
//
// Why a package: every such sweep has the same loop (tick, am I the
// leader, list the tenants, sweep, log what was done or what failed), and
// the services that sweep are of different layers; the loop lives here,
// below all of them, once. A pass that fails is logged and tried again at
// the next tick: a sweep removes only what is already due, so a missed
// pass delays the clean-up and loses nothing. Leadership is asked at each
// tick rather than watched, so a node that gains it sweeps from its next
// tick and one that loses it stops after the pass under way (whose
// transactions then fail on the new leader's conditions or are applied
// once: each pass is idempotent by construction of its callers).
package sweep

import (
	"context"
	"log/slog"
	"time"
)

// Config drives Run.
type Config struct {
	Every    time.Duration // how often (0: the caller's default)
	IsLeader func() bool   // only the leader sweeps
	// Tenants lists the tenant ids to sweep.
	Tenants func(ctx context.Context) ([]string, error)
	Logger  *slog.Logger
}

// Pass sweeps the tenants once and says how many items it removed.
type Pass func(ctx context.Context, tenants []string) (int, error)

// Run makes a pass every cfg.Every (def when it is not set) while this
// node leads, until ctx ends. name names the sweep in the log, done says
// what a pass's count is ("deleted abandoned uploads").
func Run(ctx context.Context, cfg Config, def time.Duration, name, done string, pass Pass) {
	every := cfg.Every
	if every <= 0 {
		every = def
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if cfg.IsLeader == nil || !cfg.IsLeader() {
			continue
		}
		ids, err := cfg.Tenants(ctx)
		if err != nil {
			log.Warn(name+": list tenants", "error", err)
			continue
		}
		n, err := pass(ctx, ids)
		if err != nil {
			log.Warn(name, "error", err, "swept", n)
			continue
		}
		if n > 0 {
			log.Info(name+": "+done, "count", n)
		}
	}
}
