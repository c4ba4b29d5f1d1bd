package blobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
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

// Sweep deletes the unfinished uploads of the tenants whose marker has not
// been refreshed for StaleAfter (their uploader died). The leader runs it.
func (s *Service) Sweep(ctx context.Context, tenantIDs []string) (int, error) {
	cutoff := s.now().Add(-s.cfg.StaleAfter)
	swept := 0
	for _, t := range tenantIDs {
		type stale struct {
			id      string
			version uint64
		}
		var found []stale
		if err := s.tenancy.Scope(t).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
			r.Scan(pendingPath, nil, 0, func(k, v []byte, ver uint64) bool {
				var p pending
				if json.Unmarshal(v, &p) != nil || p.Touched.Before(cutoff) {
					found = append(found, stale{string(k), ver})
				}
				return true
			})
			return nil
		}); err != nil {
			return swept, fmt.Errorf("blobs: sweep %s: %w", t, err)
		}
		for _, f := range found {
			if err := s.discard(ctx, s.tenancy.Scope(t), f.id, f.version); err != nil {
				return swept, fmt.Errorf("blobs: sweep %s/%s: %w", t, f.id, err)
			}
			swept++
		}
	}
	return swept, nil
}

// Pending is the number of unfinished uploads of tenant (for tests and
// status).
func (s *Service) Pending(ctx context.Context, tenant string) (int, error) {
	n := 0
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		n = r.Count(pendingPath)
		return nil
	})
	return n, err
}
