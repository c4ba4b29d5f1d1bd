package sweep_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos/appliance/sweep"
	"github.com/custos/custos/internal/testkit"
)

// Run sweeps only while the node leads, passes the tenants it lists,
// carries on after a failed listing or pass, and returns when its context
// ends.
func TestRun(t *testing.T) {
	var leader atomic.Bool
	var listFails, passFails atomic.Int32
	listFails.Store(1)
	passFails.Store(1)
	var mu sync.Mutex
	var passes [][]string
	cfg := sweep.Config{
		Every:    5 * time.Millisecond,
		IsLeader: leader.Load,
		Tenants: func(context.Context) ([]string, error) {
			if listFails.Add(-1) >= 0 {
				return nil, errors.New("store unavailable")
			}
			return []string{"acme", "globex"}, nil
		},
	}
	pass := func(_ context.Context, tenants []string) (int, error) {
		if !leader.Load() {
			t.Error("a pass while not leading")
		}
		if passFails.Add(-1) >= 0 {
			return 0, errors.New("leadership lost")
		}
		mu.Lock()
		defer mu.Unlock()
		passes = append(passes, tenants)
		return len(tenants), nil
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(passes) }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sweep.Run(ctx, cfg, time.Hour, "test sweep", "swept", pass); close(done) }()

	time.Sleep(30 * time.Millisecond) // several ticks as a follower: nothing happens
	if n := count(); n != 0 || listFails.Load() != 1 {
		t.Fatalf("a follower swept: %d passes, listing tried %v", n, listFails.Load() != 1)
	}
	leader.Store(true)
	testkit.Eventually(t, "two passes after a failed listing and a failed pass", func() bool { return count() >= 2 })
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for _, p := range passes {
		if len(p) != 2 || p[0] != "acme" || p[1] != "globex" {
			t.Fatalf("a pass over %v", p)
		}
	}
}
