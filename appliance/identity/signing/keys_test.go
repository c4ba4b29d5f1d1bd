package signing

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/identity/token"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

const testIssuer = "custos/eu-west-1"

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// clock is a fake clock shared by the nodes of a test.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(t0.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// sealIdentity makes a seal identity and records its recipient in the
// cluster, as `operator init` does.
func sealIdentity(t testing.TB, ctx context.Context, leader *raftstore.Store) []age.Identity {
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
	ops, err := keyring.BootstrapOps([]string{rcpt.String()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Apply(ctx, &raftstore.Txn{Ops: ops}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func open(t *testing.T, ctx context.Context, s *raftstore.Store, ids []age.Identity, c *clock) *Keys {
	t.Helper()
	k, err := Open(ctx, tenancy.New(s), Options{Issuer: testIssuer, Identities: ids, IsLeader: s.IsLeader, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func claims() token.Claims {
	return token.Claims{Subject: "u_alice", Tenant: "acme", Kind: token.KindUser, Role: "manager", Session: "fam1"}
}

// A set made on first need by several nodes at once is one set; a token
// issued on one node verifies on the others; after a rotation the new key
// signs, its tokens verify everywhere at once (an unknown key id makes a
// node reload), and the old key's tokens verify until they expire; the
// leader's maintenance drops the old key once it has retired; a sealed
// node verifies and cannot issue; no private key byte is in any file of
// any node in the clear.
func TestClusterKeys(t *testing.T) {
	c := storetest.NewCluster(t, 3)
	ctx := ctxOf(t)
	leader := c.Leader(t)
	ids := sealIdentity(t, ctx, leader)
	clk := newClock()
	var nodes []*Keys
	for i, s := range c.Nodes {
		if i == 2 {
			nodes = append(nodes, open(t, ctx, s, nil, clk)) // n3 is sealed
			continue
		}
		nodes = append(nodes, open(t, ctx, s, ids, clk))
	}

	// Concurrent first needs agree on one set.
	var wg sync.WaitGroup
	kids := make([]string, 2)
	for i := range 2 {
		wg.Go(func() {
			a, err := nodes[i].Authority(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = a.Keys().Current()
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if kids[0] != kids[1] {
		t.Fatalf("two nodes made two sets: %s and %s", kids[0], kids[1])
	}
	first := kids[0]

	tok, _, err := nodes[0].Issue(ctx, claims())
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		testkit.Poll(t, testkit.Timeout, fmt.Sprintf("n%d to verify n1's token", i+1), func() error {
			_, err := n.Verify(ctx, tok)
			return err
		})
	}
	// Every node verified it through its cache: it is there now.
	for i, n := range nodes {
		if n.cache.Len() != 1 {
			t.Fatalf("n%d holds %d verified tokens, want 1", i+1, n.cache.Len())
		}
	}
	// The sealed node verifies, and cannot issue.
	var ue *keyring.UnavailableError
	if _, _, err := nodes[2].Issue(ctx, claims()); !errors.As(err, &ue) || !errors.Is(err, keyring.ErrSealed) {
		t.Fatalf("a sealed node issued: %v", err)
	}
	if _, err := nodes[2].Rotate(ctx); !errors.Is(err, keyring.ErrSealed) {
		t.Fatalf("a sealed node rotated: %v", err)
	}

	// Rotation on n2: the new key signs there at once; n1 and n3 verify
	// its tokens without waiting for a poll.
	clk.Advance(time.Hour)
	oldTok, oldClaims, err := nodes[0].Issue(ctx, claims())
	if err != nil {
		t.Fatal(err)
	}
	kid, err := nodes[1].Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kid == first {
		t.Fatal("rotation kept the key")
	}
	newTok, _, err := nodes[1].Issue(ctx, claims())
	if err != nil {
		t.Fatal(err)
	}
	if got := kidOf(t, newTok); got != kid {
		t.Fatalf("after rotation n2 signs with %s, want %s", got, kid)
	}
	for i, n := range nodes {
		testkit.Poll(t, testkit.Timeout, fmt.Sprintf("n%d to verify the rotated key's token", i+1), func() error {
			_, err := n.Verify(ctx, newTok)
			return err
		})
		if _, err := n.Verify(ctx, oldTok); err != nil {
			t.Fatalf("n%d refuses the old key's token after the rotation: %v", i+1, err)
		}
	}
	// n1 learns of the rotation by polling too, and signs with the new key.
	var lm time.Time
	nodes[0].tick(ctx, &lm)
	if tok, _, _ := nodes[0].Issue(ctx, claims()); kidOf(t, tok) != kid {
		t.Fatal("n1 still signs with the old key after reloading")
	}

	// The old token verifies to its end, then expires; once the old key
	// has retired the leader's maintenance drops it.
	clk.Advance(oldClaims.ExpiresAt.Sub(clk.Now()) - time.Second)
	for i, n := range nodes {
		if _, err := n.Verify(ctx, oldTok); err != nil {
			t.Fatalf("n%d: old token a second before its expiry: %v", i+1, err)
		}
	}
	clk.Advance(token.Leeway + time.Second)
	for i, n := range nodes {
		if _, err := n.Verify(ctx, oldTok); !errors.Is(err, token.ErrExpired) {
			t.Fatalf("n%d: old token after its expiry: %v", i+1, err)
		}
	}
	clk.Advance(token.DefaultLifetime)
	lead := leaderKeys(t, c, nodes)
	if err := lead.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		testkit.Poll(t, testkit.Timeout, fmt.Sprintf("n%d to drop the retired key", i+1), func() error {
			n.tick(ctx, &time.Time{})
			a, err := n.Authority(ctx)
			if err != nil {
				return err
			}
			if ks := a.Keys().Keys(); len(ks) != 1 || ks[0].ID != kid {
				return fmt.Errorf("keys %v", ks)
			}
			return nil
		})
	}

	// No private key byte in the clear in any file of any node — state,
	// raft log, snapshots — while the public keys are (the scan sees).
	settleFiles(t, ctx, c, leader)
	a, _ := nodes[0].Authority(ctx)
	whole, err := a.Keys().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var enc struct {
		Keys []struct {
			Seed []byte `json:"seed"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(whole, &enc); err != nil {
		t.Fatal(err)
	}
	for _, k := range enc.Keys {
		for _, needle := range [][]byte{k.Seed, []byte(base64.StdEncoding.EncodeToString(k.Seed)), []byte(base64.RawURLEncoding.EncodeToString(k.Seed))} {
			if found := testkit.FilesHolding(t, needle, c.DataDirs...); len(found) > 0 {
				t.Fatalf("a private key in the clear in %v", found)
			}
		}
	}
	pub := base64.StdEncoding.EncodeToString(a.Keys().Keys()[0].Public)
	if found := testkit.FilesHolding(t, []byte(pub), c.DataDirs...); len(found) == 0 {
		t.Fatal("the scan does not see the public key stored in the clear: it would not see a private one either")
	}
}

// settleFiles writes enough through the cluster that every node has taken
// a snapshot holding the keys, so the scan covers snapshots as well as
// logs and state.
func settleFiles(t *testing.T, ctx context.Context, c *storetest.Cluster, leader *raftstore.Store) {
	t.Helper()
	for i := range 100 {
		if _, err := leader.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("filler"), Key: fmt.Append(nil, i), Value: []byte("x")}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range c.DataDirs {
		testkit.Eventually(t, "a snapshot on every node", func() bool {
			snaps := 0
			testkit.ScanFiles(t, func(p string, _ []byte) {
				if filepath.Base(p) == "state.bin" {
					snaps++
				}
			}, dir)
			return snaps > 0
		})
	}
}

func leaderKeys(t *testing.T, c *storetest.Cluster, nodes []*Keys) *Keys {
	t.Helper()
	l := c.Leader(t)
	for i, s := range c.Nodes {
		if s == l && !nodes[i].Sealed() {
			return nodes[i]
		}
	}
	// The sealed node leads: any unsealed node maintains as well (the
	// write is forwarded to the leader).
	return nodes[0]
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	var parts [3]string
	n := 0
	start := 0
	for i := 0; i < len(tok) && n < 2; i++ {
		if tok[i] == '.' {
			parts[n] = tok[start:i]
			n++
			start = i + 1
		}
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var head struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(h, &head); err != nil {
		t.Fatal(err)
	}
	return head.Kid
}

// A token of another cluster — its own keys, the same issuer — is refused;
// so is a set sealed to another cluster's identity.
func TestAnotherClustersKey(t *testing.T) {
	ctx := ctxOf(t)
	clk := newClock()
	sa, sb := storetest.Start(t), storetest.Start(t)
	a := open(t, ctx, sa, sealIdentity(t, ctx, sa), clk)
	b := open(t, ctx, sb, sealIdentity(t, ctx, sb), clk)
	tok, _, err := b.Issue(ctx, claims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(ctx, tok); !errors.Is(err, token.ErrUnknownKey) || !errors.Is(err, token.ErrInvalidToken) {
		t.Fatalf("another cluster's token: %v", err)
	}
	// A node of cluster a given b's seal identity by mistake cannot open
	// a's keys, and fails closed.
	wrong := sealIdentity(t, ctx, storetest.Start(t))
	if _, err := a.Authority(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, tenancy.New(sa), Options{Issuer: testIssuer, Identities: wrong, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var ue *keyring.UnavailableError
	if _, err := c.Verify(ctx, tok); !errors.As(err, &ue) || !errors.Is(err, keyring.ErrOpen) {
		t.Fatalf("verify with another cluster's seal identity: %v", err)
	}
	if _, _, err := c.Issue(ctx, claims()); !errors.As(err, &ue) || !errors.Is(err, keyring.ErrOpen) {
		t.Fatalf("issue with another cluster's seal identity: %v", err)
	}
}

// Maintenance on the leader: creates the set once, rotates when
// RotateEvery has passed (not before), applies a changed lifetime, and
// refuses to grow a set past MaxKeys by manual rotations.
func TestMaintenance(t *testing.T) {
	ctx := ctxOf(t)
	clk := newClock()
	s := storetest.Start(t)
	ids := sealIdentity(t, ctx, s)
	k := open(t, ctx, s, ids, clk)
	if err := k.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	a, _ := k.Authority(ctx)
	first := a.Keys().Current()
	if err := k.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := k.Authority(ctx); a.Keys().Current() != first {
		t.Fatal("maintenance rotated before RotateEvery")
	}
	clk.Advance(DefaultRotateEvery)
	if err := k.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	a, _ = k.Authority(ctx)
	if a.Keys().Current() == first || len(a.Keys().Keys()) != 2 {
		t.Fatalf("after RotateEvery: %+v", a.Keys().Keys())
	}
	// Another node configured with another lifetime changes the set's.
	k2, err := Open(ctx, tenancy.New(s), Options{Issuer: testIssuer, Identities: ids, Now: clk.Now, Lifetime: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := k2.maintain(ctx); err != nil {
		t.Fatal(err)
	}
	a2, _ := k2.Authority(ctx)
	if a2.Keys().Lifetime() != 30*time.Minute {
		t.Fatalf("lifetime %s", a2.Keys().Lifetime())
	}
	for range MaxKeys - 2 {
		if _, err := k.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.Rotate(ctx); !errors.Is(err, ErrTooManyKeys) {
		t.Fatalf("rotation past MaxKeys: %v", err)
	}
	// Once the old keys retire, rotation works again.
	clk.Advance(time.Hour)
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
}

// Run creates the set on the leader and stops with its context.
func TestRun(t *testing.T) {
	ctx := ctxOf(t)
	s := storetest.Start(t)
	ids := sealIdentity(t, ctx, s)
	k, err := Open(ctx, tenancy.New(s), Options{Issuer: testIssuer, Identities: ids, IsLeader: s.IsLeader, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { k.Run(rctx); close(done) }()
	testkit.Eventually(t, "Run to create the set", func() bool { return k.cur.Load() != nil })
	stop()
	<-done
}

func TestOpenOptions(t *testing.T) {
	ctx := ctxOf(t)
	b := tenancy.New(storetest.Start(t))
	for name, o := range map[string]Options{
		"no issuer":     {},
		"long lifetime": {Issuer: "x", Lifetime: 2 * time.Hour},
		"fast rotation": {Issuer: "x", RotateEvery: time.Minute},
	} {
		if _, err := Open(ctx, b, o); err == nil {
			t.Errorf("%s: Open accepted %+v", name, o)
		}
	}
	// A sealed node of a cluster without keys cannot make them.
	k, err := Open(ctx, b, Options{Issuer: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Authority(ctx); !errors.Is(err, keyring.ErrSealed) {
		t.Fatalf("a sealed node without a set: %v", err)
	}
}
