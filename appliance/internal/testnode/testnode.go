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
	"path/filepath"
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
	return StartWith(tb, Options{})
}

// Options vary a test node.
type Options struct {
	// Dir is the data directory ("" = a new temporary one). A directory
	// that holds a node already is reopened (tests of restarts and of
	// files changed behind the node's back).
	Dir string
	// ChainFault is raftstore.Config.ChainFault: make chain appends fail.
	ChainFault func(chain, data []byte) error
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
		bootstrap = true
	}
	store, err := raftstore.Open(context.Background(), raftstore.Config{
		NodeID:             "n1",
		Region:             Region,
		DataDir:            dir,
		ListenAddress:      "127.0.0.1:0",
		Credentials:        creds,
		Bootstrap:          bootstrap,
		HeartbeatTimeout:   50 * time.Millisecond,
		ElectionTimeout:    50 * time.Millisecond,
		LeaderLeaseTimeout: 25 * time.Millisecond,
		RaftLogOutput:      io.Discard,
		ChainFault:         o.ChainFault,
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
