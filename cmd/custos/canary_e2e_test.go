package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2ERecordCanariesNotOnDisk (issue 5, acceptance 4): personal data
// written through the API of a three-node cluster — record fields and a
// recording — appears in no file of any node — state, raft log, snapshots
// — while a plaintext control (a collection name) is found, so the scan
// can see.
func TestE2ERecordCanariesNotOnDisk(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartCluster(t, bin)
	n := c.Nodes[0]
	must := e2e.Must(t)
	dir := t.TempDir()
	schema := filepath.Join(dir, "schema.json")
	writeFile(t, schema, []byte(`{"fields":[{"name":"email","type":"string","required":true,"classification":"pii","index":true},{"name":"note","type":"string","classification":"sensitive"}]}`))
	must(c.CLI(n, "tenant", "create", "acme"), "tenant create")
	must(c.TenantCLI(n, "acme", "collection", "put", "acme", "controlcollectionname", "--file", schema), "collection put")
	canaries := []string{}
	for i, who := range []string{"alpha", "bravo", "charlie"} {
		canary := "CANARY-" + who + "-7f3a9c"
		canaries = append(canaries, canary)
		rec := filepath.Join(dir, who+".json")
		writeFile(t, rec, []byte(`{"id":"r`+string(rune('0'+i))+`","fields":{"email":"`+canary+`@example.com","note":"`+canary+` has a nut allergy"}}`))
		must(c.TenantCLI(c.Nodes[i%3], "acme", "record", "create", "acme", "controlcollectionname", "--file", rec), "record create")
	}
	// A recording whose every chunk carries a canary (in the clear, the
	// scan would find it at any offset).
	blobCanary := "CANARY-blob-5e1d"
	canaries = append(canaries, blobCanary)
	rec := filepath.Join(dir, "call.wav")
	writeFile(t, rec, bytes.Repeat([]byte(blobCanary+" spoke about the booking. "), 40000))
	up := c.TenantCLI(c.Nodes[1], "acme", "blob", "upload", "acme", rec, "--subject", "guest-7", "--format", "json")
	must(up, "blob upload")
	var blob struct{ ID string }
	if err := json.Unmarshal([]byte(up.Stdout), &blob); err != nil {
		t.Fatalf("blob upload answer: %v", err)
	}
	// Every node has applied them: read each record and the blob through
	// each node.
	for _, node := range c.Nodes {
		r := c.TenantCLI(node, "acme", "record", "get", "acme", "controlcollectionname", "r2")
		if r.Code != 0 || !strings.Contains(r.Stdout, canaries[2]) {
			t.Fatalf("%s: record get: %v", node.ID, r)
		}
		out := filepath.Join(dir, node.ID+".wav")
		must(c.TenantCLI(node, "acme", "blob", "download", "acme", blob.ID, "--out", out), "blob download")
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Contains(got, []byte(blobCanary)) {
			t.Fatalf("%s: blob download: %v", node.ID, err)
		}
		os.Remove(out) // the scan below is of the nodes' files, not these
	}
	controls := 0
	for _, node := range c.Nodes {
		testkit.ScanFiles(t, func(p string, data []byte) {
			if bytes.Contains(data, []byte("controlcollectionname")) {
				controls++
			}
			for _, canary := range canaries {
				if bytes.Contains(data, []byte(canary)) || bytes.Contains(bytes.ToLower(data), []byte(strings.ToLower(canary))) {
					t.Errorf("%s: canary %s in plaintext in %s", node.ID, canary, p)
				}
			}
		}, node.DataDir)
	}
	if controls < 3 {
		t.Fatalf("the plaintext control was found in only %d files: the scan is blind", controls)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
