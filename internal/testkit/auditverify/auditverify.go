// Package auditverify is an audit-log verifier written from
// docs/audit-format.md alone, as an auditor outside the project would
// write one: it imports nothing of the module — only the standard library,
// golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note — and a test
// keeps it so. The end-to-end tests check a live cluster's chains with it
// (lists, checkpoints, proofs and export bundles), and its own test checks
// the golden vectors with it, so that the specification and the code
// cannot drift apart: where they disagree, one of these tests fails.
//
// Section numbers (§) refer to docs/audit-format.md. Being test support,
// it favours plainness over speed.
package auditverify

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Actor is an entry's actor (§2.1).
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Entry is an entry's fields as the list route and the canonical form
// both carry them (§2.1, §5.2). Time is kept as the text it was given in.
type Entry struct {
	Time      string            `json:"time"`
	Actor     Actor             `json:"actor"`
	Action    string            `json:"action"`
	Target    string            `json:"target"`
	Outcome   string            `json:"outcome"`
	RequestID string            `json:"request_id"`
	Source    string            `json:"source"`
	Details   map[string]string `json:"details"`
}

// Encode is the canonical encoding of e (§2.1): fixed member order, the
// time in UTC with nine fractional digits, details sorted by key, strings
// escaped by the format's one rule.
func Encode(e Entry) ([]byte, error) {
	t, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil {
		return nil, fmt.Errorf("time %q: %w", e.Time, err)
	}
	var b bytes.Buffer
	b.WriteString(`{"v":1,"time":"`)
	b.WriteString(t.UTC().Format("2006-01-02T15:04:05.000000000Z"))
	b.WriteString(`","actor":{"type":`)
	str(&b, e.Actor.Type)
	b.WriteString(`,"id":`)
	str(&b, e.Actor.ID)
	for _, f := range []struct{ name, value string }{
		{"},\"action\":", e.Action}, {",\"target\":", e.Target}, {",\"outcome\":", e.Outcome},
		{",\"request_id\":", e.RequestID}, {",\"source\":", e.Source},
	} {
		b.WriteString(f.name)
		str(&b, f.value)
	}
	b.WriteString(`,"details":{`)
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sortBytes(keys)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		str(&b, k)
		b.WriteByte(':')
		str(&b, e.Details[k])
	}
	b.WriteString("}}")
	return b.Bytes(), nil
}

