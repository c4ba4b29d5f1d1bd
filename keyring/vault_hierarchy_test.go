//go:build vault

// Tenants whose roots live in a real Vault (bin/vault), through the
// Hierarchy: acceptance 3 (revocation fails closed and recovers; Vault
// down leaves other tenants working) and 4 (two tenants on two Vault keys
// cannot open each other's keys), rotation that follows the transit key,
// trimming, and provider changes.
package keyring

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

type vaultEnv struct {
	v     *devVault
	store *raftstore.Store
	id    *age.X25519Identity
	h     *Hierarchy
}

func newVaultEnv(t *testing.T, ttl time.Duration) *vaultEnv {
	t.Helper()
	v := startVault(t)
	c := storetest.NewCluster(t, 1)
	tenancytest.Register(t, c.Nodes[0], "acme", "acme2", "globex", "local")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	e := &vaultEnv{v: v, store: c.Nodes[0], id: id}
	e.h = e.hierarchy(ttl)
	return e
}

// hierarchy is a fresh node view: its own (cold) cache.
func (e *vaultEnv) hierarchy(ttl time.Duration) *Hierarchy {
	return NewTestHierarchy(e.store, HierarchyOptions{
		Seal: []age.Recipient{e.id.Recipient()}, Identities: []age.Identity{e.id},
		Cache: NewCache(ttl, 1000, nil), VaultTimeout: 2 * time.Second,
	})
}

// unavailableFor checks that err, from a Hierarchy operation, is the
// *UnavailableError of tenant (what the API maps to key-unavailable).
func unavailableFor(t *testing.T, err error, tenant string) {
	t.Helper()
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.Tenant != tenant {
		t.Fatalf("err = %v, want an UnavailableError of tenant %s", err, tenant)
	}
}

func vaultSpec(addr, key, token string) ProviderSpec {
	return ProviderSpec{Kind: ProviderVault, Vault: &VaultSpec{Address: addr, Mount: "transit", Key: key, Token: token}}
}

