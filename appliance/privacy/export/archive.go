package export

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/custos/custos/appliance/privacy/receipt"
)

// archive writes an export's files one after another, hashing each (the
// manifest's lines), into a zip or a gzip'd tar. Files are written whole
// and in turn: the next create ends the previous file.
type archive struct {
	pkg     Packaging
	mod     time.Time // every entry's time: the export's
	zw      *zip.Writer
	tw      *tar.Writer
	gz      *gzip.Writer
	spool   string // tar: where a file waits until its size is known
	cur     *entry
	files   []receipt.File
	written int64 // plaintext bytes of the files so far
}

// entry is the file being written.
type entry struct {
	path string
	h    hash.Hash
	n    int64
	w    io.Writer // zip: the entry's writer; tar: the spool file
	tmp  *os.File  // tar only
}

func (e *entry) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	e.h.Write(p[:n])
	e.n += int64(n)
	return n, err
}

// newArchive starts an archive on w. A tar needs each file's size before
// its bytes, so its files are spooled in spoolDir ("" : the system's
// temporary directory) one at a time, never in memory; a zip is written
// straight through (sizes after the data).
func newArchive(w io.Writer, pkg Packaging, mod time.Time, spoolDir string) *archive {
	a := &archive{pkg: pkg, mod: mod.UTC(), spool: spoolDir}
	switch pkg {
	case PackageZip:
		a.zw = zip.NewWriter(w)
	default:
		a.gz = gzip.NewWriter(w)
		a.tw = tar.NewWriter(a.gz)
	}
	return a
}

// create starts the file at path (relative, slash-separated), ending the
// previous one.
func (a *archive) create(path string) (io.Writer, error) {
	if err := a.end(); err != nil {
		return nil, err
	}
	e := &entry{path: path, h: sha256.New()}
	if a.zw != nil {
		w, err := a.zw.CreateHeader(&zip.FileHeader{Name: path, Method: zip.Deflate, Modified: a.mod})
		if err != nil {
			return nil, fmt.Errorf("export: zip %s: %w", path, err)
		}
		e.w = w
	} else {
		f, err := os.CreateTemp(a.spool, "custos-export-*")
		if err != nil {
			return nil, fmt.Errorf("export: spool %s: %w", path, err)
		}
		// Unlinked at once where the system allows: nothing is left
		// behind if the process dies.
		_ = os.Remove(f.Name())
		e.w, e.tmp = f, f
	}
	a.cur = e
	return e, nil
}

// end finishes the current file: records its line and, for a tar, copies
// the spooled bytes in.
func (a *archive) end() error {
	e := a.cur
	if e == nil {
		return nil
	}
	a.cur = nil
	var sum [32]byte
	copy(sum[:], e.h.Sum(nil))
	a.files = append(a.files, receipt.File{Path: e.path, Size: uint64(e.n), SHA256: sum})
	a.written += e.n
	if e.tmp == nil {
		return nil
	}
	defer e.tmp.Close()
	if err := a.tw.WriteHeader(&tar.Header{Name: e.path, Mode: 0o644, Size: e.n, ModTime: a.mod, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("export: tar %s: %w", e.path, err)
	}
	if _, err := e.tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("export: spool %s: %w", e.path, err)
	}
	if _, err := io.Copy(a.tw, e.tmp); err != nil {
		return fmt.Errorf("export: tar %s: %w", e.path, err)
	}
	return nil
}

// finish ends the last file and returns the files written.
func (a *archive) finish() ([]receipt.File, error) {
	if err := a.end(); err != nil {
		return nil, err
	}
	return a.files, nil
}

// writeManifest writes the signed manifest (unlisted, at the root) and
// closes the archive.
func (a *archive) writeManifest(signed []byte) error {
	if err := a.end(); err != nil {
		return err
	}
	if a.zw != nil {
		w, err := a.zw.CreateHeader(&zip.FileHeader{Name: receipt.ManifestName, Method: zip.Deflate, Modified: a.mod})
		if err == nil {
			_, err = w.Write(signed)
		}
		if err == nil {
			err = a.zw.Close()
		}
		if err != nil {
			return fmt.Errorf("export: zip manifest: %w", err)
		}
		return nil
	}
	err := a.tw.WriteHeader(&tar.Header{Name: receipt.ManifestName, Mode: 0o644, Size: int64(len(signed)), ModTime: a.mod, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
	if err == nil {
		_, err = a.tw.Write(signed)
	}
	if err == nil {
		err = a.tw.Close()
	}
	if err == nil {
		err = a.gz.Close()
	}
	if err != nil {
		return fmt.Errorf("export: tar manifest: %w", err)
	}
	return nil
}

// abort releases what an unfinished archive holds (a spooled file).
func (a *archive) abort() {
	if a.cur != nil && a.cur.tmp != nil {
		a.cur.tmp.Close()
	}
	a.cur = nil
}
