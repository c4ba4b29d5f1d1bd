package raftstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit"
)

// testCluster is an in-process cluster on loopback with real TLS and fast
// raft timeouts. It is raftstore's own copy of what
// internal/testkit/storetest does for every other package: these white-box
// tests (package raftstore) cannot import a package that imports raftstore,
// and they need what storetest cannot give — the unexported link faults
// (partition), the FSM's counters and a config with unexported hooks.
// Waiting goes through internal/testkit, which imports nothing of raftstore.
type testCluster struct {
	t      testing.TB
	token  string
	creds  *Credentials
	nodes  []*Store
	region string
	tweak  func(*Config)
}

func fastConfig(t testing.TB, id, region string, creds *Credentials) Config {
	return Config{
		NodeID: id, Region: region, DataDir: filepath.Join(t.TempDir(), id),
		ListenAddress: "127.0.0.1:0", Credentials: creds,
		// Short enough for quick elections, long enough that a -race run on
		// two busy cores does not see spurious ones.
		HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond, ApplyTimeout: 3 * time.Second,
		RaftLogOutput: io.Discard,
		Fatal:         func(err error) { t.Errorf("fatal: %v", err); select {} },
	}
}

func newTestCluster(t testing.TB, n int) *testCluster { return newTestClusterWith(t, n, nil) }

func newTestClusterWith(t testing.TB, n int, tweak func(*Config)) *testCluster {
	t.Helper()
	creds, err := NewClusterCredentials("n1")
	if err != nil {
		t.Fatal(err)
	}
	token, err := NewJoinToken(creds)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, token: token, creds: creds, region: "eu-west-1", tweak: tweak}
	cfg := fastConfig(t, "n1", c.region, creds)
	cfg.Bootstrap = true
	c.start(cfg)
	c.waitLeader()
	for i := 2; i <= n; i++ {
		if _, err := c.join(fmt.Sprintf("n%d", i), c.region); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *testCluster) authorize(_ context.Context, tok string) error {
	if !TokenMatches(tok, TokenHash(c.token)) {
		return errors.New("bad token")
	}
	return nil
}

func (c *testCluster) start(cfg Config) *Store {
	c.t.Helper()
	cfg.AuthorizeJoin = c.authorize
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { s.Close() })
	c.nodes = append(c.nodes, s)
	return s
}

func (c *testCluster) join(id, region string) (*Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := FetchCredentials(ctx, c.nodes[0].Address(), c.token, id, region)
	if err != nil {
		return nil, err
	}
	s := c.start(fastConfig(c.t, id, region, creds))
	if err := s.Join(ctx, []string{c.nodes[0].Address()}); err != nil {
		return nil, err
	}
	return s, nil
}

