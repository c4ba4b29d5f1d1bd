package receipt

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
)

// Bounds of a receipt.
const (
	// MaxCounts is the most kinds a receipt counts.
	MaxCounts = 64
	// MaxReceiptBytes bounds a signed receipt.
	MaxReceiptBytes = 16 << 10
	// maxOriginLen bounds a checkpoint origin: a key name and a chain.
	maxOriginLen = 256
)

const receiptHeader = "custos-erasure-receipt v1"

// Receipt states that a subject's data was erased, and where the erasure's
// audit entry stands in the tenant's chain.
type Receipt struct {
	Tenant      string    // the tenant's id
	Subject     string    // the subject's audit pseudonym
	Request     string    // the data-subject request's id
	Erased      time.Time // when the erasure completed, UTC
	KeyShredded bool      // whether the subject's data key was shredded
	Counts      []Count   // what was erased, by kind; sorted by Kind, unique
	Entry       uint64    // the erasure's audit entry: its sequence number (1, 2, …) in the tenant's chain
	EntryHash   [32]byte  // that entry's leaf hash, SHA-256(0x00 ‖ canonical encoding)
	Checkpoint  Checkpoint
}

// Count is how many items of one kind (records, blobs, …) were erased.
type Count struct {
	Kind string // ^[a-z][a-z0-9-]{0,31}$
	N    uint64
}

// Checkpoint names the signed checkpoint of the tenant's chain that
// covers the erasure's entry.
type Checkpoint struct {
	Origin string   // audit.Origin(key name, "tenant:"+Tenant)
	Size   uint64   // tree size, at least Entry
	Root   [32]byte // Merkle root
}

// Text is the receipt's canonical text (the signed body). r must be valid
// (Check).
func (r Receipt) Text() string {
	var b strings.Builder
	b.WriteString(receiptHeader + "\n")
	b.WriteString("tenant " + r.Tenant + "\n")
	b.WriteString("subject " + r.Subject + "\n")
	b.WriteString("request " + r.Request + "\n")
	b.WriteString("erased " + formatTime(r.Erased) + "\n")
	if r.KeyShredded {
		b.WriteString("key-shredded yes\n")
	} else {
		b.WriteString("key-shredded no\n")
	}
	for _, c := range r.Counts {
		b.WriteString("count " + c.Kind + " " + strconv.FormatUint(c.N, 10) + "\n")
	}
	b.WriteString("audit-entry " + strconv.FormatUint(r.Entry, 10) + " " + base64.StdEncoding.EncodeToString(r.EntryHash[:]) + "\n")
	b.WriteString("checkpoint " + r.Checkpoint.Origin + " " + strconv.FormatUint(r.Checkpoint.Size, 10) + " " +
		base64.StdEncoding.EncodeToString(r.Checkpoint.Root[:]) + "\n")
	return b.String()
}

// Check reports whether r can be encoded: every field well formed and
// within bounds, the entry within the checkpoint, the checkpoint's origin
// one of the tenant's chain.
func (r Receipt) Check() error {
	if !tenancy.ValidID(r.Tenant) {
		return fmt.Errorf("%w: tenant %q", ErrFormat, r.Tenant)
	}
	if err := checkPseudonym(r.Subject); err != nil {
		return err
	}
	if err := checkRequestID(r.Request); err != nil {
		return err
	}
	if err := checkTime("erased", r.Erased); err != nil {
		return err
	}
	if len(r.Counts) > MaxCounts {
		return fmt.Errorf("%w: %d counts, at most %d", ErrFormat, len(r.Counts), MaxCounts)
	}
	for i, c := range r.Counts {
		if !validKind(c.Kind) {
			return fmt.Errorf("%w: count kind %q", ErrFormat, c.Kind)
		}
		if i > 0 && r.Counts[i-1].Kind >= c.Kind {
			return fmt.Errorf("%w: counts not sorted by kind or repeated at %q", ErrFormat, c.Kind)
		}
	}
	if r.Entry == 0 || r.Entry > r.Checkpoint.Size {
		return fmt.Errorf("%w: audit entry %d is not in a checkpoint of size %d", ErrFormat, r.Entry, r.Checkpoint.Size)
	}
	keyName, chain, ok := strings.Cut(r.Checkpoint.Origin, "/")
	if !ok || len(r.Checkpoint.Origin) > maxOriginLen || chain != tenancy.ChainOf(r.Tenant) || !validKeyName(keyName) {
		return fmt.Errorf("%w: checkpoint origin %q is not of tenant %s's chain", ErrFormat, r.Checkpoint.Origin, r.Tenant)
	}
	return nil
}

