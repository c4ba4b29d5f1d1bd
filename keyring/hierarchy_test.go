package keyring_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
)

// extOp is the operator calling key operations in these tests.
var extOp = keyring.FakeAuditor{Type: "operator", ID: "op"}

func TestHierarchyAcrossNodes(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	tenancytest.Register(t, c.Nodes[0], "acme")
	rcpt, ids := newSealIdentity(t)
	seal := []age.Recipient{rcpt}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One Hierarchy per node, each with its own cache, as in three processes.
	hs := make([]*keyring.Hierarchy, len(c.Nodes))
	for i, n := range c.Nodes {
		hs[i] = keyring.NewTestHierarchy(n, keyring.HierarchyOptions{Seal: seal, Identities: ids, Cache: keyring.NewCache(time.Minute, 1000, nil)})
	}
	if err := hs[0].Provision(ctx, extOp, "acme", keyring.ProviderSpec{}); err != nil {
		t.Fatal(err)
	}
	if err := hs[1].Provision(ctx, extOp, "acme", keyring.ProviderSpec{}); err != nil {
		t.Fatalf("provision is not idempotent: %v", err)
	}
	place := keyring.Place{Tenant: "acme", Collection: "guests", RecordID: "g1", Field: "email", Version: 1}
	k0, err := hs[0].DataKey(ctx, "acme", "guest-1")
	if err != nil {
		t.Fatal(err)
	}
	ct, err := keyring.Seal(k0, place, []byte("guest@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hs[1:] {
		k, err := h.DataKey(ctx, "acme", "guest-1")
		if err != nil {
			t.Fatalf("node %d: %v", i+2, err)
		}
		if pt, err := keyring.Open(k, place, ct); err != nil || string(pt) != "guest@example.com" {
			t.Fatalf("node %d opens: %q %v", i+2, pt, err)
		}
	}
	// The tenant key is not the subject key.
	tk, err := hs[2].DataKey(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Open(tk, place, ct); !errors.Is(err, keyring.ErrOpen) {
		t.Fatalf("tenant key opened a subject's value: %v", err)
	}
	// A node without the seal identity fails closed.
	sealed := keyring.NewTestHierarchy(c.Nodes[1], keyring.HierarchyOptions{Seal: seal, Cache: keyring.NewCache(time.Minute, 10, nil)})
	if _, err := sealed.DataKey(ctx, "acme", "guest-1"); !errors.Is(err, keyring.ErrRootUnavailable) {
		t.Fatalf("sealed node: %v", err)
	}
	// Unknown tenant.
	if _, err := hs[0].DataKey(ctx, "globex", ""); !errors.Is(err, keyring.ErrNoKeys) {
		t.Fatalf("unprovisioned tenant: %v", err)
	}
	// Shredding: the key is gone for every node that has not cached it, and
	// a new key for the same subject does not open the old data.
	if err := hs[0].Shred(ctx, extOp, "acme", "guest-1"); err != nil {
		t.Fatalf("shred: %v", err)
	}
	fresh := keyring.NewTestHierarchy(c.Nodes[2], keyring.HierarchyOptions{Seal: seal, Identities: ids, Cache: keyring.NewCache(time.Minute, 10, nil)})
	for _, h := range []*keyring.Hierarchy{hs[0], fresh} {
		k, err := h.DataKey(ctx, "acme", "guest-1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keyring.Open(k, place, ct); !errors.Is(err, keyring.ErrOpen) {
			t.Fatalf("data opened after its key was shredded: %v", err)
		}
	}
}

// With the cache warm, 1,000 writes to one subject cost at most one root
// (age) unwrap.
func TestHierarchyCacheMakesRootCallsRare(t *testing.T) {
	c := storetest.NewCluster(t, 1)
	tenancytest.Register(t, c.Nodes[0], "acme")
	id, _ := age.GenerateX25519Identity()
	cache := keyring.NewCache(time.Minute, 100, nil)
	h := keyring.NewTestHierarchy(c.Nodes[0], keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}, Cache: cache})
	ctx := context.Background()
	if err := h.Provision(ctx, extOp, "acme", keyring.ProviderSpec{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		k, err := h.DataKey(ctx, "acme", "guest-7")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keyring.Seal(k, keyring.Place{Tenant: "acme", RecordID: "r"}, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// One load each for the subject key, the KEK it needed (the only root
	// unwrap) and the tenant key (the audit pseudonym of the new subject).
	if n := cache.Loads(); n > 3 {
		t.Fatalf("%d loads for 1,000 writes", n)
	}
}

// Rotation: old data still opens, new keys use the new KEK, rewrap moves
// every data key, and no value is re-encrypted (the data keys are the same).
func TestHierarchyRotateRewrap(t *testing.T) {
	c := storetest.NewCluster(t, 1)
	tenancytest.Register(t, c.Nodes[0], "acme")
	id, _ := age.GenerateX25519Identity()
	h := keyring.NewTestHierarchy(c.Nodes[0], keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}, Cache: keyring.NewCache(time.Minute, 1000, nil)})
	ctx := context.Background()
	if err := h.Provision(ctx, extOp, "acme", keyring.ProviderSpec{}); err != nil {
		t.Fatal(err)
	}
	place := keyring.Place{Tenant: "acme", Collection: "guests", Field: "email", Version: 1}
	sealed := map[string][]byte{}
	for i := 0; i < 25; i++ {
		subject := "guest-" + string(rune('a'+i))
		k, err := h.DataKey(ctx, "acme", subject)
		if err != nil {
			t.Fatal(err)
		}
		place.RecordID = subject
		sealed[subject], _ = keyring.Seal(k, place, []byte("secret of "+subject))
	}
	v, err := h.Rotate(ctx, extOp, "acme")
	if err != nil || v != 2 {
		t.Fatalf("rotate: %d %v", v, err)
	}
	st, _ := h.Status(ctx, "acme")
	if st.CurrentKEK != 2 || st.Pending != 26 {
		t.Fatalf("after rotate: %+v", st)
	}
	for {
		n, err := h.Rewrap(ctx, "acme", 10)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	st, _ = h.Status(ctx, "acme")
	if st.Pending != 0 || st.ByKEK[2] != 26 {
		t.Fatalf("after rewrap: %+v", st)
	}
	// A node with a cold cache opens the old values through the new wrapping.
	cold := keyring.NewTestHierarchy(c.Nodes[0], keyring.HierarchyOptions{Identities: []age.Identity{id}, Cache: keyring.NewCache(time.Minute, 1000, nil)})
	for subject, ct := range sealed {
		k, err := cold.DataKey(ctx, "acme", subject)
		if err != nil {
			t.Fatal(err)
		}
		place.RecordID = subject
		if pt, err := keyring.Open(k, place, ct); err != nil || string(pt) != "secret of "+subject {
			t.Fatalf("%s after rotation: %q %v", subject, pt, err)
		}
	}
	// New subjects get keys under KEK 2.
	if _, err := h.DataKey(ctx, "acme", "newcomer"); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.Status(ctx, "acme"); st.ByKEK[2] != 27 || st.ByKEK[1] != 0 {
		t.Fatalf("new key: %+v", st)
	}
}

// Every operation that needs a tenant's key returns *UnavailableError
// naming the tenant when the key cannot be had — on a sealed node
// (ErrSealed) and on a node with another seal identity
// (ErrRootUnavailable) — so callers map that one type, not a list of paths.
func TestHierarchyKeyUnavailableIsTyped(t *testing.T) {
	c := storetest.NewCluster(t, 1)
	tenancytest.Register(t, c.Nodes[0], "acme")
	rcpt, ids := newSealIdentity(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seal := []age.Recipient{rcpt}
	if err := keyring.NewTestHierarchy(c.Nodes[0], keyring.HierarchyOptions{Seal: seal, Identities: ids}).Provision(ctx, extOp, "acme", keyring.ProviderSpec{}); err != nil {
		t.Fatal(err)
	}
	stranger, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range []struct {
		name  string
		ids   []age.Identity
		cause error
	}{
		{"sealed", nil, keyring.ErrSealed},
		{"another seal identity", []age.Identity{stranger}, keyring.ErrRootUnavailable},
	} {
		h := keyring.NewTestHierarchy(c.Nodes[0], keyring.HierarchyOptions{Seal: seal, Identities: node.ids})
		for op, call := range map[string]func() error{
			"DataKey":        func() error { _, err := h.DataKey(ctx, "acme", "guest-1"); return err },
			"tenant DataKey": func() error { _, err := h.DataKey(ctx, "acme", ""); return err },
			"AuditKey":       func() error { _, err := h.AuditKey(ctx, "acme"); return err },
			"IndexKey":       func() error { _, err := h.IndexKey(ctx, "acme"); return err },
			"ShredOps":       func() error { _, err := h.ShredOps(ctx, extOp, "acme", "guest-1"); return err },
			"Shred":          func() error { return h.Shred(ctx, extOp, "acme", "guest-1") },
			"Rotate":         func() error { _, err := h.Rotate(ctx, extOp, "acme"); return err },
			"Rewrap":         func() error { _, err := h.Rewrap(ctx, "acme", 10); return err },
			"ChangeProvider": func() error { return h.ChangeProvider(ctx, extOp, "acme", keyring.ProviderSpec{}) },
		} {
			err := call()
			var ue *keyring.UnavailableError
			if !errors.As(err, &ue) || ue.Tenant != "acme" || !errors.Is(err, node.cause) {
				t.Errorf("%s: %s = %v, want an UnavailableError of acme that is %v", node.name, op, err, node.cause)
			}
		}
	}
	// What needs no key still works on a sealed node.
	sealed := keyring.NewTestHierarchy(c.Nodes[0], keyring.HierarchyOptions{Seal: seal})
	if _, err := sealed.Status(ctx, "acme"); err != nil {
		t.Errorf("status on a sealed node: %v", err)
	}
	if _, err := sealed.DataKey(ctx, "globex", ""); !errors.Is(err, keyring.ErrNoKeys) {
		t.Errorf("unprovisioned tenant on a sealed node: %v, want ErrNoKeys", err)
	}
}

// newSealIdentity makes a seal identity file as `operator init` does and
// loads it back: the recipient new roots are sealed to, and the identities
// that unseal them.
func newSealIdentity(t *testing.T) (age.Recipient, []age.Identity) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seal.age")
	rcpt, err := keyring.NewSealIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := keyring.LoadSealIdentities(path)
	if err != nil {
		t.Fatal(err)
	}
	return rcpt, ids
}

// TestClusterKey: the cluster's data key is created once, sealed to the
// seal recipients, and every unsealed node opens the same one (a value
// sealed on one node opens on another; the derived keys agree); a sealed
// node cannot have it, and it is no tenant's key.
func TestClusterKey(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	tenancytest.Register(t, c.Nodes[0], "acme")
	ctx := context.Background()
	id, _ := age.GenerateX25519Identity()
	seal, ids := []age.Recipient{id.Recipient()}, []age.Identity{id}
	a := keyring.NewTestHierarchy(c.Nodes[0], keyring.HierarchyOptions{Seal: seal, Identities: ids, Cache: keyring.NewCache(time.Minute, 10, nil)})
	b := keyring.NewTestHierarchy(c.Nodes[1], keyring.HierarchyOptions{Seal: seal, Identities: ids, Cache: keyring.NewCache(time.Minute, 10, nil)})
	ka, err := a.ClusterKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	place := keyring.Place{Collection: "users", RecordID: "op_1", Field: "username"}
	ct, err := keyring.Seal(ka, place, []byte("ada"))
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.ClusterKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := keyring.Open(kb, place, ct); err != nil || string(pt) != "ada" {
		t.Fatalf("another node's cluster key: %q %v", pt, err)
	}
	ia, _ := a.ClusterIndexKey(ctx)
	ib, _ := b.ClusterIndexKey(ctx)
	aa, _ := a.ClusterAuditKey(ctx)
	if len(ia) != 32 || !bytes.Equal(ia, ib) || bytes.Equal(ia, aa) {
		t.Fatal("derived cluster keys disagree across nodes or coincide")
	}
	if err := a.Provision(ctx, extOp, "acme", keyring.ProviderSpec{}); err != nil {
		t.Fatal(err)
	}
	tk, err := a.DataKey(ctx, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Open(tk, place, ct); !errors.Is(err, keyring.ErrOpen) {
		t.Fatalf("a tenant's key opened the cluster's data: %v", err)
	}
	sealed := keyring.NewTestHierarchy(c.Nodes[2], keyring.HierarchyOptions{Seal: seal, Cache: keyring.NewCache(time.Minute, 10, nil)})
	var ue *keyring.UnavailableError
	if _, err := sealed.ClusterKey(ctx); !errors.As(err, &ue) || !errors.Is(err, keyring.ErrSealed) {
		t.Fatalf("sealed node: %v", err)
	}
	if _, err := sealed.ClusterIndexKey(ctx); !errors.Is(err, keyring.ErrSealed) {
		t.Fatalf("sealed node's index key: %v", err)
	}
}
