package main

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit/e2e"
)

// Acceptance 7 of issue 14: the leader goes silent — paused with SIGSTOP,
// or cut off from the other nodes in a network namespace — while 16
// clients write through all three nodes. Writes through the other nodes
// must flow again as soon as they have a new leader (before the fix, the
// batches they had forwarded to the silent leader kept the forwarder's
// in-flight slots until their calls timed out, and every newer write
// queued behind them: raftstore's TestClusterSilentLeaderReleasesForwardedWrites),
// no acknowledged write may be lost, and the register's history stays
// linearizable (porcupine), as in TestFaultKillLeader.
//
// Why these tests assert progress and not the 2 s of the issue: make test
// runs them with race-enabled binaries on a shared two-core machine,
// where an election alone takes 1–1.7 s and a scheduling hiccup can add
// a second; a timing threshold there would flake. They assert that writes
// flow again while the old leader is still silent (within 20 s, far from
// any figure they produce), and log the time to the first acknowledged
// write; the 2 s bound itself is asserted by TestBenchFailover (make
// bench, plain binaries, several rounds), whose figures are in
// BENCHMARKS.md. The mechanism is covered without timing by the raftstore
// test above, whose apply timeout is ten minutes.

// TestFaultSilentLeaderStopped pauses the leader with SIGSTOP.
func TestFaultSilentLeaderStopped(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartCluster(t, bin)
	silentLeaderRounds(t, c, 1, stopLeader(t))
}

// TestFaultSilentLeaderPartitioned cuts the leader off the other nodes:
// every node runs in its own network namespace, and the leader's port on
// the bridge that joins them goes down, so its packets are dropped and no
// connection is closed or reset.
func TestFaultSilentLeaderPartitioned(t *testing.T) {
	bin := e2e.Binary(t)
	nn := e2e.NewNetns(t, 3)
	c := e2e.StartClusterOpts(t, bin, e2e.Options{Netns: nn, Extra: netnsConfig})
	silentLeaderRounds(t, c, 1, partitionLeader(c, nn))
}

// netnsConfig turns the rate limits off in a cluster whose nodes run in
// network namespaces: the test's clients reach a node from inside its
// namespace, so all of them come from one source address (the node's
// own), and the per-source limit would refuse the load and the checks
// that read every write back.
const netnsConfig = "[ratelimit]\nenabled = false\n"

// silencer makes a node silent and returns what brings it back.
type silencer struct {
	name    string
	silence func(n *e2e.Node) (resume func())
}

func stopLeader(t *testing.T) silencer {
	return silencer{name: "SIGSTOP", silence: func(n *e2e.Node) func() {
		if err := n.Proc.Signal(syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP %s: %v", n.ID, err)
		}
		return func() {
			if err := n.Proc.Signal(syscall.SIGCONT); err != nil {
				t.Fatalf("SIGCONT %s: %v", n.ID, err)
			}
		}
	}}
}

func partitionLeader(c *e2e.Cluster, nn *e2e.Netns) silencer {
	return silencer{name: "partition", silence: func(n *e2e.Node) func() {
		i := slices.Index(c.Nodes, n)
		nn.Cut(i)
		return func() { nn.Heal(i) }
	}}
}

// silentLeaderRounds runs the load, silences the leader rounds times,
// and checks the history; it returns the time from each silence to the
// first acknowledged write started after it.
func silentLeaderRounds(t *testing.T, c *e2e.Cluster, rounds int, s silencer) []time.Duration {
	t.Helper()
	load := startFaultLoad(t, c)
	var firstAcks []time.Duration
	for round := 1; round <= rounds; round++ {
		load.waitFlowing(t, fmt.Sprintf("%s round %d", s.name, round), 100, 2*time.Second)
		leader := c.WaitLeader(30 * time.Second)
		// From the moment the signal is sent or the link is down: a
		// write started before then may still be acknowledged by the
		// old leader.
		resume := s.silence(leader)
		silentAt := load.now()
		resumed := false
		t.Cleanup(func() {
			if !resumed {
				resume()
			}
		})
		first, err := load.firstAck(silentAt, 20*time.Second)
		if err != nil {
			t.Fatalf("%s round %d: leader %s silent: %v within 20 s", s.name, round, leader.ID, err)
		}
		firstAcks = append(firstAcks, first)
		// Writes keep flowing while the old leader is still silent.
		load.waitFlowing(t, fmt.Sprintf("%s round %d, leader %s silent", s.name, round, leader.ID), 50, time.Second)
		t.Logf("%s round %d: leader %s silent; first acknowledged write %v after it; first ack per node: %s",
			s.name, round, leader.ID, first.Round(time.Millisecond), load.hist.firstAcksByNode(silentAt))
		resume()
		resumed = true
		c.WaitHealthy(leader, 30*time.Second)
		c.WaitCaughtUp(30*time.Second, false, leader)
	}
	rounded := roundAll(firstAcks)
	t.Logf("%s: time to the first acknowledged write after the leader went silent: %v", s.name, rounded)
	load.verify(t)
	return firstAcks
}
