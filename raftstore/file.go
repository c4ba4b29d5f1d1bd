package raftstore

import (
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data (mode 0600) so that a crash
// leaves either the old or the new file, never a torn one: it writes a
// temporary file beside it, fsyncs it, renames it over path and fsyncs the
// directory. The node's small state files (credentials, the keyring's
// compaction mark, the audit witness) are written with it.
func WriteFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