// str writes s by §2.1's string rule.
func str(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// sortBytes sorts keys by their bytes (insertion sort: details are few).
func sortBytes(keys []string) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

// Decode parses canonical bytes and requires them to be canonical: "v" 1,
// no other member, and re-encoding gives the same bytes (§2.1).
func Decode(raw []byte) (Entry, error) {
	var w struct {
		V *int `json:"v"`
		Entry
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Entry{}, fmt.Errorf("not an entry: %w", err)
	}
	if w.V == nil || *w.V != 1 {
		return Entry{}, errors.New(`not format "v":1`)
	}
	again, err := Encode(w.Entry)
	if err != nil {
		return Entry{}, err
	}
	if !bytes.Equal(again, raw) {
		return Entry{}, fmt.Errorf("not canonical: re-encodes to %s", again)
	}
	return w.Entry, nil
}

// Leaf is an entry's leaf hash, SHA-256(0x00 ‖ raw) (§3).
func Leaf(raw []byte) tlog.Hash { return tlog.RecordHash(raw) }

// Link is SHA-256(prev ‖ leaf) (§3).
func Link(prev [32]byte, leaf tlog.Hash) [32]byte {
	return sha256.Sum256(append(prev[:], leaf[:]...))
}

// StoredHashIndex is §3's numbering of stored tree hashes, computed as the
// document says (the test compares it with tlog's).
func StoredHashIndex(level int, n int64) int64 {
	for l := level; l > 0; l-- {
		n = 2*n + 1
	}
	i := int64(0)
	for ; n > 0; n >>= 1 {
		i += n
	}
	return i + int64(level)
}

// StoredHashCount is the number of stored hashes of a tree of n records.
func StoredHashCount(n int64) int64 { return StoredHashIndex(0, n) }

// Frontier is the stored-hash indexes of the complete subtrees that cover
// records [0, a), greedily largest first, in ascending index order (§6.2).
func Frontier(a int64) []int64 {
	var out []int64
	start := int64(0)
	for level := 62; level >= 0; level-- {
		if size := int64(1) << level; a-start >= size {
			out = append(out, StoredHashIndex(level, start>>level))
			start += size
		}
	}
	// Largest first is already ascending: a left subtree's hashes are
	// stored before any hash of the records after it.
	return out
}

// Tree is a Merkle tree built in memory from leaf hashes, stored by §3's
// numbering.
type Tree struct {
	hashes map[int64]tlog.Hash
	n      int64
}

// NewTree is an empty tree.
func NewTree() *Tree { return &Tree{hashes: map[int64]tlog.Hash{}} }

// ReadHashes implements tlog.HashReader.
func (t *Tree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		h, ok := t.hashes[x]
		if !ok {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = h
	}
	return out, nil
}

// Add appends a record with leaf hash leaf.
func (t *Tree) Add(leaf tlog.Hash) error {
	hs, err := tlog.StoredHashesForRecordHash(t.n, leaf, t)
	if err != nil {
		return err
	}
	for i, h := range hs {
		t.hashes[StoredHashIndex(0, t.n)+int64(i)] = h
	}
	t.n++
	return nil
}

// Root is the root of the tree's first n records.
func (t *Tree) Root(n int64) (tlog.Hash, error) { return tlog.TreeHash(n, t) }

// Checkpoint is a parsed signed checkpoint (§4.1).
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   tlog.Hash
	Link   [32]byte
	Time   time.Time
}

// Verifier checks signatures with the cluster's key (§4.2).
type Verifier struct {
	v note.Verifier
}

// NewVerifier parses the verifier key text (what /v1/sys/audit-key
// serves: one line and a newline).
func NewVerifier(text string) (*Verifier, error) {
	line, ok := strings.CutSuffix(text, "\n")
	if !ok || strings.Contains(line, "\n") {
		return nil, fmt.Errorf("the key is not one line and a newline: %q", text)
	}
	v, err := note.NewVerifier(line)
	if err != nil {
		return nil, err
	}
	return &Verifier{v: v}, nil
}

// Name is the key name, the origin prefix (§4.2).
func (v *Verifier) Name() string { return v.v.Name() }

// Origin is the origin of chain's checkpoints.
func (v *Verifier) Origin(chain string) string { return v.v.Name() + "/" + chain }

