package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2ESealedNode: `operator init --seal-recipient` seals tenant roots to
// the operator's own age recipient and creates no identity; the node then
// runs sealed — /v1/sys/health says so with 503 — and refuses key
// operations with key-unavailable, until it is restarted with the
// operator's identity.
func TestE2ESealedNode(t *testing.T) {
	bin := e2e.Binary(t)
	opID, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	opPath := filepath.Join(t.TempDir(), "operator-identity.txt") // not there yet
	c := e2e.NewCluster(t, bin, fmt.Sprintf("[keyring]\nseal_identity = %q\n", opPath))
	n := c.Nodes[0]
	r := e2e.RunCLI(t, bin, "operator", "init", "--config", n.ConfigPath, "--seal-recipient", opID.Recipient().String(), "--format", "json")
	var out struct {
		OperatorToken  string   `json:"operator_token"`
		SealIdentity   string   `json:"seal_identity"`
		SealRecipients []string `json:"seal_recipients"`
		CACertFile     string   `json:"ca_cert_file"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &out) != nil {
		t.Fatalf("operator init --seal-recipient: %v", r)
	}
	if out.SealIdentity != "" || len(out.SealRecipients) != 1 || out.SealRecipients[0] != opID.Recipient().String() {
		t.Fatalf("operator init output: %s", r.Stdout)
	}
	if _, err := os.Stat(filepath.Join(n.DataDir, "seal.age")); err == nil {
		t.Fatal("operator init created a seal identity although the operator brought recipients")
	}
	c.Token = out.OperatorToken
	c.TrustCA(out.CACertFile)
	c.Start(n)

	hc := c.HTTPClient(2 * time.Second)
	health := func() (int, bool, error) {
		resp, err := hc.Get(n.URL() + "/v1/sys/health")
		if err != nil {
			return 0, false, err
		}
		defer resp.Body.Close()
		var h struct {
			Status string `json:"status"`
			Sealed bool   `json:"sealed"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			return resp.StatusCode, false, err
		}
		return resp.StatusCode, h.Sealed && h.Status == "sealed", nil
	}
	testkit.Poll(t, 30*time.Second, "sealed health", func() error {
		code, sealed, err := health()
		if err != nil || code != http.StatusServiceUnavailable || !sealed {
			return fmt.Errorf("health: %d sealed=%v %v", code, sealed, err)
		}
		return nil
	})
	// Creating a tenant needs only the recipients; using its keys needs the
	// identity.
	r = c.CLI(n, "tenant", "create", "acme")
	if r.Code != 0 {
		t.Fatalf("tenant create on a sealed node: %v", r)
	}
	r = c.CLI(n, "keyring", "rotate", "acme")
	if r.Code != 1 || !strings.Contains(r.Stderr, "sealed") || !strings.Contains(r.Stderr, "acme") {
		t.Fatalf("keyring rotate on a sealed node: want exit 1 naming the tenant and the seal, got %v", r)
	}

	// The operator installs their identity and restarts the node.
	if err := os.WriteFile(opPath, []byte(opID.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Kill(n)
	c.Start(n)
	testkit.Poll(t, 30*time.Second, "unsealed health", func() error {
		code, sealed, err := health()
		if err != nil || code != http.StatusOK || sealed {
			return fmt.Errorf("health: %d sealed=%v %v", code, sealed, err)
		}
		return nil
	})
	r = c.CLI(n, "keyring", "rotate", "acme", "--wait", "30s")
	if r.Code != 0 || !strings.Contains(r.Stdout, "KEK 2") {
		t.Fatalf("keyring rotate after unsealing: %v", r)
	}
}
