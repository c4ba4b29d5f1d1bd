package keyring_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Sealed values stored through a three-node cluster leave no plaintext in
// any file the cluster keeps: state files, raft logs, snapshots.
func TestNoPlaintextInClusterFiles(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	leader := c.Leader(t)
	key, err := keyring.NewKey(1)
	if err != nil {
		t.Fatal(err)
	}
	canary := func(i int) []byte { return fmt.Appendf(nil, "CANARY-%04d-guest@example.com", i) }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 200; i++ {
		place := keyring.Place{Tenant: "acme", Collection: "guests", RecordID: fmt.Sprint(i), Field: "email", Version: 1}
		sealed, err := keyring.Seal(key, place, canary(i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leader.Apply(ctx, &raftstore.Txn{
			Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("tenant:acme", "guests"), Key: []byte(place.RecordID), Value: sealed}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	// A control stored in the clear proves the scan can see what it looks for.
	if _, err := leader.Apply(ctx, &raftstore.Txn{
		Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("control"), Key: []byte("k"), Value: []byte("CONTROL-IN-THE-CLEAR")}},
	}); err != nil {
		t.Fatal(err)
	}
	// Every node has everything, and has taken a snapshot.
	for _, n := range c.Nodes {
		if err := n.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
			if got := r.Count(raftstore.Path("tenant:acme", "guests")); got != 200 {
				return fmt.Errorf("%s has %d records", n.NodeID(), got)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	snaps, scanned, controls := 0, 0, 0
	testkit.ScanFiles(t, func(p string, data []byte) {
		scanned++
		if filepath.Base(p) == "state.bin" {
			snaps++
		}
		if bytes.Contains(data, []byte("CONTROL-IN-THE-CLEAR")) {
			controls++
		}
		if bytes.Contains(data, []byte("CANARY-")) || bytes.Contains(data, []byte("guest@example.com")) {
			t.Errorf("plaintext canary found in %s", p)
		}
	}, c.DataDirs...)
	if controls < 3 {
		t.Fatalf("the clear-text control was found in only %d files: the scan is blind", controls)
	}
	if scanned < 9 {
		t.Fatalf("scanned only %d files", scanned)
	}
	t.Logf("scanned %d files (%d snapshots) on 3 nodes: no canary", scanned, snaps)
}
