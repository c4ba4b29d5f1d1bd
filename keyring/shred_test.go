package keyring

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

// Acceptance 5, second half: after a subject is shredded and the
// compaction window has passed, neither the subject's wrapped key nor its
// unwrapped key bytes are in any file of any node (state, raft log,
// snapshots); the cluster goes on working; and the other subjects' data
// still opens.
func TestShredLeavesNoKeyBytesInClusterFiles(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	tenancytest.Register(t, c.Nodes[0], "acme")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := func() HierarchyOptions {
		return HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}, Cache: NewCache(time.Minute, 1000, nil)}
	}
	hs := make([]*Hierarchy, len(c.Nodes))
	for i, n := range c.Nodes {
		hs[i] = NewTestHierarchy(n, opts())
		j := NewJanitor(hs[i], JanitorConfig{
			Tick:          20 * time.Millisecond,
			CompactWindow: 300 * time.Millisecond,
			Compact: func(ctx context.Context) error {
				_, err := n.Compact(ctx)
				return err
			},
			StateFile:         filepath.Join(c.DataDirs[i], "keyring-compacted"),
			SnapshotsRestored: func() uint64 { return n.Status().Stats.SnapshotsRestored },
			IsLeader:          n.IsLeader,
		})
		jctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); j.Run(jctx) }()
		t.Cleanup(func() { stop(); <-done })
	}
	if err := hs[0].Provision(ctx, opCaller, "acme", ProviderSpec{}); err != nil {
		t.Fatal(err)
	}
	// Two subjects with sealed values; then plenty of other writes so the
	// key's creation is deep in the log.
	guests := tenancytest.Path("acme", "guests")
	place := func(s string) Place {
		return Place{Tenant: "acme", Collection: "guests", RecordID: s, Field: "email", Version: 1}
	}
	sealed := map[string][]byte{}
	for _, s := range []string{"guest-1", "guest-2"} {
		k, err := hs[1].DataKey(ctx, "acme", s) // through a follower or the leader
		if err != nil {
			t.Fatal(err)
		}
		sealed[s], err = Seal(k, place(s), []byte(s+"@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Leader(t).Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{rawPut(guests, s, sealed[s])}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 300; i++ {
		if _, err := c.Leader(t).Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{rawPut(raftstore.Path("filler"), fmt.Sprint(i), bytes.Repeat([]byte{'f'}, 200))}}); err != nil {
			t.Fatal(err)
		}
	}
	wrapped, err := hs[0].read(ctx, "acme", "dek/guest-1")
	if err != nil {
		t.Fatal(err)
	}
	k1, err := hs[2].DataKey(ctx, "acme", "guest-1")
	if err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(nil), k1.raw[:]...)
	// The scan sees the wrapped key before the shred (on every node), and
	// never the unwrapped key.
	if got := testkit.FilesHolding(t, wrapped, c.DataDirs...); len(got) < 3 {
		t.Fatalf("before the shred the wrapped key is in %d files (%v): the scan is blind", len(got), got)
	}
	if got := testkit.FilesHolding(t, raw, c.DataDirs...); len(got) != 0 {
		t.Fatalf("an unwrapped data key is on disk: %v", got)
	}

	// Shred guest-1 with its row, in one transaction, as the erasure does.
	txn, err := hs[0].ShredOps(ctx, dpoCaller, "acme", "guest-1")
	if err != nil {
		t.Fatal(err)
	}
	txn.Ops = append(txn.Ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: raftstore.Path("guests"), Key: []byte("guest-1")})
	res, err := tenancy.New(c.Leader(t)).Scope("acme").Apply(ctx, txn)
	if err != nil || !res.Applied {
		t.Fatalf("shred: %+v %v", res, err)
	}
	// Within the window (plus a compaction), every node's files are clean,
	// and every node has dropped the cached key.
	testkit.Poll(t, 60*time.Second, "after the window", func() error {
		w, r := testkit.FilesHolding(t, wrapped, c.DataDirs...), testkit.FilesHolding(t, raw, c.DataDirs...)
		cachedAnywhere := false
		for _, h := range hs {
			if _, ok := h.cache.Get(CacheKey{Tenant: "acme", Subject: "guest-1"}); ok {
				cachedAnywhere = true
			}
		}
		if len(w) != 0 || len(r) != 0 || cachedAnywhere {
			return fmt.Errorf("wrapped key in %v, unwrapped in %v, cached somewhere: %v", w, r, cachedAnywhere)
		}
		return nil
	})
	// The cluster works on: guest-2's data opens on every node, with a cold
	// hierarchy too, and new writes go through.
	for i, n := range c.Nodes {
		h := NewTestHierarchy(n, opts())
		k, err := h.DataKey(ctx, "acme", "guest-2")
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		if pt, err := Open(k, place("guest-2"), sealed["guest-2"]); err != nil || string(pt) != "guest-2@example.com" {
			t.Fatalf("node %d: guest-2 after the shred: %q %v", i+1, pt, err)
		}
	}
	if _, err := c.Leader(t).Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{rawPut(raftstore.Path("after"), "k", []byte("v"))}}); err != nil {
		t.Fatal(err)
	}
	// guest-1's old ciphertext (say, from a backup) opens under no key the
	// cluster can produce: a new key for the subject is a different key.
	k, err := hs[0].DataKey(ctx, "acme", "guest-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(k, place("guest-1"), sealed["guest-1"]); err == nil {
		t.Fatal("shredded data opened")
	}
	// The shred is in the tenant's chain, with its actor.
	if err := c.Nodes[1].View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		seq, _ := r.ChainHead(tenancytest.Chain("acme"))
		for i := uint64(1); i <= seq; i++ {
			data, _, _ := r.ChainEntry(tenancytest.Chain("acme"), i)
			if bytes.Contains(data, []byte(`"key.shred"`)) && bytes.Contains(data, []byte(`"dpo"`)) {
				return nil
			}
		}
		return fmt.Errorf("no key.shred entry by dpo in the tenant chain")
	}); err != nil {
		t.Fatal(err)
	}
}
