// Package storetest starts real raftstore nodes in process, on loopback
// with mutual TLS and their data in t.TempDir, for the tests of the
// packages built on raftstore. Tests run against the real store rather
// than a fake, so that conditions, versions, bucket deletion and chain
// appends behave exactly as in production; Raft's timeouts are shrunk so a
// node elects itself at once.
//
// Start gives one bootstrapped node (the appliance packages' tests);
// NewCluster gives n nodes joined the way operators join them (token,
// fetched certificate, Join). Everything started is closed when the test
// ends. raftstore's own tests cannot import this package (it imports
// raftstore); they keep the small starter in raftstore/cluster_test.go,
// which also reaches the unexported fault injection they need.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/raftstore"
)

// Region is the region of every node started here.
const Region = "eu-west-1"

// Options vary a node started by StartWith.
type Options struct {
	// Dir is the data directory ("" = a new temporary one). A directory
	// that holds a node already is reopened (tests of restarts and of
	// files changed behind the node's back).
	Dir string
	// ChainFault is raftstore.Config.ChainFault: make chain appends fail.
	ChainFault func(chain, data []byte) error
	// ChainTally is raftstore.Config.ChainTally: count appends by key
	// (audit.TallyKey, as nodes do).
	ChainTally func(chain, data []byte) []byte
	// Lone starts a node that was never bootstrapped: it knows no leader
	// and StartWith does not wait for one.
	Lone bool
	// ApplyTimeout is raftstore.Config.ApplyTimeout (0 = raftstore's
	// default). raftstore's leader lookups wait that long whatever the
	// caller's context says: a Lone node's tests keep it short.
	ApplyTimeout time.Duration
}

// Start opens a bootstrapped single-node store in a temporary directory and
// waits until it leads.
func Start(tb testing.TB) *raftstore.Store {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith is Start with options. Closing the store early is allowed.
func StartWith(tb testing.TB, o Options) *raftstore.Store {
	tb.Helper()
	dir := o.Dir
	if dir == "" {
		dir = tb.TempDir()
	}
	creds, err := raftstore.LoadCredentials(filepath.Join(dir, "tls"))
	bootstrap := false
	if err != nil {
		if creds, err = raftstore.NewClusterCredentials("n1"); err != nil {
			tb.Fatalf("cluster credentials: %v", err)
		}
		if err := raftstore.SaveCredentials(filepath.Join(dir, "tls"), creds); err != nil {
			tb.Fatalf("save credentials: %v", err)
		}
		bootstrap = !o.Lone
	}
	store := open(tb, raftstore.Config{
		NodeID:      "n1",
		DataDir:     dir,
		Credentials: creds,
		Bootstrap:   bootstrap,
		// A lone node has no peers to disturb: it may elect itself (or
		// find no one) at once.
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 25 * time.Millisecond,
		ApplyTimeout:       o.ApplyTimeout,
		ChainFault:         o.ChainFault,
		ChainTally:         o.ChainTally,
	})
	if !o.Lone {
		testkit.Eventually(tb, "the single node to lead", store.IsLeader)
	}
	return store
}

// Cluster is a running in-process cluster.
type Cluster struct {
	// Nodes are n1..nN, in the order they joined; DataDirs their data
	// directories.
	Nodes    []*raftstore.Store
	DataDirs []string
}

// NewCluster starts n1, bootstraps it, and joins n2..nN to it with a join
// token, each fetching its certificate first. It returns once all have
// joined; snapshots are taken every 64 entries so that compaction and
// snapshot installs happen in tests too.
func NewCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	return NewClusterWith(tb, n, ClusterOptions{})
}

// ClusterOptions vary NewClusterWith's cluster.
type ClusterOptions struct {
	// SnapshotThreshold and SnapshotInterval: as raftstore.Config (0: 64
	// entries and 100 ms, NewCluster's). A benchmark sets a node's
	// defaults, so that snapshots do not weigh on its figures.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
}

