package blobs

import (
	"context"
	"log/slog"
	"time"
)

// SweepConfig drives RunSweeper.
type SweepConfig struct {
	Every    time.Duration // how often (0: a quarter of StaleAfter)
	IsLeader func() bool   // only the leader sweeps
	// Tenants lists the tenant ids to sweep.
	Tenants func(ctx context.Context) ([]string, error)
	Logger  *slog.Logger
}

// RunSweeper deletes abandoned uploads on the leader until ctx ends.
func (s *Service) RunSweeper(ctx context.Context, cfg SweepConfig) {
	every := cfg.Every
	if every <= 0 {
		every = s.cfg.StaleAfter / 4
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
		if !cfg.IsLeader() {
			continue
		}
		ids, err := cfg.Tenants(ctx)
		if err != nil {
			log.Warn("blob sweep: list tenants", "error", err)
			continue
		}
		n, err := s.Sweep(ctx, ids)
		if err != nil {
			log.Warn("blob sweep", "error", err, "swept", n)
			continue
		}
		if n > 0 {
			log.Info("blob sweep: deleted abandoned uploads", "count", n)
		}
	}
}
