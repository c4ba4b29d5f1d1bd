package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/auditverify"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2EIndependentVerifier checks a live three-node cluster's audit log
// the way an outside auditor would, with a verifier written from
// docs/audit-format.md alone (internal/testkit/auditverify: the standard
// library, tlog and note, nothing of the module) and plain HTTP: the
// system chain and a tenant chain holding records, reads, blind-index
// searches, subject lookups, blob listings by subject and blobs are listed, their canonical bytes,
// links and trees recomputed against signed checkpoints, every entry's
// inclusion proof and a consistency proof from a checkpoint kept earlier
// checked, and an export of each verified against the kept checkpoint and
// compared with the lists. And a known content uploaded as a blob: its
// SHA-256, in hex or base64, is in no list answer, entry or bundle.
func TestE2EIndependentVerifier(t *testing.T) {
	bin := e2e.Binary(t)
	// A checkpoint every few entries, so the chains have several and the
	// consistency proofs span some history.
	c := e2e.StartClusterWith(t, bin, "[audit]\ncheckpoint_entries = 3\n")
	dir := t.TempDir()
	n1 := c.Nodes[0]
	must := e2e.Must(t)
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Requests go round the nodes: followers answer too.
	turn := 0
	api := func(method, path string, token bool) (int, []byte) {
		t.Helper()
		n := c.Nodes[turn%len(c.Nodes)]
		turn++
		req, err := http.NewRequest(method, n.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token {
			// acme's data is read by its Owner key: the operator reads
			// none; the chains by the operator.
			tok := c.Token
			if strings.HasPrefix(path, "/v1/tenants/acme/") && !strings.HasPrefix(path, "/v1/tenants/acme/audit") {
				tok = c.OwnerKey("acme")
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.HTTPClient(30 * time.Second).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	get := func(path string) []byte {
		t.Helper()
		status, body := api("GET", path, true)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		return body
	}

	// A tenant with a collection, a record of a subject and a blob of
	// known content.
	must(c.CLI(n1, "tenant", "create", "acme"), "tenant create")
	must(c.TenantCLI(n1, "acme", "collection", "put", "acme", "guests", "--file", file("guests.json",
		`{"fields":[{"name":"email","type":"string","required":true,"classification":"pii","index":true}]}`)), "collection put")
	must(c.TenantCLI(n1, "acme", "record", "create", "acme", "guests", "--file", file("g1.json",
		`{"id":"g1","subject":"guest-1","fields":{"email":"Jane@Example.com"}}`)), "record create")
	content := "a recording anybody could guess: hello, this is Jane\n"
	r := must(c.TenantCLI(n1, "acme", "blob", "upload", "acme", file("call.txt", content), "--subject", "guest-1", "--type", "text/plain", "--format", "json"), "blob upload")
	var blob struct{ ID, SHA256 string }
	if err := json.Unmarshal([]byte(r.Stdout), &blob); err != nil || blob.ID == "" {
		t.Fatalf("blob upload output: %v %s", err, r.Stdout)
	}

	// The auditor takes the key (public: no token) and keeps a checkpoint
	// of each chain.
	status, keyText := api("GET", "/v1/sys/audit-key", false)
	if status != http.StatusOK {
		t.Fatalf("audit key: %d %s", status, keyText)
	}
	v, err := auditverify.NewVerifier(string(keyText))
	if err != nil {
		t.Fatal(err)
	}
	chains := []struct{ name, prefix string }{{"system", "/v1/sys/audit"}, {"tenant:acme", "/v1/tenants/acme/audit"}}
	kept := map[string][]byte{}
	for _, ch := range chains {
		testkit.Poll(t, 30*time.Second, "a checkpoint of "+ch.name, func() error {
			status, body := api("GET", ch.prefix+"/checkpoint", true)
			if status != http.StatusOK {
				return fmt.Errorf("%d %s", status, body)
			}
			kept[ch.name] = body
			return nil
		})
	}

	// Then: reads, searches (found and not), subject lookups and blob
	// listings by subject (found and not), a download, other tenants.
	must(c.TenantCLI(n1, "acme", "record", "get", "acme", "guests", "g1"), "record get")
	if r := must(c.TenantCLI(c.Nodes[1], "acme", "record", "find", "acme", "guests", "email", "jane@example.com"), "record find"); strings.TrimSpace(r.Stdout) != "g1" {
		t.Fatalf("record find: %v", r)
	}
	get("/v1/tenants/acme/collections/guests/records?field=email&value=" + url.QueryEscape(`"nobody@example.com"`))
	get("/v1/tenants/acme/subjects/guest-1")
	if status, body := api("GET", "/v1/tenants/acme/subjects/guest-nobody", true); status != http.StatusNotFound {
		t.Fatalf("unknown subject: %d %s", status, body)
	}
	get("/v1/tenants/acme/blobs?subject=guest-1")
	get("/v1/tenants/acme/blobs?subject=guest-nobody")
	get("/v1/tenants/acme/blobs") // names nobody: not audited
	must(c.TenantCLI(c.Nodes[2], "acme", "blob", "download", "acme", blob.ID, "--out", filepath.Join(dir, "back.txt")), "blob download")
	for _, id := range []string{"globex", "initech", "umbrella"} { // 3: a checkpoint's worth
		must(c.CLI(n1, "tenant", "create", id), "tenant create "+id)
	}

	sum := sha256.Sum256([]byte(content))
	if blob.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("the blob's metadata: sha256 %s", blob.SHA256)
	}
	digests := []string{hex.EncodeToString(sum[:]), strings.ToUpper(hex.EncodeToString(sum[:])),
		base64.StdEncoding.EncodeToString(sum[:]), base64.RawStdEncoding.EncodeToString(sum[:]),
		base64.URLEncoding.EncodeToString(sum[:]), base64.RawURLEncoding.EncodeToString(sum[:])}
	noDigest := func(where string, b []byte) {
		t.Helper()
		for _, d := range digests {
			if bytes.Contains(b, []byte(d)) {
				t.Errorf("%s holds the content's plain SHA-256 (%s)", where, d)
			}
		}
	}

	for _, ch := range chains {
		old, err := v.OpenCheckpoint(kept[ch.name])
		if err != nil || old.Origin != v.Origin(ch.name) {
			t.Fatalf("%s: the kept checkpoint: %+v %v", ch.name, old, err)
		}
		testkit.Poll(t, 30*time.Second, "a newer checkpoint of "+ch.name, func() error {
			c, err := v.OpenCheckpoint(get(ch.prefix + "/checkpoint"))
			if err != nil || c.Size <= old.Size {
				return fmt.Errorf("latest %+v (%v), kept at %d", c, err, old.Size)
			}
			return nil
		})
		raws, bodies := verifyByAPI(t, v, get, ch.name, ch.prefix, old)
		for i, b := range bodies {
			noDigest(fmt.Sprintf("%s list page %d", ch.name, i+1), b)
		}

		// The export covers everything up to the request, verifies
		// against the kept checkpoint and holds the listed bytes.
		raw := get(ch.prefix + "/export")
		noDigest(ch.name+" export (compressed)", raw)
		bundle, err := v.VerifyBundle(bytes.NewReader(raw), kept[ch.name])
		if err != nil {
			t.Fatalf("%s export: %v", ch.name, err)
		}
		m := bundle.Manifest
		if m.First != 1 || m.Size < uint64(len(raws)) {
			t.Fatalf("%s export covers %d..%d; the list had %d entries before it", ch.name, m.First, m.Size, len(raws))
		}
		for i, e := range raws {
			if !bytes.Equal(bundle.Entries[i], e) {
				t.Fatalf("%s seq %d: the export's entry differs from the list's raw", ch.name, i+1)
			}
		}
		for name, data := range bundle.Members {
			noDigest(ch.name+" export "+name, data)
		}

		if ch.name != "tenant:acme" {
			continue
		}
		// What the tenant chain says, by the spec's vocabulary; nothing
		// plain about the person.
		count := map[string]int{}
		for i, e := range raws {
			en, _ := auditverify.Decode(e)
			count[en.Action]++
			for _, plain := range []string{"jane", "nobody", "guest-1", "guest-nobody"} {
				if strings.Contains(strings.ToLower(string(e)), plain) {
					t.Errorf("seq %d holds %q: %s", i+1, plain, e)
				}
			}
			switch en.Action {
			case "blob.create":
				if !strings.HasPrefix(en.Details["digest"], "sha256:h:") || en.Details["sha256"] != "" {
					t.Errorf("blob.create details %v: want a keyed digest only", en.Details)
				}
			case "record.search":
				if en.Target != "collection:guests" || en.Details["field"] != "email" || !strings.HasPrefix(en.Details["value"], "value:h:") {
					t.Errorf("record.search %+v", en)
				}
			case "subject.read", "blob.list":
				if !strings.HasPrefix(en.Target, "subject:h:") {
					t.Errorf("%s %+v", en.Action, en)
				}
			}
		}
		for action, want := range map[string]int{"record.create": 1, "record.read": 1, "record.search": 2, "subject.read": 2, "blob.list": 4, "blob.create": 1, "blob.read": 1} {
			if count[action] != want {
				t.Errorf("%d %s entries in the tenant chain, want %d (all: %v)", count[action], action, want, count)
			}
		}
	}
}

// verifyByAPI checks a chain through the list, checkpoint and proof
// routes (§5): the latest checkpoint's signature and origin; every listed
// entry's raw bytes canonical and equal to its parsed form re-encoded, in
// sequence from 1; the tree and links recomputed from them matching the
// checkpoint; every covered entry's inclusion proof; a consistency proof
// from old, which must match the same recomputed history. It returns the
// listed raw entries and the list answers' bodies.
func verifyByAPI(t *testing.T, v *auditverify.Verifier, get func(string) []byte, chain, prefix string, old auditverify.Checkpoint) ([][]byte, [][]byte) {
	t.Helper()
	cp, err := v.OpenCheckpoint(get(prefix + "/checkpoint"))
	if err != nil || cp.Origin != v.Origin(chain) || cp.Size < old.Size {
		t.Fatalf("%s: checkpoint %+v %v", chain, cp, err)
	}
	type item struct {
		Seq   uint64            `json:"seq"`
		Entry auditverify.Entry `json:"entry"`
		Raw   []byte            `json:"raw"`
	}
	var raws, bodies [][]byte
	tree := auditverify.NewTree()
	var link [32]byte
	links := map[uint64][32]byte{}
	after := uint64(0)
	for {
		body := get(fmt.Sprintf("%s?limit=7&after=%d", prefix, after)) // small pages: the cursor is exercised
		bodies = append(bodies, body)
		var page struct {
			Entries []item `json:"entries"`
			Next    uint64 `json:"next"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&page); err != nil {
			t.Fatalf("%s list: %v", chain, err)
		}
		for _, it := range page.Entries {
			if it.Seq != uint64(len(raws))+1 {
				t.Fatalf("%s: seq %d after %d", chain, it.Seq, len(raws))
			}
			if _, err := auditverify.Decode(it.Raw); err != nil {
				t.Fatalf("%s seq %d: raw: %v", chain, it.Seq, err)
			}
			if enc, err := auditverify.Encode(it.Entry); err != nil || !bytes.Equal(enc, it.Raw) {
				t.Fatalf("%s seq %d: the parsed entry encodes to %s (%v), raw is %s", chain, it.Seq, enc, err, it.Raw)
			}
			leaf := auditverify.Leaf(it.Raw)
			if err := tree.Add(leaf); err != nil {
				t.Fatal(err)
			}
			link = auditverify.Link(link, leaf)
			links[it.Seq] = link
			raws = append(raws, it.Raw)
		}
		if page.Next == 0 {
			break
		}
		after = page.Next
	}
	if uint64(len(raws)) < cp.Size {
		t.Fatalf("%s: %d entries listed, the checkpoint signs %d", chain, len(raws), cp.Size)
	}
	for _, c := range []auditverify.Checkpoint{old, cp} {
		root, err := tree.Root(int64(c.Size))
		if err != nil || root != c.Root || links[c.Size] != c.Link {
			t.Fatalf("%s: the checkpoint at %d does not match the listed entries (%v)", chain, c.Size, err)
		}
	}
	type proof struct {
		Index      *uint64     `json:"index"`
		Old        uint64      `json:"old"`
		Size       uint64      `json:"size"`
		Root       tlog.Hash   `json:"root"`
		Entry      []byte      `json:"entry"`
		Proof      []tlog.Hash `json:"proof"`
		Checkpoint []byte      `json:"checkpoint"`
	}
	for i := uint64(0); i < cp.Size; i++ {
		var p proof
		if err := json.Unmarshal(get(fmt.Sprintf("%s/proof/inclusion?index=%d&size=%d", prefix, i, cp.Size)), &p); err != nil {
			t.Fatal(err)
		}
		if (i == 0) != (p.Index == nil) || (p.Index != nil && *p.Index != i) {
			t.Fatalf("%s inclusion %d: index %v (absent only for 0)", chain, i, p.Index)
		}
		if !bytes.Equal(p.Entry, raws[i]) || p.Size != cp.Size || p.Root != cp.Root {
			t.Fatalf("%s inclusion %d: entry or tree differs from the list and checkpoint", chain, i)
		}
		if err := tlog.CheckRecord(p.Proof, int64(cp.Size), cp.Root, int64(i), auditverify.Leaf(p.Entry)); err != nil {
			t.Fatalf("%s inclusion %d: %v", chain, i, err)
		}
		if pc, err := v.OpenCheckpoint(p.Checkpoint); err != nil || pc != cp {
			t.Fatalf("%s inclusion %d: its checkpoint %+v %v", chain, i, pc, err)
		}
	}
	// Without a size: against the latest checkpoint, which comes with it.
	var latest proof
	if err := json.Unmarshal(get(prefix+"/proof/inclusion?index=0"), &latest); err != nil {
		t.Fatal(err)
	}
	lc, err := v.OpenCheckpoint(latest.Checkpoint)
	if err != nil || lc.Size != latest.Size || lc.Root != latest.Root || !bytes.Equal(latest.Entry, raws[0]) {
		t.Fatalf("%s inclusion at the latest checkpoint: %+v %v", chain, lc, err)
	}
	if err := tlog.CheckRecord(latest.Proof, int64(lc.Size), lc.Root, 0, auditverify.Leaf(latest.Entry)); err != nil {
		t.Fatalf("%s inclusion at the latest checkpoint: %v", chain, err)
	}
	var cons proof
	if err := json.Unmarshal(get(fmt.Sprintf("%s/proof/consistency?old=%d&new=%d", prefix, old.Size, cp.Size)), &cons); err != nil {
		t.Fatal(err)
	}
	if cons.Old != old.Size || cons.Size != cp.Size || cons.Root != cp.Root {
		t.Fatalf("%s consistency: %+v", chain, cons)
	}
	if err := tlog.CheckTree(cons.Proof, int64(cp.Size), cp.Root, int64(old.Size), old.Root); err != nil {
		t.Fatalf("%s consistency %d -> %d: %v", chain, old.Size, cp.Size, err)
	}
	t.Logf("%s: %d entries listed; checkpoints at %d (kept) and %d verified with their proofs", chain, len(raws), old.Size, cp.Size)
	return raws, bodies
}
