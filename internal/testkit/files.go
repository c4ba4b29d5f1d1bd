package testkit

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// ScanFiles calls fn with the path and the raw contents of every regular
// file under dirs: how tests check that secrets never reach the disk in the
// clear (data directories, logs, snapshots). A file that disappears during
// the walk (a snapshot being written or reaped) is skipped; any other
// error fails tb.
func ScanFiles(tb testing.TB, fn func(path string, data []byte), dirs ...string) {
	tb.Helper()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			data, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			fn(p, data)
			return nil
		})
		if err != nil {
			tb.Fatalf("scan %s: %v", dir, err)
		}
	}
}

// FilesHolding lists the regular files under dirs whose raw bytes contain
// needle.
func FilesHolding(tb testing.TB, needle []byte, dirs ...string) []string {
	tb.Helper()
	var found []string
	ScanFiles(tb, func(p string, data []byte) {
		if bytes.Contains(data, needle) {
			found = append(found, p)
		}
	}, dirs...)
	return found
}