// sealAndOpen seals a value with the subject's key and checks it opens.
func sealFor(t *testing.T, h *Hierarchy, tenant, subject, value string) []byte {
	t.Helper()
	k, err := h.DataKey(context.Background(), tenant, subject)
	if err != nil {
		t.Fatalf("data key %s/%s: %v", tenant, subject, err)
	}
	ct, err := Seal(k, Place{Tenant: tenant, RecordID: subject, Field: "f"}, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func opens(t *testing.T, h *Hierarchy, tenant, subject string, ct []byte, want string) {
	t.Helper()
	k, err := h.DataKey(context.Background(), tenant, subject)
	if err != nil {
		t.Fatalf("data key %s/%s: %v", tenant, subject, err)
	}
	pt, err := Open(k, Place{Tenant: tenant, RecordID: subject, Field: "f"}, ct)
	if err != nil || string(pt) != want {
		t.Fatalf("open %s/%s: %q %v", tenant, subject, pt, err)
	}
}

func TestVaultTenantRevocationAndOutage(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	e := newVaultEnv(t, ttl)
	ctx := context.Background()
	acmeToken := e.v.Token(t, "acme-key")
	if err := e.h.Provision(ctx, opCaller, "acme", vaultSpec(e.v.Addr, "acme-key", acmeToken)); err != nil {
		t.Fatal(err)
	}
	if err := e.h.Provision(ctx, opCaller, "local", ProviderSpec{}); err != nil {
		t.Fatal(err)
	}
	st, err := e.h.Status(ctx, "acme")
	if err != nil || st.Provider.Kind != ProviderVault || !st.Provider.Vault.Derived || len(st.TransitVersions) != 1 {
		t.Fatalf("status: %+v %v", st, err)
	}
	ct := sealFor(t, e.h, "acme", "guest-1", "acme guest")
	localCT := sealFor(t, e.h, "local", "guest-1", "local guest")
	opens(t, e.h, "acme", "guest-1", ct, "acme guest")

	// The credentials are stored, but only encrypted.
	if err := e.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.Scan(tenancytest.Path("acme", "keys"), nil, 0, func(k, v []byte, _ uint64) bool {
			if strings.Contains(string(v), acmeToken) {
				t.Errorf("record %s holds the Vault token in the clear", k)
			}
			return true
		})
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Revoke the token's policy: within the TTL the cached key still
	// works; after it, reads fail closed naming the tenant, while the age
	// tenant works on.
	e.v.Deny(t, "acme-key")
	time.Sleep(ttl + 100*time.Millisecond)
	_, err = e.h.DataKey(ctx, "acme", "guest-1")
	failsClosed(t, err, "acme", "refused", acmeToken)
	unavailableFor(t, err, "acme")
	opens(t, e.h, "local", "guest-1", localCT, "local guest")
	// Re-enable: service resumes, the old data opens.
	e.v.Policy(t, "acme-key")
	opens(t, e.h, "acme", "guest-1", ct, "acme guest")

	// A purge drops the keys at once, without waiting for the TTL.
	long := e.hierarchy(time.Hour)
	opens(t, long, "acme", "guest-1", ct, "acme guest")
	e.v.Revoke(t, acmeToken)
	opens(t, long, "acme", "guest-1", ct, "acme guest") // cached: no Vault call
	if _, err := long.PurgeCache(ctx, opCaller, "acme"); err != nil {
		t.Fatal(err)
	}
	_, err = long.DataKey(ctx, "acme", "guest-1")
	failsClosed(t, err, "acme", "refused", acmeToken)
	unavailableFor(t, err, "acme")

	// A provider change needs the current root to unwrap the KEKs: with
	// the token revoked it fails closed too, and changes nothing.
	newToken := e.v.Token(t, "acme-key")
	if err := long.ChangeProvider(ctx, opCaller, "acme", vaultSpec(e.v.Addr, "acme-key", newToken)); !errors.Is(err, ErrRootUnavailable) {
		t.Fatalf("provider change with a revoked root: %v", err)
	} else {
		unavailableFor(t, err, "acme")
	}
	// A second Vault tenant with a valid token, for the outage below.
	if err := long.Provision(ctx, opCaller, "acme2", vaultSpec(e.v.Addr, "acme-key", newToken)); err != nil {
		t.Fatal(err)
	}
	sealFor(t, long, "acme2", "guest-1", "acme2 guest")

	// Vault stopped: Vault tenants fail closed, the age tenant works.
	e.v.Kill()
	if _, err := long.PurgeCache(ctx, opCaller, "acme2"); err != nil {
		t.Fatal(err)
	}
	_, err = long.DataKey(ctx, "acme2", "guest-1")
	failsClosed(t, err, "acme2", "unreachable", newToken)
	unavailableFor(t, err, "acme2")
	cold := e.hierarchy(ttl)
	opens(t, cold, "local", "guest-1", localCT, "local guest")
}

// Acceptance 4: with the state (all key records) and the seal identity in
// hand, one tenant's Vault key and credentials open nothing of another's.
func TestVaultTenantsIsolated(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Minute)
	ctx := context.Background()
	acmeToken := e.v.Token(t, "acme-key")
	if err := e.h.Provision(ctx, opCaller, "acme", vaultSpec(e.v.Addr, "acme-key", acmeToken)); err != nil {
		t.Fatal(err)
	}
	e.v.EnableAppRole(t, "approle")
	roleID, secretID := e.v.AppRole(t, "approle", "globex-key", 0)
	globexSpec := ProviderSpec{Kind: ProviderVault, Vault: &VaultSpec{Address: e.v.Addr, Mount: "transit", Key: "globex-key", AuthMethod: VaultAuthAppRole, RoleID: roleID, SecretID: secretID}}
	if err := e.h.Provision(ctx, opCaller, "globex", globexSpec); err != nil {
		t.Fatal(err)
	}
	acmeCT := sealFor(t, e.h, "acme", "guest-1", "acme secret")
	globexCT := sealFor(t, e.h, "globex", "guest-1", "globex secret")

	// Direct access to the file: every key record of both tenants.
	records := func(tenant string) map[string][]byte {
		m := map[string][]byte{}
		if err := e.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
			r.Scan(tenancytest.Path(tenant, "keys"), nil, 0, func(k, v []byte, _ uint64) bool {
				m[string(k)] = v
				return true
			})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	acme, globex := records("acme"), records("globex")

	// acme's root (its key, its token) cannot unwrap globex's KEK, neither
	// as globex nor as acme.
	acmeRoot, err := e.h.root(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, as := range []string{"globex", "acme"} {
		if _, err := acmeRoot.UnwrapKEK(ctx, as, globex["kek/1"]); err == nil {
			t.Fatalf("acme's root unwrapped globex's KEK as %s", as)
		}
	}
	// acme's token cannot use globex's key at all.
	stolen := newVaultRoot(t, VaultConfig{Address: e.v.Addr, Mount: "transit", Key: "globex-key", Derived: true, Token: acmeToken})
	_, err = stolen.UnwrapKEK(ctx, "globex", globex["kek/1"])
	failsClosed(t, err, "globex", "refused", acmeToken)
	// Grafting globex's KEK and data key into acme's records opens nothing.
	if _, err := e.store.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{
		rawPut(tenancytest.Path("acme", "keys"), "kek/1", globex["kek/1"]),
		rawPut(tenancytest.Path("acme", "keys"), "dek/guest-1", globex["dek/guest-1"]),
	}}); err != nil {
		t.Fatal(err)
	}
	cold := e.hierarchy(time.Minute)
	if k, err := cold.DataKey(ctx, "acme", "guest-1"); err == nil {
		if _, err := Open(k, Place{Tenant: "globex", RecordID: "guest-1", Field: "f"}, globexCT); err == nil {
			t.Fatal("globex's data opened through acme")
		}
	} else if !errors.Is(err, ErrOpen) {
		t.Fatalf("grafted KEK: %v, want ErrOpen", err)
	} else {
		unavailableFor(t, err, "acme")
	}
	// Restore acme's records: its own data opens again, globex's still does.
	if _, err := e.store.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{
		rawPut(tenancytest.Path("acme", "keys"), "kek/1", acme["kek/1"]),
		rawPut(tenancytest.Path("acme", "keys"), "dek/guest-1", acme["dek/guest-1"]),
	}}); err != nil {
		t.Fatal(err)
	}
	cold = e.hierarchy(time.Minute)
	opens(t, cold, "acme", "guest-1", acmeCT, "acme secret")
	opens(t, cold, "globex", "guest-1", globexCT, "globex secret")
}

