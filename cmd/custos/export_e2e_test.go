package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2EDataSubjectExport: through the built binary and a running node,
// Compliance answers a verified access request with `custos dsr export`
// (progress on stderr, the request completed), and the archive verifies
// offline with the key `custos audit key` prints; the Owner takes the
// whole tenant with `custos tenant export` as a .tar.gz, which verifies
// too; Compliance may not.
func TestE2EDataSubjectExport(t *testing.T) {
	bin := e2e.Binary(t)
	node := e2e.StartDevNode(t, bin, "e2e-export-token")
	must := e2e.Must(t)
	owner := func(args ...string) e2e.CLIResult { return node.TenantCLI(t, "acme", args...) }
	file := e2e.Files(t, node.Dir)
	must(node.CLI(t, "tenant", "create", "acme"), "tenant create")
	must(owner("collection", "put", "acme", "guests", "--file", file("guests.json", `{"fields":[
		{"name":"email","type":"string","required":true,"classification":"pii","index":true}]}`)), "collection put")
	must(owner("record", "create", "acme", "guests", "--file", file("g1.json", `{"id":"g1","subject":"guest-1","fields":{"email":"mine@example.com"}}`)), "record g1")
	must(owner("record", "create", "acme", "guests", "--file", file("g2.json", `{"id":"g2","subject":"guest-2","fields":{"email":"canary-other@example.com"}}`)), "record g2")
	r := must(node.CLI(t, "apikey", "create", "acme", "--name", "dpo", "--role", "compliance", "--format", "json"), "apikey create")
	var k struct{ Token string }
	if json.Unmarshal([]byte(r.Stdout), &k) != nil {
		t.Fatalf("apikey create: %v", r)
	}
	dpo := func(args ...string) e2e.CLIResult {
		return e2e.RunCLI(t, bin, append([]string{"--addr", "http://" + node.Addr, "--token", k.Token}, args...)...)
	}
	var req struct{ ID, Status string }
	r = must(dpo("dsr", "create", "acme", "access", "guest-1", "--format", "json"), "dsr create")
	if json.Unmarshal([]byte(r.Stdout), &req) != nil {
		t.Fatalf("dsr create: %v", r)
	}
	must(dpo("dsr", "transition", "acme", req.ID, "verified", "--method", "document", "--evidence", "passport seen"), "verify")
	pub := file("audit.pub", must(node.CLI(t, "audit", "key"), "audit key").Stdout)

	out := filepath.Join(node.Dir, "export.zip")
	r = must(dpo("dsr", "export", req.ID, "--tenant", "acme", "--format", "parquet", "--out", out), "dsr export")
	if !strings.Contains(r.Stderr, "building the export") || !strings.Contains(r.Stdout, "1 records") {
		t.Errorf("dsr export: %v", r)
	}
	r = must(dpo("dsr", "verify-export", "--key", pub, out), "verify-export")
	if !strings.HasPrefix(r.Stdout, "OK: export of subject:h:") || !strings.Contains(r.Stdout, "request "+req.ID) {
		t.Errorf("verify-export: %v", r)
	}
	r = must(dpo("dsr", "show", "acme", req.ID, "--format", "json"), "dsr show")
	if json.Unmarshal([]byte(r.Stdout), &req) != nil || req.Status != "completed" {
		t.Errorf("the request after its export: %v", r)
	}
	if r := dpo("dsr", "export", req.ID, "--tenant", "acme", "--out", out); r.Code == 0 {
		t.Errorf("a completed request exported again: %v", r)
	}

	all := filepath.Join(node.Dir, "acme.tar.gz")
	if r := dpo("tenant", "export", "acme", "--out", all); r.Code == 0 || !strings.Contains(r.Stderr, "(403)") {
		t.Errorf("tenant export by Compliance: %v", r)
	}
	must(owner("tenant", "export", "acme", "--compression", "gzip", "--format", "csv", "--out", all, "--quiet"), "tenant export")
	r = must(dpo("dsr", "verify-export", "--key", pub, all), "verify-export of the tenant's")
	if !strings.HasPrefix(r.Stdout, "OK: export of tenant:h:") {
		t.Errorf("verify-export of the tenant's: %v", r)
	}
}
