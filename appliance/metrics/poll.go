package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/custos/custos/appliance/privacy/requests"
)

// Requests tallies a tenant's data-subject requests;
// *requests.Service implements it.
type Requests interface {
	Tally(ctx context.Context, tenant string) (requests.Summary, error)
}

var _ Requests = (*requests.Service)(nil)

// tally is one tenant's open requests at a poll.
type tally struct{ open, dueSoon, overdue int }

// RunPoll tallies every tenant's data-subject requests now and then
// every interval, until ctx ends; a failed tally is logged and the
// tenant keeps its previous figures until the next poll. Each node polls
// its own state, so every node reports the same figures.
func (m *Metrics) RunPoll(ctx context.Context, interval time.Duration, log *slog.Logger) {
	if m.src.Requests == nil || m.src.Tenants == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := m.PollOnce(ctx); err != nil && ctx.Err() == nil {
			log.Warn("metrics: poll of data-subject requests", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PollOnce tallies every tenant's requests once.
func (m *Metrics) PollOnce(ctx context.Context) error {
	ids, err := m.src.Tenants(ctx)
	if err != nil {
		return err
	}
	out := make(map[string]tally, len(ids))
	var firstErr error
	for _, id := range ids {
		s, err := m.src.Requests.Tally(ctx, id)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			m.mu.Lock()
			if prev, ok := m.dsr[id]; ok {
				out[id] = prev
			}
			m.mu.Unlock()
			continue
		}
		out[id] = tally{open: s.Open, dueSoon: s.DueSoon, overdue: s.Overdue}
	}
	m.mu.Lock()
	m.dsr, m.poll = out, m.opts.Now()
	m.mu.Unlock()
	return firstErr
}