// Rotation of a Vault tenant rotates the transit key, rewraps the stored
// KEKs to the new version, and the janitor trims the superseded version
// once the retention has passed; data opens throughout.
func TestVaultTenantRotateAndTrim(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Minute)
	ctx := context.Background()
	tok := e.v.Token(t, "acme-key")
	if err := e.h.Provision(ctx, opCaller, "acme", vaultSpec(e.v.Addr, "acme-key", tok)); err != nil {
		t.Fatal(err)
	}
	ct := sealFor(t, e.h, "acme", "guest-1", "before rotation")
	v, err := e.h.Rotate(ctx, opCaller, "acme")
	if err != nil || v != 2 {
		t.Fatalf("rotate: %d %v", v, err)
	}
	st, _ := e.h.Status(ctx, "acme")
	if len(st.TransitVersions) != 2 || st.TransitVersions[0] != 2 || st.TransitVersions[1] != 2 || st.VaultRotatedAt == nil {
		t.Fatalf("after rotate: %+v", st)
	}
	root, err := e.h.root(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	info, err := root.(*VaultRoot).KeyInfo(ctx)
	if err != nil || info.LatestVersion != 2 || info.MinAvailableVersion > 1 {
		t.Fatalf("transit key after rotate: %+v %v", info, err)
	}
	// The janitor (as leader) finishes the rewrap and, with a retention of
	// a millisecond, trims transit version 1.
	j := NewJanitor(e.h, JanitorConfig{IsLeader: func() bool { return true }, TrimAfter: time.Millisecond, TrimEvery: time.Millisecond})
	time.Sleep(5 * time.Millisecond)
	if err := j.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if info, err = root.(*VaultRoot).KeyInfo(ctx); err != nil || info.MinAvailableVersion != 2 || info.MinDecryptionVersion != 2 {
		t.Fatalf("transit key after trim: %+v %v", info, err)
	}
	if st, _ = e.h.Status(ctx, "acme"); st.Pending != 0 || st.Rewrapping {
		t.Fatalf("rewrap not finished: %+v", st)
	}
	cold := e.hierarchy(time.Minute)
	opens(t, cold, "acme", "guest-1", ct, "before rotation")
	found := false
	if err := e.store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		seq, _ := r.ChainHead(tenancytest.Chain("acme"))
		for i := uint64(1); i <= seq; i++ {
			data, _, _ := r.ChainEntry(tenancytest.Chain("acme"), i)
			found = found || strings.Contains(string(data), `"key.trim"`)
		}
		return nil
	}); err != nil || !found {
		t.Fatalf("no key.trim in the tenant's chain (%v)", err)
	}
}

