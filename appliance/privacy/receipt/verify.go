package receipt

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// VerifyManifest verifies an export offline with the verifier key keyText
// (the text `custos audit key` prints): the manifest's signature, then
// every listed file's size and SHA-256 in files, then that files holds no
// regular file the manifest does not list (ManifestName at the root
// excepted). Directories are not files. It reports the first failure, a
// *FileError where a file is at fault.
func VerifyManifest(keyText, manifest []byte, files fs.FS) (Manifest, error) {
	m, err := OpenManifest(keyText, manifest)
	if err != nil {
		return Manifest{}, err
	}
	listed := make(map[string]File, len(m.Files))
	for _, f := range m.Files {
		listed[f.Path] = f
	}
	seen := make(map[string]bool, len(m.Files))
	err = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return &FileError{Path: p, Err: fmt.Errorf("%w: %v", ErrFileMissing, err)}
		}
		if d.IsDir() || p == ManifestName {
			return nil
		}
		want, ok := listed[p]
		switch {
		case !ok:
			return &FileError{Path: p, Err: ErrFileUnlisted}
		case !d.Type().IsRegular():
			return &FileError{Path: p, Err: fmt.Errorf("%w: not a regular file", ErrFileMismatch)}
		}
		seen[p] = true
		return checkFile(files, want)
	})
	if err != nil {
		return Manifest{}, err
	}
	for _, f := range m.Files {
		if !seen[f.Path] {
			return Manifest{}, &FileError{Path: f.Path, Err: ErrFileMissing}
		}
	}
	return m, nil
}

// checkFile compares one file with its manifest line, reading at most one
// byte more than the listed size.
func checkFile(files fs.FS, want File) error {
	f, err := files.Open(want.Path)
	if err != nil {
		return &FileError{Path: want.Path, Err: fmt.Errorf("%w: %v", ErrFileMissing, err)}
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, int64(min(want.Size, 1<<62))+1))
	if err != nil {
		return &FileError{Path: want.Path, Err: fmt.Errorf("%w: read: %v", ErrFileMismatch, err)}
	}
	if uint64(n) != want.Size {
		return &FileError{Path: want.Path, Err: fmt.Errorf("%w: size differs from the listed %d bytes", ErrFileMismatch, want.Size)}
	}
	if !bytes.Equal(h.Sum(nil), want.SHA256[:]) {
		return &FileError{Path: want.Path, Err: fmt.Errorf("%w: SHA-256 differs", ErrFileMismatch)}
	}
	return nil
}

// VerifyExport verifies an export laid out as Custos writes it: the
// signed manifest at ManifestName, the files it lists beside it.
func VerifyExport(keyText []byte, files fs.FS) (Manifest, error) {
	msg, err := fs.ReadFile(files, ManifestName)
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, fmt.Errorf("%w: no %s in the export", ErrFormat, ManifestName)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("receipt: read %s: %w", ManifestName, err)
	}
	return VerifyManifest(keyText, msg, files)
}

// ZipFS opens a zip export as a file system, refusing archives whose
// entries a verifier could not check unambiguously: duplicate names,
// names that are not local slash paths, a name both a file and a
// directory, entries neither regular files nor directories.
func ZipFS(r io.ReaderAt, size int64) (fs.FS, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("%w: %v", ErrArchive, err)
	}
	files := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range zr.File {
		name, isDir := strings.CutSuffix(f.Name, "/")
		mode := f.Mode()
		switch {
		case !fs.ValidPath(name) || name == "." || strings.Contains(name, "\\"):
			return nil, fmt.Errorf("%w: entry name %q", ErrArchive, f.Name)
		case isDir != mode.IsDir() || (!mode.IsDir() && !mode.IsRegular()):
			return nil, fmt.Errorf("%w: entry %q is neither a regular file nor a directory", ErrArchive, f.Name)
		case files[name] || dirs[name] && !isDir:
			return nil, fmt.Errorf("%w: entry %q repeated", ErrArchive, f.Name)
		}
		if isDir {
			dirs[name] = true
		} else {
			files[name] = true
		}
	}
	for name := range files {
		if dirs[name] {
			return nil, fmt.Errorf("%w: %q is both a file and a directory", ErrArchive, name)
		}
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if files[d] {
				return nil, fmt.Errorf("%w: %q is both a file and a directory", ErrArchive, d)
			}
		}
	}
	return zr, nil
}
