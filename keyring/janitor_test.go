package keyring

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/storetest"
)

// When the janitor compacts: after a shred (once the half window has
// passed), again after the node installed a snapshot, never twice for the
// same shred, and not again after a restart (the state file).
func TestJanitorCompactionSchedule(t *testing.T) {
	c := storetest.NewCluster(t, 1)
	tenancytest.Register(t, c.Nodes[0], "acme")
	id, _ := age.GenerateX25519Identity()
	h := NewTestHierarchy(c.Nodes[0], HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}})
	ctx := context.Background()
	if err := h.Provision(ctx, opCaller, "acme", ProviderSpec{}); err != nil {
		t.Fatal(err)
	}
	compactions, restored := 0, uint64(0)
	state := filepath.Join(t.TempDir(), "keyring-compacted")
	newJanitor := func() *Janitor {
		return NewJanitor(h, JanitorConfig{
			CompactWindow:     100 * time.Millisecond,
			Compact:           func(context.Context) error { compactions++; return nil },
			StateFile:         state,
			SnapshotsRestored: func() uint64 { return restored },
		})
	}
	j := newJanitor()
	step := func(want int, what string) {
		t.Helper()
		if err := j.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if compactions != want {
			t.Fatalf("%s: %d compactions, want %d", what, compactions, want)
		}
	}
	step(0, "no shred yet")
	if _, err := h.DataKey(ctx, "acme", "guest-1"); err != nil {
		t.Fatal(err)
	}
	if err := h.Shred(ctx, opCaller, "acme", "guest-1"); err != nil {
		t.Fatal(err)
	}
	// The janitor reads its node's committed state, which trails the apply
	// by a few milliseconds: step until it has seen the shred.
	seen := func(what string) {
		t.Helper()
		testkit.Eventually(t, what+": the janitor to see it", func() bool {
			if !j.pendingSince.IsZero() {
				return true
			}
			step(compactions, what)
			return false
		})
	}
	seen("shred just seen: waiting half the window")
	time.Sleep(60 * time.Millisecond)
	step(1, "half the window passed")
	step(1, "the same shred again")
	restored++
	seen("snapshot installed: waiting")
	time.Sleep(60 * time.Millisecond)
	step(2, "snapshot installed after the shred")
	j = newJanitor() // a restart
	step(2, "after a restart, nothing new")
	if err := h.Shred(ctx, opCaller, "acme", "guest-1"); err == nil {
		t.Fatal("shredding a shredded subject succeeded")
	}
}
