package receipt

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The golden artifacts are signed with testdata/test.key, a key made for
// these tests only; testdata/audit.pub is its verifier key, as `custos
// audit key` prints one.
const (
	goldenExport  = "testdata/export"
	goldenReceipt = "testdata/receipt.txt"
)

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signer(t *testing.T, keyFile string) note.Signer {
	t.Helper()
	s, err := note.NewSigner(strings.TrimSpace(string(readFile(t, keyFile))))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pub(t *testing.T) []byte { return readFile(t, "testdata/audit.pub") }

var (
	created = time.Date(2026, 12, 3, 14, 0, 0, 120000000, time.UTC)
	subject = "subject:h:q2Vf0fXlMZJ4Hn3rUJ0Z8w"
)

// manifestOf lists the files of dir (ManifestName excepted), as the export
// service will.
func manifestOf(t *testing.T, files fs.FS) Manifest {
	t.Helper()
	m := Manifest{Tenant: "acme-hotels", Subject: subject, Request: "dsr-2026-0042", Created: created,
		From: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == ManifestName {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, File{Path: p, Size: uint64(len(b)), SHA256: sha256.Sum256(b)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testReceipt() Receipt {
	r := Receipt{Tenant: "acme-hotels", Subject: subject, Request: "dsr-2026-0043", Erased: created, KeyShredded: true,
		Counts: []Count{{"blobs", 2}, {"consent-events", 5}, {"index-entries", 9}, {"records", 14}, {"refs-detached", 1}},
		Entry:  4711, Checkpoint: Checkpoint{Origin: "custos-audit-test-0a1b2c3d/tenant:acme-hotels", Size: 4712}}
	r.EntryHash = sha256.Sum256([]byte("entry"))
	r.Checkpoint.Root = sha256.Sum256([]byte("root"))
	return r
}

// golden compares got with the file at p, or rewrites it under -update.
func golden(t *testing.T, p string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := readFile(t, p); !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what is signed now (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", p, got, want)
	}
}

func TestManifestGolden(t *testing.T) {
	files := os.DirFS(goldenExport)
	msg, err := SignManifest(manifestOf(t, files), signer(t, "testdata/test.key"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join(goldenExport, ManifestName), msg)
	m, err := VerifyExport(pub(t), files)
	if err != nil {
		t.Fatalf("VerifyExport: %v", err)
	}
	if len(m.Files) != 4 || m.Tenant != "acme-hotels" || !m.Created.Equal(created) || !m.To.IsZero() {
		t.Fatalf("manifest read back as %+v", m)
	}
}

func TestReceiptGolden(t *testing.T) {
	msg, err := SignReceipt(testReceipt(), signer(t, "testdata/test.key"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, goldenReceipt, msg)
	r, err := VerifyReceipt(pub(t), msg)
	if err != nil {
		t.Fatalf("VerifyReceipt: %v", err)
	}
	want := testReceipt()
	if r.Text() != want.Text() || !r.Erased.Equal(want.Erased) {
		t.Fatalf("receipt read back as %+v", r)
	}
}

// memExport is the golden export in memory, manifest included.
func memExport(t *testing.T) fstest.MapFS {
	t.Helper()
	mfs := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(goldenExport), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		mfs[p] = &fstest.MapFile{Data: readFile(t, filepath.Join(goldenExport, filepath.FromSlash(p))), Mode: 0o644}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func clone(m fstest.MapFS) fstest.MapFS {
	c := fstest.MapFS{}
	for k, v := range m {
		c[k] = &fstest.MapFile{Data: bytes.Clone(v.Data), Mode: v.Mode}
	}
	return c
}

// TestManifestEveryByte: changing any byte of the signed manifest, or of
// any listed file, fails verification.
func TestManifestEveryByte(t *testing.T) {
	base := memExport(t)
	if _, err := VerifyExport(pub(t), base); err != nil {
		t.Fatal(err)
	}
	for name, f := range base {
		for i := range f.Data {
			for _, x := range []byte{0x01, 0x80} {
				c := clone(base)
				c[name].Data[i] ^= x
				if _, err := VerifyExport(pub(t), c); err == nil {
					t.Fatalf("%s: byte %d ^ %#x still verifies", name, i, x)
				} else if name != ManifestName && !errors.Is(err, ErrFileMismatch) {
					t.Fatalf("%s: byte %d ^ %#x: %v, want ErrFileMismatch", name, i, x, err)
				}
			}
			c := clone(base)
			c[name].Data = append(c[name].Data[:i:i], c[name].Data[i+1:]...)
			if _, err := VerifyExport(pub(t), c); err == nil {
				t.Fatalf("%s: without byte %d still verifies", name, i)
			}
		}
		c := clone(base)
		c[name].Data = append(c[name].Data, '\n')
		if _, err := VerifyExport(pub(t), c); err == nil {
			t.Fatalf("%s: with a byte appended still verifies", name)
		}
	}
}

func TestManifestCompleteness(t *testing.T) {
	cases := []struct {
		name   string
		change func(fstest.MapFS)
		want   error
	}{
		{"extra file", func(m fstest.MapFS) { m["records/notes.json"] = &fstest.MapFile{Data: []byte("{}")} }, ErrFileUnlisted},
		{"extra file at a depth", func(m fstest.MapFS) { m["blobs/x/y.bin"] = &fstest.MapFile{Data: nil} }, ErrFileUnlisted},
		{"missing file", func(m fstest.MapFS) { delete(m, "consent.json") }, ErrFileMissing},
		{"renamed file", func(m fstest.MapFS) { m["consent2.json"] = m["consent.json"]; delete(m, "consent.json") }, ErrFileUnlisted},
		{"swapped contents", func(m fstest.MapFS) {
			m["records/calls.csv"], m["records/guests.json"] = m["records/guests.json"], m["records/calls.csv"]
		}, ErrFileMismatch},
		{"symlink", func(m fstest.MapFS) { m["consent.json"].Mode = fs.ModeSymlink }, ErrFileMismatch},
		{"no manifest", func(m fstest.MapFS) { delete(m, ManifestName) }, ErrFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := clone(memExport(t))
			c.change(m)
			_, err := VerifyExport(pub(t), m)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestReceiptEveryByte(t *testing.T) {
	base := readFile(t, goldenReceipt)
	if _, err := VerifyReceipt(pub(t), base); err != nil {
		t.Fatal(err)
	}
	for i := range base {
		for _, x := range []byte{0x01, 0x02, 0x20, 0x80} {
			c := bytes.Clone(base)
			c[i] ^= x
			if _, err := VerifyReceipt(pub(t), c); err == nil {
				t.Fatalf("byte %d ^ %#x still verifies:\n%s", i, x, c)
			}
		}
		c := append(bytes.Clone(base[:i]), base[i+1:]...)
		if _, err := VerifyReceipt(pub(t), c); err == nil {
			t.Fatalf("without byte %d still verifies", i)
		}
	}
	if _, err := VerifyReceipt(pub(t), append(bytes.Clone(base), '\n')); err == nil {
		t.Fatal("with a newline appended still verifies")
	}
}

func TestSignatures(t *testing.T) {
	r := testReceipt()
	mine, other := signer(t, "testdata/test.key"), signer(t, "testdata/other.key")
	msg, err := SignReceipt(r, mine)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyReceipt(readFile(t, "testdata/other.pub"), msg); !errors.Is(err, ErrSignature) {
		t.Fatalf("another cluster's key: %v, want ErrSignature", err)
	}
	if _, err := VerifyReceipt([]byte("not a key"), msg); !errors.Is(err, ErrKey) {
		t.Fatalf("a malformed key: %v, want ErrKey", err)
	}
	cosigned, err := note.Sign(&note.Note{Text: r.Text()}, mine, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyReceipt(pub(t), cosigned); !errors.Is(err, ErrSignature) {
		t.Fatalf("a second signature: %v, want ErrSignature", err)
	}
	// Signed by the right key but naming another cluster's checkpoint.
	r.Checkpoint.Origin = "custos-audit-other-99887766/tenant:acme-hotels"
	if _, err := SignReceipt(r, mine); !errors.Is(err, ErrFormat) {
		t.Fatalf("SignReceipt with a foreign origin: %v", err)
	}
	forged, err := note.Sign(&note.Note{Text: r.Text()}, mine)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyReceipt(pub(t), forged); !errors.Is(err, ErrFormat) {
		t.Fatalf("a foreign origin: %v, want ErrFormat", err)
	}
}

func TestReceiptCheck(t *testing.T) {
	cases := map[string]func(*Receipt){
		"tenant":          func(r *Receipt) { r.Tenant = "Acme" },
		"subject":         func(r *Receipt) { r.Subject = "guest-1" },
		"subject hash":    func(r *Receipt) { r.Subject = "subject:h:short" },
		"request empty":   func(r *Receipt) { r.Request = "" },
		"request space":   func(r *Receipt) { r.Request = "a b" },
		"request long":    func(r *Receipt) { r.Request = strings.Repeat("a", 129) },
		"local time":      func(r *Receipt) { r.Erased = created.In(time.FixedZone("x", 3600)) },
		"zero time":       func(r *Receipt) { r.Erased = time.Time{} },
		"count kind":      func(r *Receipt) { r.Counts[0].Kind = "Blobs" },
		"counts unsorted": func(r *Receipt) { r.Counts[0], r.Counts[1] = r.Counts[1], r.Counts[0] },
		"counts repeated": func(r *Receipt) { r.Counts[1].Kind = r.Counts[0].Kind },
		"too many counts": func(r *Receipt) { r.Counts = make([]Count, MaxCounts+1) },
		"entry zero":      func(r *Receipt) { r.Entry = 0 },
		"entry beyond":    func(r *Receipt) { r.Checkpoint.Size = r.Entry - 1 },
		"origin chain":    func(r *Receipt) { r.Checkpoint.Origin = "custos-audit-test-0a1b2c3d/system" },
		"origin no key":   func(r *Receipt) { r.Checkpoint.Origin = "/tenant:acme-hotels" },
		"origin spaced":   func(r *Receipt) { r.Checkpoint.Origin = "a b/tenant:acme-hotels" },
		"other tenant's":  func(r *Receipt) { r.Checkpoint.Origin = "custos-audit-test-0a1b2c3d/tenant:other" },
	}
	s := signer(t, "testdata/test.key")
	for name, change := range cases {
		r := testReceipt()
		change(&r)
		if _, err := SignReceipt(r, s); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: SignReceipt = %v, want ErrFormat", name, err)
		}
	}
	r := testReceipt()
	r.Counts, r.KeyShredded = nil, false
	msg, err := SignReceipt(r, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := VerifyReceipt(pub(t), msg); err != nil || got.KeyShredded || len(got.Counts) != 0 {
		t.Fatalf("a receipt without counts: %+v, %v", got, err)
	}
}

func TestManifestCheck(t *testing.T) {
	cases := map[string]func(*Manifest){
		"tenant":         func(m *Manifest) { m.Tenant = "" },
		"subject":        func(m *Manifest) { m.Subject = "subject:h:q2Vf0fXlMZJ4Hn3rUJ0Z8=" },
		"request":        func(m *Manifest) { m.Request = "x\ny" },
		"range reversed": func(m *Manifest) { m.To = m.From.Add(-time.Nanosecond) },
		"range local":    func(m *Manifest) { m.From = m.From.Local().In(time.FixedZone("x", 60)) },
		"path absolute":  func(m *Manifest) { m.Files[0].Path = "/etc/passwd" },
		"path dotdot":    func(m *Manifest) { m.Files[0].Path = "../a" },
		"path space":     func(m *Manifest) { m.Files[0].Path = "a b" },
		"path backslash": func(m *Manifest) { m.Files[0].Path = `a\b` },
		"path manifest":  func(m *Manifest) { m.Files[0].Path = ManifestName },
		"path long":      func(m *Manifest) { m.Files[0].Path = strings.Repeat("a", MaxPathLen+1) },
		"files unsorted": func(m *Manifest) { m.Files[0], m.Files[1] = m.Files[1], m.Files[0] },
		"files repeated": func(m *Manifest) { m.Files[1].Path = m.Files[0].Path },
	}
	s := signer(t, "testdata/test.key")
	for name, change := range cases {
		m := manifestOf(t, os.DirFS(goldenExport))
		change(&m)
		if _, err := SignManifest(m, s); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: SignManifest = %v, want ErrFormat", name, err)
		}
	}
	m := Manifest{Tenant: "t1", Subject: subject, Request: "r", Created: created, From: created, To: created}
	msg, err := SignManifest(m, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := VerifyManifest(pub(t), msg, fstest.MapFS{}); err != nil || !got.From.Equal(created) || len(got.Files) != 0 {
		t.Fatalf("an empty export: %+v, %v", got, err)
	}
}

func TestParseRejects(t *testing.T) {
	good := testReceipt().Text()
	for name, text := range map[string]string{
		"no final newline": strings.TrimSuffix(good, "\n"),
		"crlf":             strings.ReplaceAll(good, "\n", "\r\n"),
		"version 2":        strings.Replace(good, " v1\n", " v2\n", 1),
		"double space":     strings.Replace(good, "tenant ", "tenant  ", 1),
		"leading zero":     strings.Replace(good, "count blobs 2", "count blobs 02", 1),
		"short time":       strings.Replace(good, ".120000000Z", ".12Z", 1),
		"offset time":      strings.Replace(good, ".120000000Z", ".120000000+00:00", 1),
		"shredded maybe":   strings.Replace(good, "key-shredded yes", "key-shredded maybe", 1),
		"lines reordered":  strings.Replace(strings.Replace(good, "tenant acme-hotels\n", "", 1), "request ", "tenant acme-hotels\nrequest ", 1),
		"blank line":       strings.Replace(good, "count blobs", "\ncount blobs", 1),
		"extra line":       good + "note hello\n",
		"empty":            "",
	} {
		if _, err := ParseReceipt(text); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: ParseReceipt = %v, want ErrFormat", name, err)
		}
	}
	m := manifestOf(t, os.DirFS(goldenExport)).Text()
	for name, text := range map[string]string{
		"count too high":  strings.Replace(m, "files 4\n", "files 5\n", 1),
		"count too low":   strings.Replace(m, "files 4\n", "files 3\n", 1),
		"count huge":      strings.Replace(m, "files 4\n", "files 99999999999\n", 1),
		"upper-case hash": strings.Replace(m, "\n"+m[strings.Index(m, "files 4\n")+8:][:2], "\nAB", 1),
		"range open one":  strings.Replace(m, " -\n", "\n", 1),
	} {
		if _, err := ParseManifest(text); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: ParseManifest = %v, want ErrFormat", name, err)
		}
	}
}

func zipOf(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		f, err := w.Create(e[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestZip(t *testing.T) {
	var entries [][2]string
	for name, f := range memExport(t) {
		entries = append(entries, [2]string{name, string(f.Data)})
	}
	good := zipOf(t, entries...)
	fsys, err := ZipFS(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyExport(pub(t), fsys); err != nil {
		t.Fatalf("the export as a zip: %v", err)
	}
	for name, bad := range map[string][][2]string{
		"duplicate":         append(entries[:len(entries):len(entries)], entries[0]),
		"dotdot":            {{"../x", ""}},
		"absolute":          {{"/x", ""}},
		"backslash":         {{`a\b`, ""}},
		"file and dir":      {{"a", ""}, {"a/b", ""}},
		"file and dir name": {{"a", ""}, {"a/", ""}},
	} {
		z := zipOf(t, bad...)
		if _, err := ZipFS(bytes.NewReader(z), int64(len(z))); !errors.Is(err, ErrArchive) {
			t.Errorf("%s: ZipFS = %v, want ErrArchive", name, err)
		}
	}
	if _, err := ZipFS(bytes.NewReader([]byte("PK not a zip")), 12); !errors.Is(err, ErrArchive) {
		t.Errorf("not a zip: %v", err)
	}
}

// TestSpecVectors: the specification quotes the golden files verbatim, so
// the text and the code cannot drift apart.
func TestSpecVectors(t *testing.T) {
	spec := string(readFile(t, "../../../docs/privacy-artifacts.md"))
	manifest := string(readFile(t, filepath.Join(goldenExport, ManifestName)))
	for name, want := range map[string]string{
		"manifest text":   manifest[:strings.Index(manifest, "\n\n")+1],
		"receipt":         string(readFile(t, goldenReceipt)),
		"verifier key":    string(pub(t)),
		"manifest header": manifestHeader + "\n",
		"receipt header":  receiptHeader + "\n",
	} {
		if !strings.Contains(spec, "\n"+want) {
			t.Errorf("docs/privacy-artifacts.md does not quote the %s:\n%s", name, want)
		}
	}
}
