//go:build bench

package main

import (
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit/e2e"
)

// failoverBound is issue 14's acceptance 7: the first acknowledged write
// within 2 s of the leader going silent.
const failoverBound = 2 * time.Second

// TestBenchFailover is the figure of issue 14's fast failover: five rounds
// of the leader paused with SIGSTOP, and five of it cut off in a network
// namespace, under the fault tests' load (16 writers through all nodes,
// 4 register clients), with plain binaries. Unlike make test's
// TestFaultSilentLeader* (race-enabled binaries: progress only, see
// failover_test.go), it holds every round to the 2 s of the acceptance,
// and prints the figures BENCHMARKS.md records. The partition rounds need
// root (network namespaces).
func TestBenchFailover(t *testing.T) {
	t.Setenv("CUSTOS_E2E_RACE", "0")
	bin := e2e.Binary(t)
	const rounds = 5
	check := func(t *testing.T, name string, acks []time.Duration) {
		var worst time.Duration
		for _, d := range acks {
			worst = max(worst, d)
		}
		t.Logf("BENCH failover %s: first acknowledged write after the leader went silent, %d rounds: %v (max %v)",
			name, len(acks), roundAll(acks), worst.Round(time.Millisecond))
		if worst > failoverBound {
			t.Errorf("%s: first acknowledged write %v after the leader went silent, want within %v", name, worst.Round(time.Millisecond), failoverBound)
		}
	}
	t.Run("SIGSTOP", func(t *testing.T) {
		c := e2e.StartCluster(t, bin)
		check(t, "SIGSTOP", silentLeaderRounds(t, c, rounds, stopLeader(t)))
	})
	t.Run("partition", func(t *testing.T) {
		nn := e2e.NewNetns(t, 3)
		c := e2e.StartClusterOpts(t, bin, e2e.Options{Netns: nn, Extra: netnsConfig})
		check(t, "partition", silentLeaderRounds(t, c, rounds, partitionLeader(c, nn)))
	})
}
