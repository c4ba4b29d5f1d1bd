package receipt

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func seedNote(f *testing.F, p string) {
	b, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	n, err := note.Open(b, note.VerifierList())
	if n == nil {
		if u, ok := err.(*note.UnverifiedNoteError); ok {
			n = u.Note
		}
	}
	if n == nil {
		f.Fatalf("%s: %v", p, err)
	}
	f.Add(n.Text)
}

// FuzzParseManifest: a manifest text is refused or is valid and exactly
// its own canonical encoding.
func FuzzParseManifest(f *testing.F) {
	seedNote(f, filepath.Join(goldenExport, ManifestName))
	f.Add("custos-export-manifest v1\n")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseManifest(text)
		if err != nil {
			return
		}
		if err := m.Check(); err != nil || m.Text() != text {
			t.Fatalf("ParseManifest(%q) accepted %+v (check: %v)", text, m, err)
		}
	})
}

// FuzzParseReceipt: a receipt text is refused or is valid and exactly its
// own canonical encoding.
func FuzzParseReceipt(f *testing.F) {
	seedNote(f, goldenReceipt)
	f.Add("custos-erasure-receipt v1\n")
	f.Fuzz(func(t *testing.T, text string) {
		r, err := ParseReceipt(text)
		if err != nil {
			return
		}
		if err := r.Check(); err != nil || r.Text() != text {
			t.Fatalf("ParseReceipt(%q) accepted %+v (check: %v)", text, r, err)
		}
	})
}

// FuzzVerifyReceipt: a signed receipt the golden key accepts is one whose
// bytes are exactly the canonical note of its text.
func FuzzVerifyReceipt(f *testing.F) {
	good, err := os.ReadFile(goldenReceipt)
	if err != nil {
		f.Fatal(err)
	}
	key, err := os.ReadFile("testdata/audit.pub")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := VerifyReceipt(key, msg)
		if err != nil {
			return
		}
		if string(msg) != string(good) {
			t.Fatalf("VerifyReceipt accepted %q as %+v", msg, r)
		}
	})
}
