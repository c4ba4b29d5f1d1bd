// Package testnode starts a real, single-node raftstore for the tests of the
// appliance packages. Tests of the domain services and the HTTP API run
// against the real store rather than a fake, so that conditions, versions,
// bucket deletion and chain appends behave exactly as in production; Raft's
// timeouts are shrunk to tens of milliseconds so a node elects itself at
// once.
package testnode

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/custos/custos/raftstore"
)

// Region is the region of every test node.
const Region = "eu-west-1"

// Start opens a bootstrapped single-node store in a temporary directory and
// waits, with a deadline, until it leads. The store is closed when the test
// ends.
func Start(tb testing.TB) *raftstore.Store {
	tb.Helper()
	creds, err := raftstore.NewClusterCredentials("n1")
	if err != nil {
		tb.Fatalf("cluster credentials: %v", err)
	}
	store, err := raftstore.Open(context.Background(), raftstore.Config{
		NodeID:             "n1",
		Region:             Region,
		DataDir:            tb.TempDir(),
		ListenAddress:      "127.0.0.1:0",
		Credentials:        creds,
		Bootstrap:          true,
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 25 * time.Millisecond,
		RaftLogOutput:      io.Discard,
		// A fail-stop in a test is a bug in the store or the test: report
		// it and park the goroutine instead of exiting the test binary.
		Fatal: func(err error) {
			tb.Errorf("raftstore fatal error: %v", err)
			select {}
		},
	})
	if err != nil {
		tb.Fatalf("open raftstore: %v", err)
	}
	tb.Cleanup(func() {
		if err := store.Close(); err != nil {
			tb.Logf("close raftstore: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !store.IsLeader() {
		if time.Now().After(deadline) {
			tb.Fatal("single node did not become leader within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return store
}
