package receipt

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custos/custos/appliance/audit"
)

// timeLayout is the one form of a time in an artifact: UTC, nine
// fractional digits, 'Z' — the audit entries' form.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Bounds of the fields of both artifacts.
const (
	maxRequestID = 128
	maxKindLen   = 32
	// pseudonymHashLen is the base64url (unpadded) length of the 16 bytes
	// of an audit pseudonym.
	pseudonymHashLen = 22
)

// sign signs text (already in canonical form) with signer.
func sign(text string, signer note.Signer) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		return nil, fmt.Errorf("receipt: sign: %w", err)
	}
	return msg, nil
}

// open verifies msg, bounded by maxLen bytes, with the verifier key
// keyText and returns its text and the verifier. It accepts exactly one
// signature, by that key, in canonical base64: a second signature or an
// alternative spelling of the one signature would be bytes that change
// without failing verification.
func open(keyText, msg []byte, maxLen int) (string, note.Verifier, error) {
	v, err := audit.Verifier(keyText)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	if len(msg) > maxLen {
		return "", nil, fmt.Errorf("%w: %d bytes, at most %d", ErrFormat, len(msg), maxLen)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		return "", nil, fmt.Errorf("%w: want exactly one signature, by %s", ErrSignature, v.Name())
	}
	s := n.Sigs[0]
	raw, err := base64.StdEncoding.DecodeString(s.Base64)
	if err != nil || base64.StdEncoding.EncodeToString(raw) != s.Base64 {
		return "", nil, fmt.Errorf("%w: signature not in canonical base64", ErrSignature)
	}
	if want := n.Text + "\n— " + s.Name + " " + s.Base64 + "\n"; !bytes.Equal(msg, []byte(want)) {
		return "", nil, fmt.Errorf("%w: not in canonical form", ErrSignature)
	}
	return n.Text, v, nil
}

// lines reads a text line by line, keyword first.
type lines struct {
	rest []string
	err  error
}

func newLines(text string) *lines {
	ls := strings.Split(text, "\n")
	if len(ls) < 2 || ls[len(ls)-1] != "" {
		return &lines{err: fmt.Errorf("%w: the text must end with a newline", ErrFormat)}
	}
	return &lines{rest: ls[:len(ls)-1]}
}

// next returns the fields of the next line, which must start with key and
// have n fields after it.
func (l *lines) next(key string, n int) []string {
	if l.err != nil {
		return nil
	}
	if len(l.rest) == 0 {
		l.err = fmt.Errorf("%w: missing %q line", ErrFormat, key)
		return nil
	}
	f := strings.Split(l.rest[0], " ")
	if f[0] != key || len(f) != n+1 {
		l.err = fmt.Errorf("%w: want a %q line with %d fields, got %q", ErrFormat, key, n, l.rest[0])
		return nil
	}
	l.rest = l.rest[1:]
	return f[1:]
}

// peek reports whether the next line starts with key and a space.
func (l *lines) peek(key string) bool {
	return l.err == nil && len(l.rest) > 0 && strings.HasPrefix(l.rest[0], key+" ")
}

func (l *lines) end() error {
	if l.err == nil && len(l.rest) != 0 {
		l.err = fmt.Errorf("%w: unexpected line %q", ErrFormat, l.rest[0])
	}
	return l.err
}

func (l *lines) fail(format string, args ...any) {
	if l.err == nil {
		l.err = fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
	}
}

func (l *lines) uint(what, s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		l.fail("%s %q is not a canonical decimal", what, s)
	}
	return n
}

func (l *lines) time(what, s string) time.Time {
	t, err := time.Parse(timeLayout, s)
	if err != nil || formatTime(t) != s {
		l.fail("%s %q is not a time of the form %s", what, s, timeLayout)
	}
	return t
}

func (l *lines) hash(what, s string, dst []byte, hexa bool) {
	var b []byte
	var err error
	if hexa {
		b, err = hex.DecodeString(s)
		if err == nil && hex.EncodeToString(b) != s {
			err = fmt.Errorf("not lower-case")
		}
	} else {
		b, err = base64.StdEncoding.DecodeString(s)
		if err == nil && base64.StdEncoding.EncodeToString(b) != s {
			err = fmt.Errorf("not canonical")
		}
	}
	if err != nil || len(b) != len(dst) {
		l.fail("%s %q is not %d bytes", what, s, len(dst))
		return
	}
	copy(dst, b)
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// checkTime: a time an artifact can carry — UTC, between 1970 and 9999.
func checkTime(what string, t time.Time) error {
	if t.Location() != time.UTC || t.Year() < 1970 || t.Year() > 9999 {
		return fmt.Errorf("%w: %s %v: want a UTC time in years 1970 to 9999", ErrFormat, what, t)
	}
	return nil
}

// checkPseudonym: an audit pseudonym (audit.Pseudonym): kind, ":h:", 22
// base64url characters.
func checkPseudonym(p string) error {
	kind, h, ok := strings.Cut(p, ":h:")
	if !ok || !validKind(kind) || len(h) != pseudonymHashLen {
		return fmt.Errorf("%w: subject %q is not an audit pseudonym", ErrFormat, p)
	}
	if b, err := base64.RawURLEncoding.DecodeString(h); err != nil || base64.RawURLEncoding.EncodeToString(b) != h {
		return fmt.Errorf("%w: subject %q is not an audit pseudonym", ErrFormat, p)
	}
	return nil
}

// validKind: ^[a-z][a-z0-9-]{0,31}$ — a pseudonym's kind, a count's kind.
func validKind(k string) bool {
	if len(k) == 0 || len(k) > maxKindLen || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		if c := k[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// checkRequestID: ^[A-Za-z0-9._:-]{1,128}$.
func checkRequestID(id string) error {
	ok := len(id) > 0 && len(id) <= maxRequestID
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:-", c) >= 0
	}
	if !ok {
		return fmt.Errorf("%w: request id %q: want 1 to %d of A-Z a-z 0-9 . _ : -", ErrFormat, id, maxRequestID)
	}
	return nil
}