// OpenCheckpoint verifies msg's one signature and parses its text in the
// exact form of §4.1.
func (v *Verifier) OpenCheckpoint(msg []byte) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v.v))
	if err != nil {
		return Checkpoint{}, err
	}
	if len(n.Sigs) != 1 || len(n.UnverifiedSigs) != 0 {
		return Checkpoint{}, fmt.Errorf("%d signatures, %d unknown: want exactly one", len(n.Sigs), len(n.UnverifiedSigs))
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 6 || lines[5] != "" {
		return Checkpoint{}, fmt.Errorf("not five lines: %q", n.Text)
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Size, err = strconv.ParseUint(lines[1], 10, 64); err != nil {
		return Checkpoint{}, fmt.Errorf("size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return Checkpoint{}, fmt.Errorf("root %q", lines[2])
	}
	copy(c.Root[:], root)
	l, ok := strings.CutPrefix(lines[3], "link ")
	link, err := base64.StdEncoding.DecodeString(l)
	if !ok || err != nil || len(link) != 32 {
		return Checkpoint{}, fmt.Errorf("link line %q", lines[3])
	}
	copy(c.Link[:], link)
	ts, ok := strings.CutPrefix(lines[4], "time ")
	if c.Time, err = time.Parse(time.RFC3339Nano, ts); !ok || err != nil {
		return Checkpoint{}, fmt.Errorf("time line %q", lines[4])
	}
	again := fmt.Sprintf("%s\n%d\n%s\nlink %s\ntime %s\n", c.Origin, c.Size, lines[2], l, c.Time.UTC().Format(time.RFC3339Nano))
	if again != n.Text {
		return Checkpoint{}, fmt.Errorf("not in the exact form: %q, want %q", n.Text, again)
	}
	return c, nil
}

// Manifest is a bundle's manifest.json (§6.2), its members in order.
type Manifest struct {
	Format    string   `json:"format"`
	Origin    string   `json:"origin"`
	Chain     string   `json:"chain"`
	First     uint64   `json:"first"`
	Size      uint64   `json:"size"`
	PrevLink  []byte   `json:"prev_link"`
	HashStart int64    `json:"hash_start"`
	Frontier  []Stored `json:"frontier"`
}

// Stored is one frontier hash.
type Stored struct {
	Index int64  `json:"index"`
	Hash  []byte `json:"hash"`
}

// Bundle is what a verified bundle held.
type Bundle struct {
	Manifest    Manifest
	Checkpoints []Checkpoint
	// Entries are the canonical entries, Entries[i] at seq First+i.
	Entries [][]byte
	// Members are the members' names and contents, for scans.
	Members map[string][]byte
}

// VerifyBundle verifies a bundle by §6.6: with trusted (a checkpoint note
// kept earlier, or nil) it also checks the bundle extends it.
func (v *Verifier) VerifyBundle(r io.Reader, trusted []byte) (*Bundle, error) {
	in := bufio.NewReader(r)
	zr, err := gzip.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("not gzip: %w", err)
	}
	zr.Multistream(false)
	tr := tar.NewReader(zr)
	out := &Bundle{Members: map[string][]byte{}}
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%s is not a regular file", h.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		if _, dup := out.Members[h.Name]; dup {
			return nil, fmt.Errorf("%s twice", h.Name)
		}
		names = append(names, h.Name)
		out.Members[h.Name] = data
	}
	if rest, err := io.ReadAll(zr); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("data after the archive (%d bytes, %v)", len(rest), err)
	}
	if _, err := in.ReadByte(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the gzip member")
	}
	// Step 1: the order of §6.1.
	if len(names) < 3 || names[0] != "manifest.json" || names[len(names)-2] != "hashes.bin" || names[len(names)-1] != "entries.jsonl" {
		return nil, fmt.Errorf("members %v", names)
	}
	// Step 2: the manifest, in the exact form.
	raw := out.Members["manifest.json"]
	m := &out.Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	again, _ := json.MarshalIndent(m, "", "  ")
	if !bytes.Equal(append(again, '\n'), raw) {
		return nil, errors.New("manifest not in the exact form")
	}
	a := int64(m.First) - 1
	if m.Format != "custos-audit-bundle/1" || m.Origin != v.Origin(m.Chain) || m.First < 1 || m.First > m.Size+1 ||
		len(m.PrevLink) != 32 || m.HashStart != StoredHashIndex(0, a) {
		return nil, fmt.Errorf("manifest %+v", m)
	}
	want := Frontier(a)
	if len(m.Frontier) != len(want) {
		return nil, fmt.Errorf("%d frontier hashes, want %d", len(m.Frontier), len(want))
	}
	known := map[int64]tlog.Hash{}
	for i, s := range m.Frontier {
		if s.Index != want[i] || len(s.Hash) != 32 {
			return nil, fmt.Errorf("frontier %d: index %d, want %d", i, s.Index, want[i])
		}
		known[s.Index] = tlog.Hash(s.Hash)
	}
	// Step 3: the checkpoints.
	for _, name := range names[1 : len(names)-2] {
		c, err := v.OpenCheckpoint(out.Members[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if name != fmt.Sprintf("checkpoints/%020d.txt", c.Size) || c.Origin != m.Origin || c.Size+1 < m.First || c.Size > m.Size {
			return nil, fmt.Errorf("%s: %+v", name, c)
		}
		if n := len(out.Checkpoints); n > 0 && c.Size <= out.Checkpoints[n-1].Size {
			return nil, fmt.Errorf("%s: sizes not ascending", name)
		}
		out.Checkpoints = append(out.Checkpoints, c)
	}
	if n := len(out.Checkpoints); n == 0 || out.Checkpoints[n-1].Size != m.Size {
		return nil, errors.New("no checkpoint at the bundle's size")
	}
	// Step 4: hashes.bin.
	hb := out.Members["hashes.bin"]
	if int64(len(hb)) != (StoredHashCount(int64(m.Size))-m.HashStart)*32 {
		return nil, fmt.Errorf("hashes.bin: %d bytes", len(hb))
	}
	exported := func(i int64) tlog.Hash { return tlog.Hash(hb[(i-m.HashStart)*32:][:32]) }
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		hs := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= m.HashStart {
				hs[i] = exported(x)
			} else if h, ok := known[x]; ok {
				hs[i] = h
			} else {
				return nil, fmt.Errorf("hash %d is not in the bundle", x)
			}
		}
		return hs, nil
	})
	// Step 5: the trusted checkpoint.
	checks := append([]Checkpoint(nil), out.Checkpoints...)
	if trusted != nil {
		c, err := v.OpenCheckpoint(trusted)
		if err != nil {
			return nil, fmt.Errorf("trusted checkpoint: %w", err)
		}
		if c.Origin != m.Origin || c.Size+1 < m.First || c.Size > m.Size {
			return nil, fmt.Errorf("trusted checkpoint at %d outside the bundle %d..%d (rolled back?)", c.Size, m.First-1, m.Size)
		}
		checks = append(checks, c)
	}
	link := [32]byte(m.PrevLink)
	checkAt := func(n uint64) error {
		for _, c := range checks {
			if c.Size != n || n == 0 {
				continue
			}
			root, err := tlog.TreeHash(int64(n), reader)
			if err != nil {
				return err
			}
			if root != c.Root || link != c.Link {
				return fmt.Errorf("the checkpoint at %d does not match", n)
			}
		}
		return nil
	}
	// Steps 6 and 7.
	if err := checkAt(m.First - 1); err != nil {
		return nil, err
	}
	lines := bytes.SplitAfter(out.Members["entries.jsonl"], []byte("\n"))
	if last := lines[len(lines)-1]; len(last) != 0 {
		return nil, errors.New("entries.jsonl does not end with a newline")
	}
	lines = lines[:len(lines)-1]
	if uint64(len(lines)) != m.Size+1-m.First {
		return nil, fmt.Errorf("%d lines for entries %d..%d", len(lines), m.First, m.Size)
	}
	for i, line := range lines {
		seq := m.First + uint64(i)
		prefix := fmt.Sprintf(`{"seq":%d,"entry":`, seq)
		entry, ok := bytes.CutPrefix(line, []byte(prefix))
		if !ok {
			return nil, fmt.Errorf("line %d does not start with %s", i+1, prefix)
		}
		entry, ok = bytes.CutSuffix(entry, []byte("}\n"))
		if !ok {
			return nil, fmt.Errorf("line %d does not end with }", i+1)
		}
		if _, err := Decode(entry); err != nil {
			return nil, fmt.Errorf("seq %d: %w", seq, err)
		}
		leaf := Leaf(entry)
		hs, err := tlog.StoredHashesForRecordHash(int64(seq-1), leaf, reader)
		if err != nil {
			return nil, fmt.Errorf("seq %d: %w", seq, err)
		}
		for j, h := range hs {
			if h != exported(StoredHashIndex(0, int64(seq-1))+int64(j)) {
				return nil, fmt.Errorf("seq %d: its tree hashes differ from hashes.bin", seq)
			}
		}
		link = Link(link, leaf)
		if err := checkAt(seq); err != nil {
			return nil, err
		}
		out.Entries = append(out.Entries, entry)
	}
	return out, nil
}
