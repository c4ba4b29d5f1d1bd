package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2EBlobsThreeNodes: a recording uploaded through a follower is
// replicated: every node serves it whole and in ranges, with the SHA-256
// recorded at upload; the subject lists it on every node; after a delete
// through another node, no node serves it.
func TestE2EBlobsThreeNodes(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartCluster(t, bin)
	leader := c.WaitLeader(30 * time.Second)
	followers := c.Others(leader)
	must := e2e.Must(t)
	must(c.CLI(leader, "tenant", "create", "acme"), "tenant create")

	dir := t.TempDir()
	data := make([]byte, 3<<20+12345) // 49 chunks, the last short: 4 chunk transactions
	_, _ = rand.NewChaCha8([32]byte{7}).Read(data)
	sum := sha256.Sum256(data)
	src := filepath.Join(dir, "call.ogg")
	writeFile(t, src, data)
	up := must(c.TenantCLI(followers[0], "acme", "blob", "upload", "acme", src, "--subject", "guest-1", "--format", "json"), "blob upload")
	var b client.Blob
	if err := json.Unmarshal([]byte(up.Stdout), &b); err != nil {
		t.Fatal(err)
	}
	if b.SHA256 != hex.EncodeToString(sum[:]) || b.Size != int64(len(data)) || b.ContentType != "audio/ogg" {
		t.Fatalf("upload answer %+v", b)
	}

	hc := c.HTTPClient(30 * time.Second)
	get := func(n *e2e.Node, rng string) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), "GET", n.URL()+"/v1/tenants/acme/blobs/"+b.ID, nil)
		req.Header.Set("Authorization", "Bearer "+c.OwnerKey("acme"))
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, res.Header, body
	}
	for _, n := range c.Nodes {
		out := filepath.Join(dir, n.ID+".ogg")
		must(c.TenantCLI(n, "acme", "blob", "download", "acme", b.ID, "--out", out), n.ID+": download")
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: downloaded blob differs (%v)", n.ID, err)
		}
		for _, r := range []struct {
			header   string
			from, to int
		}{{"bytes=0-99", 0, 99}, {"bytes=65530-200000", 65530, 200000}, {"bytes=-777", len(data) - 777, len(data) - 1}} {
			status, h, body := get(n, r.header)
			want := fmt.Sprintf("bytes %d-%d/%d", r.from, r.to, len(data))
			if status != http.StatusPartialContent || h.Get("Content-Range") != want || !bytes.Equal(body, data[r.from:r.to+1]) {
				t.Fatalf("%s: range %s: %d %q, %d bytes", n.ID, r.header, status, h.Get("Content-Range"), len(body))
			}
		}
		ls := must(c.TenantCLI(n, "acme", "blob", "list", "acme", "--subject", "guest-1", "--format", "json"), n.ID+": list")
		if !strings.Contains(ls.Stdout, b.ID) {
			t.Fatalf("%s: list: %s", n.ID, ls.Stdout)
		}
	}
	must(c.TenantCLI(followers[1], "acme", "blob", "delete", "acme", b.ID), "blob delete")
	for _, n := range c.Nodes {
		if status, _, _ := get(n, ""); status != http.StatusNotFound {
			t.Fatalf("%s: a deleted blob answers %d", n.ID, status)
		}
	}
}
