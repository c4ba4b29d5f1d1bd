// Package raftstoretest starts real in-process raftstore clusters on
// loopback (mutual TLS, fast timeouts, data in t.TempDir) for the tests of
// packages built on raftstore.
package raftstoretest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos/custos/raftstore"
)

// Cluster is a running test cluster.
type Cluster struct {
	Nodes    []*raftstore.Store
	DataDirs []string
}

// New starts an n-node cluster in region "test" and waits for a leader.
func New(t testing.TB, n int) *Cluster {
	t.Helper()
	creds, err := raftstore.NewClusterCredentials("n1")
	if err != nil {
		t.Fatal(err)
	}
	token, err := raftstore.NewJoinToken(creds)
	if err != nil {
		t.Fatal(err)
	}
	authorize := func(_ context.Context, tok string) error {
		if !raftstore.TokenMatches(tok, raftstore.TokenHash(token)) {
			return errors.New("bad token")
		}
		return nil
	}
	c := &Cluster{}
	start := func(id string, creds *raftstore.Credentials, bootstrap bool) *raftstore.Store {
		dir := filepath.Join(t.TempDir(), id)
		s, err := raftstore.Open(context.Background(), raftstore.Config{
			NodeID: id, Region: "test", DataDir: dir, ListenAddress: "127.0.0.1:0",
			Credentials: creds, Bootstrap: bootstrap, AuthorizeJoin: authorize,
			HeartbeatTimeout: 250 * time.Millisecond, ElectionTimeout: 250 * time.Millisecond,
			LeaderLeaseTimeout: 120 * time.Millisecond, ApplyTimeout: 3 * time.Second,
			SnapshotThreshold: 64, SnapshotInterval: 100 * time.Millisecond, TrailingLogs: 16,
			RaftLogOutput: io.Discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		c.Nodes, c.DataDirs = append(c.Nodes, s), append(c.DataDirs, dir)
		return s
	}
	first := start("n1", creds, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := first.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		nc, err := raftstore.FetchCredentials(ctx, first.Address(), token, id, "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := start(id, nc, false).Join(ctx, []string{first.Address()}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Leader returns the current leader, waiting for one.
func (c *Cluster) Leader(t testing.TB) *raftstore.Store {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes {
			if n.IsLeader() {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader")
	return nil
}
