package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2EAudit is the auditor's path with the built binary: a dev node
// records operator actions; the auditor takes the key and a checkpoint,
// later exports the system and a tenant chain, and verifies the bundles
// offline — and a bundle with one changed byte fails, naming the entry.
func TestE2EAudit(t *testing.T) {
	bin := e2e.Binary(t)
	const token = "e2e-audit-token"
	node := e2e.StartDevNode(t, bin, token)
	addr, dir := node.Addr, node.Dir
	cli := func(args ...string) e2e.CLIResult { return node.CLI(t, args...) }
	// acme's data is read and written by its Owner key: the operator
	// token reads none.
	owner := func(args ...string) e2e.CLIResult { return node.TenantCLI(t, "acme", args...) }
	must := e2e.Must(t)
	must(cli("tenant", "create", "acme"), "tenant create acme")

	// The auditor's key (public: no token needed) and a first checkpoint.
	r := must(e2e.RunCLI(t, bin, "--addr", "http://"+addr, "audit", "key"), "audit key")
	keyFile := filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(keyFile, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	var old string
	testkit.Poll(t, 30*time.Second, "a signed checkpoint of the system chain", func() error {
		r := cli("audit", "checkpoint")
		if r.Code != 0 {
			return fmt.Errorf("%v", r)
		}
		old = r.Stdout
		return nil
	})
	oldFile := filepath.Join(dir, "old.txt")
	if err := os.WriteFile(oldFile, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}

	// More operator actions, in both chains.
	for _, id := range []string{"globex", "initech"} {
		must(cli("tenant", "create", id), "tenant create "+id)
	}
	must(cli("keyring", "rotate", "acme", "--wait", "30s"), "keyring rotate")
	must(cli("tenant", "suspend", "initech"), "tenant suspend")
	r = must(cli("audit", "list", "--action", "tenant."), "audit list")
	for _, want := range []string{"tenant.create", "tenant.suspend", "operator:operator"} {
		if !strings.Contains(r.Stdout, want) {
			t.Fatalf("audit list lacks %q:\n%s", want, r.Stdout)
		}
	}
	r = must(cli("audit", "list", "--tenant", "acme", "--format", "json"), "audit list --tenant")
	if !strings.Contains(r.Stdout, "key.provision") || !strings.Contains(r.Stdout, "key.rotate") {
		t.Fatalf("tenant chain lacks key operations:\n%s", r.Stdout)
	}

	// Export and verify offline, against the kept checkpoint.
	sysBundle := filepath.Join(dir, "system.tar.gz")
	if r := must(cli("audit", "export", "-o", sysBundle), "audit export"); !strings.Contains(r.Stderr, "system, entries 1..") || !strings.Contains(r.Stderr, "ending on the checkpoint at size") {
		t.Fatalf("audit export does not say what range it wrote: %v", r)
	}
	r = must(e2e.RunCLI(t, bin, "audit", "verify", "--key", keyFile, "--checkpoint", oldFile, sysBundle), "audit verify")
	if !strings.HasPrefix(r.Stdout, "OK: ") || !strings.Contains(r.Stdout, "extends your checkpoint") {
		t.Fatalf("audit verify: %v", r)
	}
	acmeBundle := filepath.Join(dir, "acme.tar.gz")
	must(cli("audit", "export", "--tenant", "acme", "-o", acmeBundle), "audit export --tenant")
	must(e2e.RunCLI(t, bin, "audit", "verify", "--key", keyFile, acmeBundle), "audit verify acme")

	// One changed byte in one entry: exit 1, naming the entry.
	bad := filepath.Join(dir, "bad.tar.gz")
	if err := os.WriteFile(bad, alterEntry(t, sysBundle, 2), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e2e.RunCLI(t, bin, "audit", "verify", "--key", keyFile, bad)
	if r.Code != 1 || !strings.Contains(r.Stderr, "NOT valid") || !strings.Contains(r.Stderr, "seq 2") {
		t.Fatalf("audit verify of an altered bundle: %v", r)
	}
	// A tenant's auditor with an API key (export permission) exports its
	// own chain, and gets 404 on another tenant's.
	r = must(cli("apikey", "create", "acme", "--name", "auditor", "--permissions", "read,export", "--format", "json"), "apikey create")
	var k struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &k); err != nil || !strings.HasPrefix(k.Token, "ck_") {
		t.Fatalf("apikey create: %v %q", err, r.Stdout)
	}
	asKey := func(args ...string) e2e.CLIResult {
		return e2e.RunCLI(t, bin, append([]string{"--addr", "http://" + addr, "--token", k.Token}, args...)...)
	}
	own := filepath.Join(dir, "own.tar.gz")
	must(asKey("audit", "export", "--tenant", "acme", "-o", own), "export with the tenant's key")
	must(e2e.RunCLI(t, bin, "audit", "verify", "--key", keyFile, own), "verify the tenant's export")
	if r := asKey("audit", "list", "--tenant", "globex"); r.Code != 1 || !strings.Contains(r.Stderr, "(404)") {
		t.Fatalf("another tenant's chain with acme's key: %v", r)
	}
	if r := asKey("tenant", "list"); r.Code != 1 || !strings.Contains(r.Stderr, "(403)") {
		t.Fatalf("an operator route with an API key: %v", r)
	}
	must(cli("apikey", "delete", "acme", k.ID), "apikey delete")
	if r := asKey("audit", "list", "--tenant", "acme"); r.Code != 1 || !strings.Contains(r.Stderr, "(401)") {
		t.Fatalf("a revoked key: %v", r)
	}

	// A collection schema through the CLI.
	schema := filepath.Join(dir, "guests.json")
	if err := os.WriteFile(schema, []byte(`{"fields":[{"name":"email","type":"string","required":true,"classification":"pii","index":true}],"subject_required":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = must(owner("collection", "put", "acme", "guests", "--file", schema), "collection put")
	if !strings.Contains(r.Stdout, "guests (version 1") || !strings.Contains(r.Stdout, "email") {
		t.Fatalf("collection put: %v", r)
	}
	if r := must(owner("collection", "list", "acme"), "collection list"); !strings.Contains(r.Stdout, "guests") {
		t.Fatalf("collection list: %v", r)
	}

	// A record through the CLI: stored encrypted, found by its blind index.
	recFile := filepath.Join(dir, "rec.json")
	if err := os.WriteFile(recFile, []byte(`{"id":"g1","subject":"guest-1","fields":{"email":"Jane@Example.com"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	must(owner("record", "create", "acme", "guests", "--file", recFile), "record create")
	if r := must(owner("record", "find", "acme", "guests", "email", "jane@example.com"), "record find"); strings.TrimSpace(r.Stdout) != "g1" {
		t.Fatalf("record find: %v", r)
	}
	if r := must(owner("record", "get", "acme", "guests", "g1", "--mask"), "record get --mask"); !strings.Contains(r.Stdout, "J***@E******.c**") {
		t.Fatalf("record get --mask: %v", r)
	}
	must(owner("record", "delete", "acme", "guests", "g1"), "record delete")

	// The node's own self-check passed.
	testkit.Poll(t, 30*time.Second, "a self-check report", func() error {
		r := cli("audit", "selfcheck")
		if r.Code != 0 || !strings.Contains(r.Stdout, "system") {
			return fmt.Errorf("%v", r)
		}
		return nil
	})
}

// alterEntry returns the bundle at path with one byte of entry seq changed
// (re-packed, so only the content differs).
func alterEntry(t *testing.T, path string, seq int) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "entries.jsonl" {
			lines := strings.SplitAfter(string(data), "\n")
			lines[seq-1] = strings.Replace(lines[seq-1], `"outcome":"success"`, `"outcome":"succesS"`, 1)
			data = []byte(strings.Join(lines, ""))
		}
		if err := tw.WriteHeader(&tar.Header{Name: h.Name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
