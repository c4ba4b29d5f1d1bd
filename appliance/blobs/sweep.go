package blobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/custos/custos/appliance/sweep"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// SweepConfig drives RunSweeper (every: 0 is a quarter of StaleAfter).
type SweepConfig = sweep.Config

// RunSweeper deletes abandoned uploads on the leader until ctx ends.
func (s *Service) RunSweeper(ctx context.Context, cfg SweepConfig) {
	sweep.Run(ctx, cfg, s.cfg.StaleAfter/4, "blob sweep", "deleted abandoned uploads", s.Sweep)
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
			s.stats.swept.Add(1)
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