// Provider change: an age tenant moves to Vault; its data keys and data
// stay, its KEKs are rewrapped by the transit key.
func TestVaultProviderChange(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Minute)
	ctx := context.Background()
	if err := e.h.Provision(ctx, opCaller, "acme", ProviderSpec{}); err != nil {
		t.Fatal(err)
	}
	ct := sealFor(t, e.h, "acme", "guest-1", "moved")
	tok := e.v.Token(t, "acme-key")
	if err := e.h.ChangeProvider(ctx, opCaller, "acme", vaultSpec(e.v.Addr, "acme-key", tok)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.h.Status(ctx, "acme")
	if st.Provider.Kind != ProviderVault || len(st.TransitVersions) != 1 {
		t.Fatalf("after change: %+v", st)
	}
	cold := e.hierarchy(time.Minute)
	opens(t, cold, "acme", "guest-1", ct, "moved")
	// The age root is gone from the records.
	if _, err := e.h.read(ctx, "acme", "root"); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("age root still stored: %v", err)
	}
}

// With the data-key cache warm, 1,000 writes to one subject cost at most
// one Vault round trip (the bound); the count is Vault requests
// actually sent.
func TestVaultRoundTripsPerThousandWrites(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t, time.Minute)
	ctx := context.Background()
	if err := e.h.Provision(ctx, opCaller, "acme", vaultSpec(e.v.Addr, "acme-key", e.v.Token(t, "acme-key"))); err != nil {
		t.Fatal(err)
	}
	cold := e.hierarchy(time.Minute) // a node that has not touched acme yet
	root, err := cold.root(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	vr := root.(*VaultRoot)
	for i := 0; i < 1000; i++ {
		sealFor(t, cold, "acme", "guest-7", "value")
	}
	if n := vr.Calls(); n > 1 {
		t.Fatalf("%d Vault round trips for 1,000 writes to one subject, want <= 1", n)
	}
	t.Logf("Vault round trips for 1,000 writes to one subject (cold start): %d", vr.Calls())
}

// BenchmarkVaultUnwrapKEK is the cost of one Vault call (transit decrypt
// of a KEK) on loopback: what the cache keeps off the data path.
func BenchmarkVaultUnwrapKEK(b *testing.B) {
	v := startVault(b)
	r := newVaultRoot(b, VaultConfig{Address: v.Addr, Mount: "transit", Key: "acme-key", Derived: true, Token: "root"})
	kek, err := NewKey(1)
	if err != nil {
		b.Fatal(err)
	}
	w, err := r.WrapKEK(context.Background(), "acme", kek)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.UnwrapKEK(context.Background(), "acme", w); err != nil {
			b.Fatal(err)
		}
	}
}

// A Vault tenant over TLS: the CA given at creation (PEM, stored with the
// provider) is what every node trusts; without it the creation fails
// closed.
func TestVaultTenantTLS(t *testing.T) {
	t.Parallel()
	v := startVaultTLS(t)
	c := storetest.NewCluster(t, 1)
	tenancytest.Register(t, c.Nodes[0], "acme")
	id, _ := age.GenerateX25519Identity()
	e := &vaultEnv{v: v, store: c.Nodes[0], id: id}
	e.h = e.hierarchy(time.Minute)
	ctx := context.Background()
	spec := vaultSpec(v.Addr, "acme-key", v.Token(t, "acme-key"))
	if err := e.h.Provision(ctx, opCaller, "acme", spec); !errors.Is(err, ErrRootUnavailable) {
		t.Fatalf("creation without the CA: %v, want ErrRootUnavailable", err)
	} else {
		unavailableFor(t, err, "acme")
	}
	spec.Vault.CACertPEM = string(v.CAPEM)
	if err := e.h.Provision(ctx, opCaller, "acme", spec); err != nil {
		t.Fatal(err)
	}
	ct := sealFor(t, e.h, "acme", "guest-1", "over tls")
	opens(t, e.hierarchy(time.Minute), "acme", "guest-1", ct, "over tls")
}
