package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit"
)

// A leader paused (SIGSTOP) while it replicates, deposed meanwhile, and
// resumed must not serve a linearizable read from its stale state. This is
// the failure TestFaultSilentLeaderStopped caught once with porcupine: the
// resumed old leader answered a GET with a value that acknowledged writes
// through the new leader had overwritten two seconds before.
//
// The mechanism: the read gate used VerifyLeader, and hashicorp/raft counts
// as its votes the answers to AppendEntries requests sent before the verify
// was asked. The paused leader's last pipelined requests were answered by
// its followers (still in its term) before they elected a new leader; the
// answers waited in its sockets and, on resume, confirmed it.
//
// A stalled node (netFaults.stall) is a paused process seen from the
// network, but its own goroutines keep running — and a running leader steps
// down when it has not heard from a quorum for LeaderLeaseTimeout, which
// a paused one cannot do. So the old leader gets a lease longer than the
// test's whole silence (its followers' heartbeat timeout is shorter than
// its own, so they elect a new leader while it still believes it leads;
// the bootstrap node leads first, and hands over to it),
// and the read is asked of it while it is stalled: its gate's round starts
// while the answers to its last requests wait, as it did in the paused
// process the moment it resumed.
func TestClusterResumedLeaderReadsNoStaleState(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		if cfg.NodeID == "n3" {
			// Heartbeats every 0.8–1.6 s; steps down only after 8 s
			// without a quorum.
			cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 8*time.Second, 8*time.Second, 8*time.Second
			return
		}
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, time.Second
	})
	old := c.nodes[2]
	// A transfer can time out while n3 still catches up after its join:
	// ask again until it leads.
	testkit.Eventually(t, old.NodeID()+" leads", func() bool {
		if !old.IsLeader() {
			_ = c.waitLeader().TransferLeadership(ctxT(t), old.NodeID())
		}
		return old.IsLeader()
	})
	// Cleanups run last-in first-out: the leader resumes before the nodes
	// close (a stalled node cannot shut down).
	t.Cleanup(old.faults.unstall)

	// Writers through the leader, so that replication requests are in
	// flight (pipelined) when it goes silent.
	var acked atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ctx.Err() == nil; j++ {
				if _, err := old.Apply(context.Background(), put("b", fmt.Sprintf("w%d-%d", i, j), "v")); err == nil {
					acked.Add(1)
				}
			}
		}()
	}
	testkit.Eventually(t, "writes through the leader", func() bool { return acked.Load() >= 200 })
	// Linearizable reads were served there before the silence.
	if err := old.View(ctxT(t), Linearizable, func(*ReadTx) error { return nil }); err != nil {
		t.Fatalf("linearizable read on the leader: %v", err)
	}

	old.faults.stall()
	var leader *Store
	testkit.Eventually(t, "a new leader", func() bool {
		for _, n := range c.nodes {
			if n != old && n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	wctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := leader.Apply(wctx, put("fresh", "k", "new")); err != nil {
		t.Fatalf("write through the new leader %s: %v", leader.NodeID(), err)
	}
	if !old.IsLeader() {
		t.Fatalf("%s stepped down while silent: its lease is meant to outlast the election", old.NodeID())
	}

	// The read, asked of the silent old leader, which still believes it
	// leads; it resumes while the read waits for its gate.
	type result struct {
		found bool
		err   error
	}
	read := make(chan result, 1)
	go func() {
		rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var found bool
		err := old.View(rctx, Linearizable, func(r *ReadTx) error {
			_, _, found = r.Get(Path("fresh"), []byte("k"))
			return nil
		})
		read <- result{found, err}
	}()
	// Let the gate's round start while the node is silent (not a timing
	// assertion: a round that started later would only make the test
	// weaker, never fail it wrongly). Then it resumes cut off from the
	// others: what it had received before the cut (the answers to its
	// last requests) is all it hears, so no fresh answer, which would
	// name the new term, races with those stale ones.
	time.Sleep(200 * time.Millisecond)
	c.partition(old)
	old.faults.unstall()
	r := <-read
	c.heal()
	switch {
	case r.err != nil:
		// Refused: deposed, or no quorum confirmed it in time.
		if !errors.Is(r.err, ErrNoLeader) && !errors.Is(r.err, ErrNotLeader) && !errors.Is(r.err, ErrTimeout) {
			t.Fatalf("linearizable read on the resumed old leader: %v, want success or a no-leader error", r.err)
		}
		t.Logf("linearizable read on the resumed old leader refused: %v", r.err)
	case !r.found:
		t.Fatalf("linearizable read on the resumed old leader %s missed a write acknowledged by the new leader %s before the read began (stale read)", old.NodeID(), leader.NodeID())
	default:
		t.Logf("linearizable read on the resumed old leader saw the new leader's write")
	}
}
