package receipt

import (
	"encoding/hex"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custos/custos/internal/tenancy"
)

// ManifestName is the manifest's file name at the root of an export; it
// is the one file an export holds that the manifest does not list.
const ManifestName = "MANIFEST.txt"

// Bounds of a manifest.
const (
	// MaxFiles is the most files one manifest lists.
	MaxFiles = 1 << 20
	// MaxPathLen is the longest file path, in bytes.
	MaxPathLen = 512
	// MaxManifestBytes bounds a signed manifest: MaxFiles lines of the
	// longest path, and the header and signature.
	MaxManifestBytes = MaxFiles*(64+1+20+1+MaxPathLen+1) + 4096
)

const manifestHeader = "custos-export-manifest v1"

// Manifest lists every file of a data-subject export. From and To bound
// the export's date range; a zero time is an open end.
type Manifest struct {
	Tenant  string    // the tenant's id
	Subject string    // the subject's audit pseudonym (audit.Pseudonym, kind "subject")
	Request string    // the data-subject request's id
	Created time.Time // when the export was made, UTC
	From    time.Time // the range's first instant, or zero
	To      time.Time // the range's last instant, or zero
	Files   []File    // sorted by Path (bytewise), unique
}

// File is one file of an export.
type File struct {
	Path   string   // slash-separated, relative (io/fs.ValidPath), of [A-Za-z0-9._-/]
	Size   uint64   // bytes
	SHA256 [32]byte // of the file's bytes
}

// Text is the manifest's canonical text (the signed body). m must be
// valid (Check).
func (m Manifest) Text() string {
	var b strings.Builder
	b.Grow(256 + len(m.Files)*(64+24+32))
	b.WriteString(manifestHeader + "\n")
	b.WriteString("tenant " + m.Tenant + "\n")
	b.WriteString("subject " + m.Subject + "\n")
	b.WriteString("request " + m.Request + "\n")
	b.WriteString("created " + formatTime(m.Created) + "\n")
	b.WriteString("range " + openEnd(m.From) + " " + openEnd(m.To) + "\n")
	b.WriteString("files " + strconv.Itoa(len(m.Files)) + "\n")
	for _, f := range m.Files {
		b.WriteString(hex.EncodeToString(f.SHA256[:]) + " " + strconv.FormatUint(f.Size, 10) + " " + f.Path + "\n")
	}
	return b.String()
}

func openEnd(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return formatTime(t)
}

// Check reports whether m can be encoded: every field well formed and
// within bounds, files sorted and unique, none named ManifestName.
func (m Manifest) Check() error {
	if !tenancy.ValidID(m.Tenant) {
		return fmt.Errorf("%w: tenant %q", ErrFormat, m.Tenant)
	}
	if err := checkPseudonym(m.Subject); err != nil {
		return err
	}
	if err := checkRequestID(m.Request); err != nil {
		return err
	}
	if err := checkTime("created", m.Created); err != nil {
		return err
	}
	for _, t := range []time.Time{m.From, m.To} {
		if !t.IsZero() {
			if err := checkTime("range", t); err != nil {
				return err
			}
		}
	}
	if !m.From.IsZero() && !m.To.IsZero() && m.To.Before(m.From) {
		return fmt.Errorf("%w: range ends before it starts", ErrFormat)
	}
	if len(m.Files) > MaxFiles {
		return fmt.Errorf("%w: %d files, at most %d", ErrFormat, len(m.Files), MaxFiles)
	}
	for i, f := range m.Files {
		if err := checkPath(f.Path); err != nil {
			return err
		}
		if i > 0 && m.Files[i-1].Path >= f.Path {
			return fmt.Errorf("%w: files not sorted by path or repeated at %q", ErrFormat, f.Path)
		}
	}
	return nil
}

// checkPath: a relative slash path (io/fs.ValidPath, not "."), of
// [A-Za-z0-9._-] and '/', at most MaxPathLen bytes, not the manifest's.
func checkPath(p string) error {
	ok := len(p) <= MaxPathLen && p != "." && p != ManifestName && fs.ValidPath(p)
	for i := 0; ok && i < len(p); i++ {
		c := p[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-/", c) >= 0
	}
	if !ok {
		return fmt.Errorf("%w: file path %q", ErrFormat, p)
	}
	return nil
}

// SignManifest checks m and signs its text with the cluster's audit key.
func SignManifest(m Manifest, signer note.Signer) ([]byte, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	return sign(m.Text(), signer)
}

// ParseManifest reads a manifest's text (not its signature: see
// OpenManifest), accepting only its canonical form.
func ParseManifest(text string) (Manifest, error) {
	var m Manifest
	l := newLines(text)
	if h := l.next("custos-export-manifest", 1); h != nil && h[0] != "v1" {
		l.fail("unknown version %q", h[0])
	}
	if f := l.next("tenant", 1); f != nil {
		m.Tenant = f[0]
	}
	if f := l.next("subject", 1); f != nil {
		m.Subject = f[0]
	}
	if f := l.next("request", 1); f != nil {
		m.Request = f[0]
	}
	if f := l.next("created", 1); f != nil {
		m.Created = l.time("created", f[0])
	}
	if f := l.next("range", 2); f != nil {
		if f[0] != "-" {
			m.From = l.time("range start", f[0])
		}
		if f[1] != "-" {
			m.To = l.time("range end", f[1])
		}
	}
	var n uint64
	if f := l.next("files", 1); f != nil {
		n = l.uint("file count", f[0])
	}
	if l.err == nil && (n > MaxFiles || n != uint64(len(l.rest))) {
		l.fail("file count %d: %d file lines follow, at most %d allowed", n, len(l.rest), MaxFiles)
	}
	if l.err == nil {
		m.Files = make([]File, 0, n)
	}
	for l.err == nil && len(l.rest) > 0 {
		f := strings.SplitN(l.rest[0], " ", 3)
		if len(f) != 3 {
			l.fail("file line %q", l.rest[0])
			break
		}
		var file File
		l.hash("sha256", f[0], file.SHA256[:], true)
		file.Size = l.uint("size", f[1])
		file.Path = f[2]
		m.Files = append(m.Files, file)
		l.rest = l.rest[1:]
	}
	if err := l.end(); err != nil {
		return Manifest{}, err
	}
	if err := m.Check(); err != nil {
		return Manifest{}, err
	}
	if m.Text() != text {
		return Manifest{}, fmt.Errorf("%w: manifest not in canonical form", ErrFormat)
	}
	return m, nil
}

// OpenManifest verifies a signed manifest with the verifier key keyText
// (the text `custos audit key` prints) and parses it.
func OpenManifest(keyText, msg []byte) (Manifest, error) {
	text, _, err := open(keyText, msg, MaxManifestBytes)
	if err != nil {
		return Manifest{}, err
	}
	return ParseManifest(text)
}
