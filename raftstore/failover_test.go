package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit"
)

// A leader that goes silent — paused, or cut off without its connections
// being closed — must not hold the writes sent through the other nodes
// once they have a new leader (issue 14, "fast failover"). Before the fix,
// the batches a follower had forwarded to the old leader kept the
// proposer's in-flight slots until their calls timed out (ApplyTimeout),
// and every newer write queued behind them; a kill -9 did not show it,
// because the closed connection failed the calls at once.
//
// No timing threshold: the apply timeout is set far beyond the test's own
// waits (ten minutes), so before the fix the fresh writes below cannot
// complete within the test at all, and after it they complete as soon as
// the new leader is known. The time it took is logged, not checked; the
// figure with real processes is in BENCHMARKS.md (TestFaultSilentLeader).
func TestClusterSilentLeaderReleasesForwardedWrites(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) { cfg.ApplyTimeout = 10 * time.Minute })
	old := c.waitLeader()
	// Cleanups run last-in first-out: the leader resumes before the nodes
	// close (a stalled node cannot shut down).
	t.Cleanup(old.faults.unstall)
	var followers []*Store
	for _, n := range c.nodes {
		if n != old {
			followers = append(followers, n)
		}
	}

	// Writers through both followers, so that forwarded batches are in
	// flight when the leader goes silent.
	type write struct {
		key string
		err error
	}
	var (
		mu     sync.Mutex
		writes []write
		wg     sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for i := range 8 {
		f := followers[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ctx.Err() == nil; j++ {
				key := fmt.Sprintf("w%d-%d", i, j)
				_, err := f.Apply(context.Background(), put("b", key, "v"))
				mu.Lock()
				writes = append(writes, write{key, err})
				mu.Unlock()
			}
		}()
	}
	acked := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, w := range writes {
			if w.err == nil {
				n++
			}
		}
		return n
	}
	testkit.Eventually(t, "writes through the followers", func() bool { return acked() >= 200 })

	silentAt := time.Now()
	old.faults.stall()
	var leader *Store
	testkit.Eventually(t, "a new leader", func() bool {
		for _, f := range followers {
			if f.IsLeader() {
				leader = f
				return true
			}
		}
		return false
	})
	elected := time.Since(silentAt)

	// A fresh write through each follower completes while the old leader
	// is still silent, long before the apply timeout.
	for _, f := range followers {
		wctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := f.Apply(wctx, put("fresh", f.NodeID(), "v"))
		cancel()
		if err != nil || !res.Applied {
			t.Fatalf("write through %s after the leader went silent: %+v, %v", f.NodeID(), res, err)
		}
		// And a linearizable read there sees it (a read index of the new
		// leader).
		rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = f.View(rctx, Linearizable, func(r *ReadTx) error {
			if _, _, ok := r.Get(Path("fresh"), []byte(f.NodeID())); !ok {
				return errors.New("the fresh write is missing")
			}
			return nil
		})
		cancel()
		if err != nil {
			t.Fatalf("linearizable read through %s after the leader went silent: %v", f.NodeID(), err)
		}
	}
	t.Logf("leader %s silent: %s elected after %v; a fresh write through each follower acknowledged %v after the silence",
		old.NodeID(), leader.NodeID(), elected.Round(time.Millisecond), time.Since(silentAt).Round(time.Millisecond))

	// The writers are not stuck either: each returns, and a write caught
	// in flight to the silent leader reports an unknown outcome
	// (ErrNoLeader), never a timeout.
	stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("writers still blocked a minute after the new leader was known")
	}
	unknown := 0
	mu.Lock()
	for _, w := range writes {
		switch {
		case w.err == nil:
		case errors.Is(w.err, ErrNoLeader):
			unknown++
		default:
			t.Errorf("write %s: %v, want success or ErrNoLeader", w.key, w.err)
		}
	}
	total := len(writes)
	mu.Unlock()
	t.Logf("%d writes, %d of them unknown (in flight to the silent leader)", total, unknown)

	// The old leader comes back as a follower and holds every
	// acknowledged write.
	old.faults.unstall()
	mu.Lock()
	defer mu.Unlock()
	for _, n := range c.nodes {
		testkit.Eventually(t, n.NodeID()+" holds every acknowledged write", func() bool {
			for _, w := range writes {
				if _, ok := staleGet(n, "b", w.key); w.err == nil && !ok {
					return false
				}
			}
			return true
		})
	}
}

// A leader about to stop hands over: another voter leads at once, without
// an election timeout of silence. On a follower, and on a node without
// other voters, HandOver does nothing.
func TestClusterHandOver(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader()
	f := c.follower()
	if err := f.HandOver(ctxT(t)); err != nil {
		t.Fatalf("hand over on a follower: %v", err)
	}
	if err := leader.HandOver(ctxT(t)); err != nil {
		t.Fatalf("hand over on the leader: %v", err)
	}
	if leader.IsLeader() {
		t.Fatal("the leader still leads after handing over")
	}
	next := c.waitLeader()
	if next == leader {
		t.Fatal("the old leader leads again")
	}
	if _, err := next.Apply(ctxT(t), put("b", "after", "v")); err != nil {
		t.Fatalf("write after the hand-over: %v", err)
	}

	single := newTestCluster(t, 1)
	if err := single.waitLeader().HandOver(ctxT(t)); err != nil || !single.nodes[0].IsLeader() {
		t.Fatalf("hand over without other voters: %v (still leader: %v)", err, single.nodes[0].IsLeader())
	}
}