// NewClusterWith is NewCluster with o.
func NewClusterWith(tb testing.TB, n int, o ClusterOptions) *Cluster {
	tb.Helper()
	if o.SnapshotThreshold == 0 {
		o.SnapshotThreshold = 64
	}
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = 100 * time.Millisecond
	}
	creds, err := raftstore.NewClusterCredentials("n1")
	if err != nil {
		tb.Fatalf("cluster credentials: %v", err)
	}
	token, err := raftstore.NewJoinToken(creds)
	if err != nil {
		tb.Fatalf("join token: %v", err)
	}
	hash := raftstore.TokenHash(token)
	c := &Cluster{}
	start := func(id string, creds *raftstore.Credentials, bootstrap bool) *raftstore.Store {
		dir := filepath.Join(tb.TempDir(), id)
		s := open(tb, raftstore.Config{
			NodeID: id, DataDir: dir, Credentials: creds, Bootstrap: bootstrap,
			AuthorizeJoin: func(_ context.Context, tok string) error {
				if !raftstore.TokenMatches(tok, hash) {
					return errors.New("bad token")
				}
				return nil
			},
			// Short enough for quick elections, long enough that a -race
			// run on two busy cores does not see spurious ones (at 250 ms
			// and a 120 ms lease, a loaded machine's stalls made leaders
			// step down mid-write: "leadership lost while committing").
			HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
			LeaderLeaseTimeout: 250 * time.Millisecond, ApplyTimeout: 3 * time.Second,
			SnapshotThreshold: o.SnapshotThreshold, SnapshotInterval: o.SnapshotInterval, TrailingLogs: 16,
		})
		c.Nodes, c.DataDirs = append(c.Nodes, s), append(c.DataDirs, dir)
		return s
	}
	first := start("n1", creds, true)
	c.Leader(tb)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	for i := 2; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		nc, err := raftstore.FetchCredentials(ctx, first.Address(), token, id, Region)
		if err != nil {
			tb.Fatalf("%s: fetch credentials: %v", id, err)
		}
		if err := start(id, nc, false).Join(ctx, []string{first.Address()}); err != nil {
			tb.Fatalf("%s: join: %v", id, err)
		}
	}
	c.settle(tb)
	return c
}

// settle waits until every node follows one leader in one term and knows
// as committed what that leader had committed when the wait began (raft's
// commit index, not the state machine's applied index: configuration
// entries never reach the state machine): a cluster whose voters were just
// added may otherwise still be catching up, and a
// leader that cannot yet count on them for its lease may step down under
// the first writes of a test (on two busy cores, with -race).
func (c *Cluster) settle(tb testing.TB) {
	tb.Helper()
	var target uint64
	testkit.Eventually(tb, "every node to follow one leader and catch up", func() bool {
		lead := c.Leader(tb).Status()
		if target == 0 {
			target = lead.CommitIndex
		}
		for _, n := range c.Nodes {
			st := n.Status()
			if st.LeaderID != lead.NodeID || st.Term != lead.Term || st.CommitIndex < target || len(st.Peers) != len(c.Nodes) {
				return false
			}
		}
		return true
	})
}

// Leader returns the current leader, waiting for one.
func (c *Cluster) Leader(tb testing.TB) *raftstore.Store {
	tb.Helper()
	var leader *raftstore.Store
	testkit.Eventually(tb, "a leader", func() bool {
		for _, n := range c.Nodes {
			if n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// open opens a store on a loopback port in Region, with raft's own log
// discarded and a fail-stop that fails the test, and closes it when the
// test ends.
func open(tb testing.TB, cfg raftstore.Config) *raftstore.Store {
	tb.Helper()
	cfg.Region, cfg.ListenAddress, cfg.RaftLogOutput = Region, "127.0.0.1:0", io.Discard
	// A fail-stop in a test is a bug in the store or the test: report it
	// and park the goroutine instead of exiting the test binary.
	cfg.Fatal = func(err error) {
		tb.Errorf("raftstore fatal error on %s: %v", cfg.NodeID, err)
		select {}
	}
	s, err := raftstore.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open raftstore %s: %v", cfg.NodeID, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Logf("close raftstore %s: %v", cfg.NodeID, err)
		}
	})
	return s
}