func (c *testCluster) waitLeader() *Store {
	c.t.Helper()
	var leader *Store
	testkit.Eventually(c.t, "a leader", func() bool {
		for _, n := range c.nodes {
			if n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

func (c *testCluster) follower() *Store {
	leader := c.waitLeader()
	for _, n := range c.nodes {
		if n != leader {
			return n
		}
	}
	c.t.Fatal("no follower")
	return nil
}

func staleGet(s *Store, bucket, key string) (string, bool) {
	var v []byte
	var ok bool
	_ = s.View(context.Background(), Stale, func(r *ReadTx) error { v, _, ok = r.Get(Path(bucket), []byte(key)); return nil })
	return string(v), ok
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClusterFollowerWritesReplicate(t *testing.T) {
	c := newTestCluster(t, 3)
	f := c.follower()
	res, err := f.Apply(ctxT(t), &Txn{
		Ops:     []Op{{Kind: OpPut, Bucket: Path("b"), Key: []byte("k"), Value: []byte("from follower")}},
		Appends: []Append{{Chain: []byte("c"), Data: []byte("e1")}},
	})
	if err != nil || !res.Applied {
		t.Fatalf("apply via follower: %+v %v", res, err)
	}
	if res.Chains[0].Seq != 1 {
		t.Fatalf("chain seq %d", res.Chains[0].Seq)
	}
	for _, n := range c.nodes {
		testkit.Eventually(t, "replication to "+n.NodeID(), func() bool { v, ok := staleGet(n, "b", "k"); return ok && v == "from follower" })
	}
	// Conditions are evaluated on the leader's state, also when forwarded.
	res, err = f.Apply(ctxT(t), &Txn{Conds: []Cond{{Kind: CondAbsent, Bucket: Path("b"), Key: []byte("k")}},
		Ops: []Op{{Kind: OpPut, Bucket: Path("b"), Key: []byte("k"), Value: []byte("overwrite")}}})
	if err != nil || res.Applied || res.FailedCond != 0 {
		t.Fatalf("conditional write: %+v %v", res, err)
	}
}

func TestClusterLinearizableReadAfterWrite(t *testing.T) {
	c := newTestCluster(t, 3)
	for i := 0; i < 30; i++ {
		writer := c.nodes[i%3]
		reader := c.nodes[(i+1)%3]
		val := fmt.Sprintf("v%d", i)
		if _, err := writer.Apply(ctxT(t), put("b", "k", val)); err != nil {
			t.Fatal(err)
		}
		var got []byte
		err := reader.View(ctxT(t), Linearizable, func(r *ReadTx) error { got, _, _ = r.Get(Path("b"), []byte("k")); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != val {
			t.Fatalf("read on %s after write on %s: %q, want %q", reader.NodeID(), writer.NodeID(), got, val)
		}
	}
}

func TestClusterConcurrentWritesGroupCommit(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader()
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w := 0; w < 40; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				_, err := c.nodes[w%3].Apply(ctxT(t), &Txn{
					Ops:     []Op{{Kind: OpPut, Bucket: Path("load"), Key: []byte(fmt.Sprintf("%d-%d", w, i)), Value: []byte("x")}},
					Appends: []Append{{Chain: []byte("audit"), Data: []byte(fmt.Sprintf("%d-%d", w, i))}},
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d via %s: %w", w, c.nodes[w%3].NodeID(), err)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var n int
	var seq uint64
	_ = leader.View(ctxT(t), Linearizable, func(r *ReadTx) error {
		n = r.Count(Path("load"))
		seq, _ = r.ChainHead([]byte("audit"))
		return nil
	})
	if n != 400 || seq != 400 {
		t.Fatalf("keys %d chain %d, want 400 400", n, seq)
	}
	st := leader.Status()
	if st.Stats.LogEntries == 0 || st.Stats.LogBatches == 0 {
		t.Fatalf("no log stats: %+v", st.Stats)
	}
	t.Logf("leader stats: %+v", st.Stats)
}

func TestClusterRemovedPeerStopsReceiving(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader()
	victim := c.follower()
	if err := c.nodes[0].RemovePeer(ctxT(t), victim.NodeID()); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := leader.RemovePeer(ctxT(t), victim.NodeID()); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	peers, _ := leader.Peers(ctxT(t))
	if len(peers) != 2 {
		t.Fatalf("peers after remove: %+v", peers)
	}
	before := victim.fsm.AppliedIndex()
	for i := 0; i < 20; i++ {
		if _, err := leader.Apply(ctxT(t), put("after", fmt.Sprint(i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.nodes {
		if n != victim {
			testkit.Eventually(t, "remaining node has the writes", func() bool { _, ok := staleGet(n, "after", "19"); return ok })
		}
	}
	if _, ok := staleGet(victim, "after", "0"); ok {
		t.Fatal("removed peer received an entry written after its removal")
	}
	if victim.fsm.AppliedIndex() > before+1 {
		t.Fatalf("removed peer applied %d -> %d", before, victim.fsm.AppliedIndex())
	}
}

func TestClusterRefusesOtherRegion(t *testing.T) {
	c := newTestCluster(t, 1)
	_, err := c.join("intruder", "us-east-1")
	if !errors.Is(err, ErrRegionMismatch) {
		t.Fatalf("join from another region: %v, want ErrRegionMismatch", err)
	}
	if got := err.Error(); !strings.Contains(got, "eu-west-1") || !strings.Contains(got, "us-east-1") {
		t.Fatalf("error does not name both regions: %q", got)
	}
	// A bad token is refused too.
	ctx := ctxT(t)
	bad := c.token[:len(c.token)-4] + "AAAA"
	if _, err := FetchCredentials(ctx, c.nodes[0].Address(), bad, "n9", c.region); !errors.Is(err, ErrJoinRefused) {
		t.Fatalf("bad token: %v", err)
	}
	peers, _ := c.nodes[0].Peers(ctx)
	if len(peers) != 1 {
		t.Fatalf("peers: %+v", peers)
	}
}

// A node cut off from the majority answers writes and linearizable reads
// with an error within the bound, instead of hanging.
func TestClusterMinorityAnswersPromptly(t *testing.T) {
	c := newTestCluster(t, 3)
	if _, err := c.nodes[0].Apply(ctxT(t), put("b", "k", "v")); err != nil {
		t.Fatal(err)
	}
	for _, cutLeader := range []bool{false, true} {
		t.Run(fmt.Sprintf("leader=%v", cutLeader), func(t *testing.T) {
			leader := c.waitLeader()
			var iso *Store
			if cutLeader {
				iso = leader
			} else {
				iso = c.follower()
			}
			c.partition(iso)
			defer c.heal()
			for _, op := range []string{"write", "read"} {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				start := time.Now()
				var err error
				if op == "write" {
					_, err = iso.Apply(ctx, put("b", "p", "x"))
				} else {
					err = iso.View(ctx, Linearizable, func(*ReadTx) error { return nil })
				}
				cancel()
				if !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrNotLeader) {
					t.Fatalf("%s on isolated node: %v, want unavailable", op, err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("%s took %v", op, d)
				}
			}
			// The majority side keeps working.
			testkit.Eventually(t, "majority leader", func() bool {
				for _, n := range c.nodes {
					if n != iso && n.IsLeader() {
						return true
					}
				}
				return false
			})
		})
	}
}

// partition cuts every link between iso and the other nodes.
func (c *testCluster) partition(iso *Store) {
	var addrs, ids []string
	for _, n := range c.nodes {
		if n != iso {
			addrs = append(addrs, n.Address())
			ids = append(ids, n.NodeID())
			n.faults.set([]string{iso.Address()}, []string{iso.NodeID()})
			n.pool.closeAll()
		}
	}
	iso.faults.set(addrs, ids)
	iso.pool.closeAll()
}

func (c *testCluster) heal() {
	for _, n := range c.nodes {
		n.faults.set(nil, nil)
	}
}

// A node that was down while the others snapshotted and truncated their
// logs catches up through a snapshot install (FSM.Restore) and then serves
// the same state.
func TestClusterLaggingNodeCatchesUpFromSnapshot(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 16, 4, 50*time.Millisecond
	})
	leader := c.waitLeader()
	lag := c.follower()
	cfg := lag.cfg
	cfg.ListenAddress = cfg.AdvertiseAddress // come back on the same address
	if err := lag.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := leader.Apply(ctxT(t), &Txn{
			Ops:     []Op{{Kind: OpPut, Bucket: Path("b"), Key: []byte(fmt.Sprint(i)), Value: []byte("v")}},
			Appends: []Append{{Chain: []byte("c"), Data: []byte(fmt.Sprint(i))}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, "a snapshot on the leader", func() bool {
		f := leader.raft.Snapshot() // also forces one if the interval has not come yet
		_ = f.Error()
		first, _ := leader.logs.FirstIndex()
		return first > lag.fsm.AppliedIndex()+1
	})
	back, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	testkit.Eventually(t, "catch-up", func() bool { _, ok := staleGet(back, "b", "199"); return ok })
	var seq uint64
	var n int
	_ = back.View(ctxT(t), Linearizable, func(r *ReadTx) error {
		n = r.Count(Path("b"))
		seq, _ = r.ChainHead([]byte("c"))
		return nil
	})
	if back.fsm.restores.Load() == 0 {
		t.Fatal("the node caught up without installing a snapshot")
	}
	if n != 200 || seq != 200 {
		t.Fatalf("after snapshot catch-up: %d keys, chain at %d; want 200, 200", n, seq)
	}
	var a, b bytes.Buffer
	_ = leader.fsm.dump(&a)
	_ = back.fsm.dump(&b)
	if stripMeta(a.String()) != stripMeta(b.String()) {
		t.Fatal("caught-up node's state differs from the leader's")
	}
}

// stripMeta drops the applied index/term lines, which legitimately differ
// between nodes (no-op entries after the last write).
func stripMeta(dump string) string {
	var out []string
	for _, l := range strings.Split(dump, "\n") {
		if !strings.HasPrefix(l, `"\x00meta"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestClusterLeadershipTransferAndIdempotentJoin(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader()
	target := c.follower()
	// Asked through a follower, forwarded to the leader.
	if err := target.TransferLeadership(ctxT(t), target.NodeID()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "new leader", target.IsLeader)
	if leader.IsLeader() {
		t.Fatal("old leader still leads")
	}
	if err := target.TransferLeadership(ctxT(t), "nobody"); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("transfer to unknown peer: %v", err)
	}
	// Joining again is a no-op.
	for _, n := range c.nodes {
		if err := n.Join(ctxT(t), []string{target.Address()}); err != nil {
			t.Fatalf("re-join %s: %v", n.NodeID(), err)
		}
	}
	peers, _ := target.Peers(ctxT(t))
	if len(peers) != 3 {
		t.Fatalf("peers after re-join: %+v", peers)
	}
}
