//go:build vault

package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit/e2e"
	"github.com/custos/custos/keyring/vaulttest"
)

// TestE2EVaultTenant is acceptance 3 end to end: a dev node and a real
// Vault; a tenant created with the CLI on a Vault transit key; rotation;
// the key's policy revoked → the API answers 503 key-unavailable naming the
// tenant while an age tenant works on; the policy restored → service
// resumes; Vault stopped → key-unavailable again and the node stays
// healthy. The Vault token never appears in the node's output.
func TestE2EVaultTenant(t *testing.T) {
	bin := e2e.Binary(t)
	v := vaulttest.Start(t, "../../bin/vault", false)
	const token = "e2e-operator-token"
	node := e2e.StartDevNode(t, bin, token)
	addr, dir, stdoutPath, stderrPath := node.Addr, node.Dir, node.StdoutPath, node.StderrPath
	hc := &http.Client{Timeout: 5 * time.Second}
	healthy := node.Healthy
	cli := func(args ...string) e2e.CLIResult { return node.CLI(t, args...) }
	// rotate answers through the API: its status, problem type and detail.
	rotate := func(tenant string) (int, string, string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/tenants/"+tenant+"/keys/rotate", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var prob struct{ Type, Detail string }
		_ = json.NewDecoder(resp.Body).Decode(&prob) // empty on success
		return resp.StatusCode, prob.Type, prob.Detail
	}

	vaultToken := v.Token(t, "acme-key")
	tokenFile := filepath.Join(dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte(vaultToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli("tenant", "create", "acme", "--key-provider", "vault", "--vault-address", v.Addr, "--vault-key", "acme-key", "--vault-token-file", tokenFile)
	if r.Code != 0 || !strings.Contains(r.Stdout, "vault") {
		t.Fatalf("tenant create acme (vault): %v", r)
	}
	if r = cli("tenant", "create", "local"); r.Code != 0 {
		t.Fatalf("tenant create local (age): %v", r)
	}
	r = cli("keyring", "rotate", "acme", "--wait", "30s")
	if r.Code != 0 || !strings.Contains(r.Stdout, "KEK 2") || !strings.Contains(r.Stdout, "Transit versions") {
		t.Fatalf("keyring rotate acme: %v", r)
	}

	// Revoke the token's policy; purge so no cached key hides it.
	v.Deny(t, "acme-key")
	if r = cli("keyring", "purge-cache", "acme"); r.Code != 0 {
		t.Fatalf("purge-cache: %v", r)
	}
	code, typ, detail := rotate("acme")
	if code != http.StatusServiceUnavailable || !strings.HasSuffix(typ, "/key-unavailable") || !strings.Contains(detail, `"acme"`) {
		t.Fatalf("rotate with the policy revoked: %d %s %q", code, typ, detail)
	}
	if code, _, _ := rotate("local"); code != http.StatusAccepted {
		t.Fatalf("the age tenant suffered from acme's Vault: %d", code)
	}
	r = cli("keyring", "rotate", "acme")
	if r.Code != 1 || !strings.Contains(r.Stderr, "Key unavailable (503)") {
		t.Fatalf("CLI with the policy revoked: %v", r)
	}
	// Restore the policy: service resumes without any action on Custos.
	v.Policy(t, "acme-key")
	if code, _, detail := rotate("acme"); code != http.StatusAccepted {
		t.Fatalf("rotate after restoring the policy: %d %q", code, detail)
	}

	// Vault stopped: key-unavailable, the node healthy, the age tenant fine.
	v.Kill()
	if r = cli("keyring", "purge-cache", "acme"); r.Code != 0 {
		t.Fatalf("purge-cache: %v", r)
	}
	if code, typ, _ := rotate("acme"); code != http.StatusServiceUnavailable || !strings.HasSuffix(typ, "/key-unavailable") {
		t.Fatalf("rotate with Vault down: %d %s", code, typ)
	}
	if err := healthy(); err != nil {
		t.Fatalf("node unhealthy with a tenant's Vault down: %v", err)
	}
	if code, _, _ := rotate("local"); code != http.StatusAccepted {
		t.Fatalf("the age tenant with acme's Vault down: %d", code)
	}
	for _, f := range []string{stdoutPath, stderrPath} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), vaultToken) {
			t.Fatalf("the Vault token is in %s", f)
		}
	}
}
