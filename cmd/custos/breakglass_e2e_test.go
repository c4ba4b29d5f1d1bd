package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
	"github.com/custos/custos/keyring"
)

// TestE2EBreakGlassAndRootToken (issue 12: operators do not read tenants'
// data; the root credential): on a three-node cluster, the operator token
// reads no record of a tenant until the tenant's Owner approves its
// break-glass request (custos breakglass), and none once the Owner
// revokes it; the root token is revoked (custos operator root-token
// revoke: refused from then on) and regenerated with the seal identity
// (custos operator root-token generate), and the new one is bound by the
// same rule.
func TestE2EBreakGlassAndRootToken(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartCluster(t, bin)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	must := e2e.Must(t)
	refused := func(r e2e.CLIResult, status, what string) {
		t.Helper()
		if r.Code == 0 || !strings.Contains(r.Stderr, "("+status+")") {
			t.Fatalf("%s: want refused with %s, got %v", what, status, r)
		}
	}
	const canary = "e2e-bg-canary@acme.test"
	dir := t.TempDir()
	schema, rec := filepath.Join(dir, "guests.json"), filepath.Join(dir, "g1.json")
	writeFile(t, schema, []byte(`{"fields":[{"name":"email","type":"string","required":true,"classification":"pii","index":true}]}`))
	writeFile(t, rec, []byte(`{"id":"g1","fields":{"email":"`+canary+`"}}`))
	must(c.CLI(n1, "tenant", "create", "acme"), "tenant create")
	must(c.TenantCLI(n1, "acme", "collection", "put", "acme", "guests", "--file", schema), "collection put")
	must(c.TenantCLI(n2, "acme", "record", "create", "acme", "guests", "--file", rec), "record create")

	refused(c.CLI(n3, "record", "get", "acme", "guests", "g1"), "403", "the operator reads a record without break-glass")
	var g struct{ ID, State string }
	r := must(c.CLI(n1, "breakglass", "request", "acme", "--reason", "ticket 4711", "--duration", "10m", "--format", "json"), "breakglass request")
	if err := json.Unmarshal([]byte(r.Stdout), &g); err != nil || g.State != "pending" {
		t.Fatalf("breakglass request: %v %s", err, r.Stdout)
	}
	if r := must(c.TenantCLI(n2, "acme", "breakglass", "list", "acme"), "breakglass list"); !strings.Contains(r.Stdout, g.ID) || !strings.Contains(r.Stdout, "pending") || !strings.Contains(r.Stdout, "ticket 4711") {
		t.Fatalf("the tenant's list: %v", r)
	}
	refused(c.CLI(n1, "breakglass", "approve", "acme", g.ID), "403", "the operator approves its own request")
	refused(c.CLI(n2, "record", "get", "acme", "guests", "g1"), "403", "the operator reads under a pending request")
	must(c.TenantCLI(n3, "acme", "breakglass", "approve", "acme", g.ID), "breakglass approve")
	if r := must(c.CLI(n1, "record", "get", "acme", "guests", "g1"), "record get under break-glass"); !strings.Contains(r.Stdout, canary) {
		t.Fatalf("the operator under an approved grant does not read the record: %v", r)
	}
	refused(c.CLI(n1, "record", "delete", "acme", "guests", "g1"), "403", "the operator deletes under break-glass")
	must(c.TenantCLI(n1, "acme", "breakglass", "revoke", "acme", g.ID), "breakglass revoke")
	refused(c.CLI(n2, "record", "get", "acme", "guests", "g1"), "403", "the operator reads under a revoked grant")

	// The root credential: revoked, refused; regenerated with the seal
	// identity only (no token), and bound by the same rule.
	must(c.CLI(n2, "operator", "root-token", "revoke"), "root-token revoke")
	// Each node checks the token against its own applied state: the
	// revocation holds on each as soon as raft applies it there.
	for _, n := range c.Nodes {
		testkit.Poll(t, 10*time.Second, n.ID+" refuses the revoked root token", func() error {
			if r := c.CLI(n, "tenant", "list"); r.Code == 0 || !strings.Contains(r.Stderr, "(401)") {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
	}
	stranger := filepath.Join(dir, "stranger.key")
	if _, err := keyring.NewSealIdentity(stranger); err != nil {
		t.Fatal(err)
	}
	if r := e2e.RunCLI(t, bin, "--addr", n1.URL(), "operator", "root-token", "generate", "--seal-identity", stranger); r.Code == 0 || !strings.Contains(r.Stderr, "seal identity") {
		t.Fatalf("root-token generate with another identity: %v", r)
	}
	r = e2e.RunCLI(t, bin, "--addr", n1.URL(), "operator", "root-token", "generate", "--seal-identity", c.SealIdentity, "--format", "json")
	var out struct {
		Token string `json:"operator_token"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &out) != nil || !strings.HasPrefix(out.Token, "cst_") {
		t.Fatalf("root-token generate: %v", r)
	}
	old := c.Token
	c.Token = out.Token
	for _, n := range c.Nodes {
		testkit.Poll(t, 10*time.Second, n.ID+" admits the regenerated root token", func() error {
			if r := c.CLI(n, "tenant", "list"); r.Code != 0 {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
	}
	refused(e2e.RunCLI(t, bin, "--addr", n2.URL(), "--token", old, "tenant", "list"), "401", "the old root token after regeneration")
	refused(c.CLI(n3, "record", "get", "acme", "guests", "g1"), "403", "the regenerated root token reads a record")
	if r := must(c.CLI(n1, "audit", "list", "--action", "operator.root_token.", "--format", "json"), "audit list"); !strings.Contains(r.Stdout, "operator.root_token.revoke") || !strings.Contains(r.Stdout, "operator.root_token.generate") {
		t.Fatalf("the system chain lacks the root token's entries: %s", r.Stdout)
	}
}