// validKeyName: a signed-note key name (non-empty, no space, '+' or
// control character, no '/').
func validKeyName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c == '+' || c == '/' || c == 0x7f || c == '\uFFFD' {
			return false
		}
	}
	return true
}

// SignReceipt checks r and signs its text with the cluster's audit key;
// the checkpoint's origin must be of that key's name.
func SignReceipt(r Receipt, signer note.Signer) ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	if want := audit.Origin(signer.Name(), tenancy.ChainOf(r.Tenant)); r.Checkpoint.Origin != want {
		return nil, fmt.Errorf("%w: checkpoint origin %q, want %q", ErrFormat, r.Checkpoint.Origin, want)
	}
	return sign(r.Text(), signer)
}

// ParseReceipt reads a receipt's text (not its signature: see
// VerifyReceipt), accepting only its canonical form.
func ParseReceipt(text string) (Receipt, error) {
	var r Receipt
	if len(text) > MaxReceiptBytes {
		return r, fmt.Errorf("%w: %d bytes, at most %d", ErrFormat, len(text), MaxReceiptBytes)
	}
	l := newLines(text)
	if h := l.next("custos-erasure-receipt", 1); h != nil && h[0] != "v1" {
		l.fail("unknown version %q", h[0])
	}
	if f := l.next("tenant", 1); f != nil {
		r.Tenant = f[0]
	}
	if f := l.next("subject", 1); f != nil {
		r.Subject = f[0]
	}
	if f := l.next("request", 1); f != nil {
		r.Request = f[0]
	}
	if f := l.next("erased", 1); f != nil {
		r.Erased = l.time("erased", f[0])
	}
	if f := l.next("key-shredded", 1); f != nil {
		switch f[0] {
		case "yes":
			r.KeyShredded = true
		case "no":
		default:
			l.fail("key-shredded %q: want yes or no", f[0])
		}
	}
	for l.peek("count") && len(r.Counts) <= MaxCounts {
		if f := l.next("count", 2); f != nil {
			r.Counts = append(r.Counts, Count{Kind: f[0], N: l.uint("count", f[1])})
		}
	}
	if f := l.next("audit-entry", 2); f != nil {
		r.Entry = l.uint("audit entry", f[0])
		l.hash("audit entry hash", f[1], r.EntryHash[:], false)
	}
	if f := l.next("checkpoint", 3); f != nil {
		r.Checkpoint.Origin = f[0]
		r.Checkpoint.Size = l.uint("checkpoint size", f[1])
		l.hash("checkpoint root", f[2], r.Checkpoint.Root[:], false)
	}
	if err := l.end(); err != nil {
		return Receipt{}, err
	}
	if err := r.Check(); err != nil {
		return Receipt{}, err
	}
	if r.Text() != text {
		return Receipt{}, fmt.Errorf("%w: receipt not in canonical form", ErrFormat)
	}
	return r, nil
}

// VerifyReceipt verifies a signed receipt offline with the verifier key
// keyText (the text `custos audit key` prints): the signature, the
// fields' well-formedness, and that the checkpoint it names is of the
// tenant's chain under that same key.
func VerifyReceipt(keyText, msg []byte) (Receipt, error) {
	text, v, err := open(keyText, msg, MaxReceiptBytes)
	if err != nil {
		return Receipt{}, err
	}
	r, err := ParseReceipt(text)
	if err != nil {
		return Receipt{}, err
	}
	if want := audit.Origin(v.Name(), tenancy.ChainOf(r.Tenant)); r.Checkpoint.Origin != want {
		return Receipt{}, fmt.Errorf("%w: checkpoint origin %q, want %q", ErrFormat, r.Checkpoint.Origin, want)
	}
	return r, nil
}
