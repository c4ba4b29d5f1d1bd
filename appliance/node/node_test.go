package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/appliance/config"
	"github.com/custos/custos/appliance/node"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/raftstore"
)

// logBuffer collects a node's log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// devConfig is a validated dev-mode configuration on loopback ports the
// system chooses.
func devConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := devConfigB()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// devConfigB is devConfig for benchmarks.
func devConfigB() (*config.Config, error) {
	return config.Load(config.Options{Environ: []string{"CUSTOS_DEV=true", "CUSTOS_API__LISTEN_ADDRESS=127.0.0.1:0"}})
}

func closeNode(t *testing.T, n *node.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func status(t *testing.T, n *node.Node, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+n.APIAddress()+"/v1/sys/status", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A dev node initializes itself; the API checks operator tokens against
// the genesis it wrote, from the first request on; the context Start was
// given bounds only the start.
func TestDevNodeChecksOperatorToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.Start(ctx, devConfig(t), node.Options{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer closeNode(t, n)
	if n.Token == "" {
		t.Fatal("a dev start made no operator token")
	}
	if got := status(t, n, n.Token); got != http.StatusOK {
		t.Errorf("with the operator token: %d, want 200", got)
	}
	if got := status(t, n, n.Token+"x"); got != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %d, want 401", got)
	}
}

// A node whose join is still retrying (cluster.join names an address where
// nothing listens) stops it on Close, and Close returns only once it has
// stopped.
func TestCloseStopsRetryingJoin(t *testing.T) {
	dir := t.TempDir()
	creds, err := raftstore.NewClusterCredentials("n2")
	if err != nil {
		t.Fatal(err)
	}
	if err := raftstore.SaveCredentials(filepath.Join(dir, "tls"), creds); err != nil {
		t.Fatal(err)
	}
	cfg := devConfig(t)
	cfg.Dev, cfg.NodeID, cfg.DataDir = false, "n2", dir
	cfg.Cluster.Join = []string{"127.0.0.1:1"}
	logs := &logBuffer{}
	n, err := node.Start(context.Background(), cfg, node.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if n.Store().IsLeader() {
		t.Fatal("a node that never joined leads")
	}
	closeNode(t, n)
	// The join's last attempt failed against the address it was given:
	// it was retrying, and it ended before Close returned.
	if !strings.Contains(logs.String(), `msg="join stopped: the node is closing" error="raftstore: join: dial tcp 127.0.0.1:1:`) {
		t.Fatalf("Close returned before the retrying join stopped; log:\n%s", logs)
	}
}

// The leader of a new cluster creates the access-token signing keys at its
// first start, without waiting for a login: the public half in the clear,
// the set sealed.
func TestDevNodeCreatesSigningKeys(t *testing.T) {
	n, err := node.Start(context.Background(), devConfig(t), node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNode(t, n)
	testkit.Poll(t, testkit.Timeout, "the signing keys to be stored", func() error {
		return n.Store().View(context.Background(), raftstore.Stale, func(r *raftstore.ReadTx) error {
			pub, _, ok := r.Get(raftstore.Path("sys", "signing"), []byte("public"))
			sealed, _, sok := r.Get(raftstore.Path("sys", "signing"), []byte("sealed"))
			switch {
			case !ok || !sok:
				return errors.New("no keys yet")
			case !bytes.Contains(pub, []byte(`"public":`)) || !bytes.HasPrefix(sealed, []byte("age-encryption.org/v1")):
				return testkit.Permanent(fmt.Errorf("public %q, sealed %q…", pub, sealed[:min(len(sealed), 40)]))
			}
			return nil
		})
	})
}
