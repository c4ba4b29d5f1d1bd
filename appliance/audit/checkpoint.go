package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a signed tree head of one chain, in the C2SP
// tlog-checkpoint text format with two extension lines:
//
//	<origin>                 custos-audit-<region>-<id>/<chain>
//	<size>                   number of entries
//	<root>                   base64 Merkle root (RFC 6962, golang.org/x/mod/sumdb/tlog)
//	link <base64>            the hash-chain link of the last entry
//	time <RFC 3339>          when the leader signed it
//
// signed as a golang.org/x/mod/sumdb/note (Ed25519).
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   tlog.Hash
	Link   [32]byte
	Time   time.Time
}

// Text is the checkpoint's note text.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\nlink %s\ntime %s\n", c.Origin, c.Size,
		base64.StdEncoding.EncodeToString(c.Root[:]), base64.StdEncoding.EncodeToString(c.Link[:]),
		c.Time.UTC().Format(time.RFC3339Nano))
}

// ParseCheckpoint reads a checkpoint's note text.
func ParseCheckpoint(text string) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.Split(text, "\n")
	if len(lines) != 6 || lines[5] != "" {
		return c, fmt.Errorf("%w: want 5 lines", ErrCheckpoint)
	}
	c.Origin = lines[0]
	if c.Origin == "" {
		return c, fmt.Errorf("%w: empty origin", ErrCheckpoint)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return c, fmt.Errorf("%w: size %q", ErrCheckpoint, lines[1])
	}
	c.Size = size
	if err := decodeHash(lines[2], c.Root[:]); err != nil {
		return c, fmt.Errorf("%w: root: %v", ErrCheckpoint, err)
	}
	link, ok := strings.CutPrefix(lines[3], "link ")
	if !ok || decodeHash(link, c.Link[:]) != nil {
		return c, fmt.Errorf("%w: link line %q", ErrCheckpoint, lines[3])
	}
	ts, ok := strings.CutPrefix(lines[4], "time ")
	if c.Time, err = time.Parse(time.RFC3339Nano, ts); !ok || err != nil {
		return c, fmt.Errorf("%w: time line %q", ErrCheckpoint, lines[4])
	}
	if c.Text() != text {
		return c, fmt.Errorf("%w: not in canonical form", ErrCheckpoint)
	}
	return c, nil
}

func decodeHash(s string, dst []byte) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return fmt.Errorf("%d bytes, want %d", len(b), len(dst))
	}
	copy(dst, b)
	return nil
}

// Sign signs c with signer.
func Sign(c Checkpoint, signer note.Signer) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: c.Text()}, signer)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint with the cluster's verifier
// key and parses it.
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	return ParseCheckpoint(n.Text)
}

// NewKeys makes the cluster's checkpoint signing key pair, in note's key
// format; name is the key name (and the origin prefix of every chain).
func NewKeys(name string) (skey, vkey string, err error) {
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("audit: generate signing key: %w", err)
	}
	return skey, vkey, nil
}

// KeyName makes a unique key name for a cluster in region.
func KeyName(region string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("custos-audit-%s-%x", region, b), nil
}

// Origin is the checkpoint origin of a chain.
func Origin(keyName, chain string) string { return keyName + "/" + chain }

// Verifier parses a verifier key (the text of /v1/sys/audit-key).
func Verifier(vkey []byte) (note.Verifier, error) {
	v, err := note.NewVerifier(string(bytes.TrimSpace(vkey)))
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	return v, nil
}
