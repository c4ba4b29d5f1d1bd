package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/receipt"
)

// runOffline runs the CLI with no server reachable: CUSTOS_ADDR names a
// closed port, and HOME an empty directory, so no session is found.
func runOffline(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb, []string{"CUSTOS_ADDR=http://127.0.0.1:1", "HOME=" + t.TempDir()})
	root.SetArgs(args)
	err := root.Execute()
	return out.String() + errb.String(), err
}

// dsrFixture writes a cluster's audit key, a signed export (as a directory
// and as a zip) and a signed erasure receipt into a temporary directory.
func dsrFixture(t *testing.T) (pub, exportDir, exportZip, receiptFile string) {
	t.Helper()
	dir := t.TempDir()
	name, err := audit.KeyName("test")
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := audit.NewKeys(name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	pub = filepath.Join(dir, "audit.pub")
	write(t, pub, []byte(vkey+"\n"))

	files := map[string]string{"records/guests.json": `[{"id":"g-1"}]`, "blobs/b-1.wav": "RIFF....", "consent.json": "[]"}
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	m := receipt.Manifest{Tenant: "acme", Subject: "subject:h:q2Vf0fXlMZJ4Hn3rUJ0Z8w", Request: "dsr-1", Created: now}
	for _, p := range []string{"blobs/b-1.wav", "consent.json", "records/guests.json"} {
		m.Files = append(m.Files, receipt.File{Path: p, Size: uint64(len(files[p])), SHA256: sha256.Sum256([]byte(files[p]))})
	}
	msg, err := receipt.SignManifest(m, signer)
	if err != nil {
		t.Fatal(err)
	}
	files[receipt.ManifestName] = string(msg)
	exportDir = filepath.Join(dir, "export")
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for p, data := range files {
		write(t, filepath.Join(exportDir, filepath.FromSlash(p)), []byte(data))
		w, err := zw.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	exportZip = filepath.Join(dir, "export.zip")
	write(t, exportZip, zbuf.Bytes())

	r := receipt.Receipt{Tenant: "acme", Subject: m.Subject, Request: "dsr-2", Erased: now, KeyShredded: true,
		Counts: []receipt.Count{{Kind: "blobs", N: 1}, {Kind: "records", N: 3}}, Entry: 9,
		Checkpoint: receipt.Checkpoint{Origin: audit.Origin(name, "tenant:acme"), Size: 10}}
	rmsg, err := receipt.SignReceipt(r, signer)
	if err != nil {
		t.Fatal(err)
	}
	receiptFile = filepath.Join(dir, "receipt.txt")
	write(t, receiptFile, rmsg)
	return pub, exportDir, exportZip, receiptFile
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDSRVerifyExportOffline(t *testing.T) {
	pub, exportDir, exportZip, _ := dsrFixture(t)
	for _, target := range []string{exportDir, exportZip} {
		out, err := runOffline(t, "dsr", "verify-export", "--key", pub, target)
		if err != nil || !strings.Contains(out, "OK: export of subject:h:q2Vf0fXlMZJ4Hn3rUJ0Z8w for tenant acme") || !strings.Contains(out, "3 files") {
			t.Fatalf("verify-export %s: %v\n%s", target, err, out)
		}
	}
	out, err := runOffline(t, "--format", "json", "dsr", "verify-export", "--key", pub, exportDir)
	if err != nil || !strings.Contains(out, `"path": "records/guests.json"`) {
		t.Fatalf("verify-export --format json: %v\n%s", err, out)
	}

	// One byte of one file changed; a file added; a file removed.
	guests := filepath.Join(exportDir, "records", "guests.json")
	write(t, guests, []byte(`[{"id":"g-2"}]`))
	if out, err := runOffline(t, "dsr", "verify-export", "--key", pub, exportDir); err == nil ||
		!strings.Contains(err.Error(), "NOT a valid export") || !strings.Contains(err.Error(), "records/guests.json") {
		t.Fatalf("an altered file: %v\n%s", err, out)
	}
	write(t, guests, []byte(`[{"id":"g-1"}]`))
	write(t, filepath.Join(exportDir, "records", "other.json"), []byte("{}"))
	if _, err := runOffline(t, "dsr", "verify-export", "--key", pub, exportDir); err == nil || !strings.Contains(err.Error(), "not listed") {
		t.Fatalf("an unlisted file: %v", err)
	}
	os.Remove(filepath.Join(exportDir, "records", "other.json"))
	os.Remove(filepath.Join(exportDir, "consent.json"))
	if _, err := runOffline(t, "dsr", "verify-export", "--key", pub, exportDir); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a missing file: %v", err)
	}

	// Another cluster's key; no key.
	otherPub, _, _, _ := dsrFixture(t)
	if _, err := runOffline(t, "dsr", "verify-export", "--key", otherPub, exportZip); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("another cluster's key: %v", err)
	}
	if _, err := runOffline(t, "dsr", "verify-export", exportZip); err == nil || !strings.Contains(err.Error(), "--key") {
		t.Fatalf("no key: %v", err)
	}
}

func TestDSRVerifyReceiptOffline(t *testing.T) {
	pub, _, _, receiptFile := dsrFixture(t)
	out, err := runOffline(t, "dsr", "verify-receipt", "--key", pub, receiptFile)
	if err != nil || !strings.Contains(out, "OK: subject:h:q2Vf0fXlMZJ4Hn3rUJ0Z8w erased from tenant acme") ||
		!strings.Contains(out, "blobs 1, records 3") || !strings.Contains(out, "data key shredded") {
		t.Fatalf("verify-receipt: %v\n%s", err, out)
	}
	out, err = runOffline(t, "--format", "json", "dsr", "verify-receipt", "--key", pub, receiptFile)
	if err != nil || !strings.Contains(out, `"records": 3`) || !strings.Contains(out, `"audit_entry": 9`) {
		t.Fatalf("verify-receipt --format json: %v\n%s", err, out)
	}
	good, err := os.ReadFile(receiptFile)
	if err != nil {
		t.Fatal(err)
	}
	// Every byte changed in turn: each fails, and says so.
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		write(t, receiptFile, bad)
		if _, err := runOffline(t, "dsr", "verify-receipt", "--key", pub, receiptFile); err == nil || !strings.Contains(err.Error(), "NOT a valid erasure receipt") {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
}

// tarGz packs files (path -> data) as a gzip'd tar, as the server's gzip
// packaging does.
func tarGz(t *testing.T, entries [][2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, en := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: en[0], Mode: 0o644, Size: int64(len(en[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(en[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDSRVerifyExportTarGz: a .tar.gz export verifies as its directory
// does; one with a changed file, an extra file or an entry that escapes
// its directory does not.
func TestDSRVerifyExportTarGz(t *testing.T) {
	pub, exportDir, _, _ := dsrFixture(t)
	var entries [][2]string
	if err := filepath.WalkDir(exportDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(exportDir, p)
		entries = append(entries, [2]string{filepath.ToSlash(rel), string(b)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		entries [][2]string
		fails   string
	}{
		{"whole", entries, ""},
		{"changed", append(slices.Clone(entries[:len(entries)-1]), [2]string{entries[len(entries)-1][0], "changed"}), "NOT a valid export"},
		{"extra", append(slices.Clone(entries), [2]string{"records/extra.json", "[]"}), "not listed"},
		{"escaping", append(slices.Clone(entries), [2]string{"../evil", "x"}), "not a single local path"},
	} {
		p := filepath.Join(dir, c.name+".tar.gz")
		write(t, p, tarGz(t, c.entries))
		out, err := runOffline(t, "dsr", "verify-export", "--key", pub, p)
		switch {
		case c.fails == "" && err != nil:
			t.Errorf("%s: %v\n%s", c.name, err, out)
		case c.fails != "" && (err == nil || !strings.Contains(err.Error(), c.fails)):
			t.Errorf("%s: %v, want %q", c.name, err, c.fails)
		}
	}
}
