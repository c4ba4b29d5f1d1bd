package audit

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/raftstore"
)

// BundleFormat names the export format (see the package doc).
const BundleFormat = "custos-audit-bundle/1"

// Manifest describes a bundle. Every field is checked by Verify (the
// manifest must also be in the exact form Write produces), so no byte of a
// bundle's content goes unverified.
type Manifest struct {
	Format    string   `json:"format"`
	Origin    string   `json:"origin"` // <key name>/<chain>
	Chain     string   `json:"chain"`
	First     uint64   `json:"first"` // seq of the first entry in entries.jsonl
	Size      uint64   `json:"size"`  // the tree size of the last checkpoint; the last entry's seq
	PrevLink  []byte   `json:"prev_link"`
	HashStart int64    `json:"hash_start"` // stored-hash index of hashes.bin's first hash
	Frontier  []Stored `json:"frontier"`   // stored hashes of the complete subtrees before First
}

// Stored is one stored tree hash.
type Stored struct {
	Index int64  `json:"index"`
	Hash  []byte `json:"hash"`
}

// Bundle is everything an export holds, ready to write.
type Bundle struct {
	Manifest    Manifest
	Checkpoints [][]byte    // signed, ascending sizes; the last at Manifest.Size
	Hashes      []tlog.Hash // stored hashes from Manifest.HashStart to StoredHashCount(Size)
	// Entries yields the canonical entries First..Size in order, calling
	// fn for each; EntriesLen is the byte length of entries.jsonl (tar
	// needs it before the data).
	Entries    func(fn func(seq uint64, entry []byte) error) error
	EntriesLen int64
	// ModTime is the files' time in the tar (the export's time).
	ModTime time.Time
}

// EntryLine is one line of entries.jsonl.
func EntryLine(seq uint64, entry []byte) []byte {
	b := make([]byte, 0, len(entry)+32)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"entry":`...)
	b = append(b, entry...)
	return append(b, "}\n"...)
}

// Write writes b as a gzip'd tar: manifest.json, checkpoints/, hashes.bin,
// entries.jsonl, in this order.
func (b *Bundle) Write(w io.Writer) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	file := func(name string, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: b.ModTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
	}
	put := func(name string, data []byte) error {
		if err := file(name, int64(len(data))); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	m, err := encodeManifest(b.Manifest)
	if err != nil {
		return err
	}
	if err := put("manifest.json", m); err != nil {
		return fmt.Errorf("audit: write bundle: %w", err)
	}
	for _, cp := range b.Checkpoints {
		c, err := ParseCheckpoint(noteText(cp))
		if err != nil {
			return err
		}
		if err := put(checkpointName(c.Size), cp); err != nil {
			return fmt.Errorf("audit: write bundle: %w", err)
		}
	}
	hb := make([]byte, 0, len(b.Hashes)*tlog.HashSize)
	for _, h := range b.Hashes {
		hb = append(hb, h[:]...)
	}
	if err := put("hashes.bin", hb); err != nil {
		return fmt.Errorf("audit: write bundle: %w", err)
	}
	if err := file("entries.jsonl", b.EntriesLen); err != nil {
		return fmt.Errorf("audit: write bundle: %w", err)
	}
	bw := bufio.NewWriterSize(tw, 64<<10)
	var written int64
	err = b.Entries(func(seq uint64, entry []byte) error {
		n, err := bw.Write(EntryLine(seq, entry))
		written += int64(n)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit: write bundle: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: write bundle: %w", err)
	}
	if written != b.EntriesLen {
		return fmt.Errorf("audit: write bundle: entries changed during the export (%d bytes, expected %d)", written, b.EntriesLen)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("audit: write bundle: %w", err)
	}
	return zw.Close()
}

// checkpointName is the bundle member of the checkpoint at size: its size
// in 20 decimal digits, so that names sort as sizes do.
func checkpointName(size uint64) string { return fmt.Sprintf("checkpoints/%020d.txt", size) }

func encodeManifest(m Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("audit: manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// noteText returns the text part of a signed note (before the blank line).
func noteText(msg []byte) string {
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		return string(msg[:i+1])
	}
	return string(msg)
}

func fail(place, format string, args ...any) error {
	return &VerifyError{Place: place, What: fmt.Sprintf(format, args...)}
}

// Report is what a successful verification established.
type Report struct {
	Origin      string
	First, Size uint64
	Checkpoints int
	// Trusted is the size of the auditor's own earlier checkpoint the
	// bundle was shown to extend (0: none given).
	Trusted uint64
}

// Limits of what Verify reads (a bundle is untrusted input).
const (
	maxManifest   = 1 << 20
	maxCheckpoint = 4 << 10
)

// Verify checks a bundle offline with the cluster's verifier key and
// nothing else: every checkpoint's signature; every entry's leaf hash and
// tree hashes against the exported tree (naming the first entry that
// differs); the hash-chain links; every checkpoint's root and link against
// the entries; that the entries run without gap from First to the last
// checkpoint's size. With trusted (an earlier checkpoint the auditor kept;
// nil for none) it also checks that the bundle extends it: not rolled back
// behind it, not a forked history.
func Verify(r io.Reader, v note.Verifier, trusted []byte) (*Report, error) {
	// The gzip reader reads exactly its member from a byte reader, so what
	// follows it can be seen: one member, nothing after it.
	in := bufio.NewReaderSize(r, 64<<10)
	zr, err := gzip.NewReader(in)
	if err != nil {
		return nil, fail("bundle", "not a gzip file: %v", err)
	}
	zr.Multistream(false)
	tr := tar.NewReader(zr)
	next := func(want string) (*tar.Header, error) {
		h, err := tr.Next()
		if err != nil {
			return nil, fail("bundle", "expected %s: %v", want, err)
		}
		if h.Typeflag != tar.TypeReg {
			return nil, fail(h.Name, "not a regular file (tar type %q)", h.Typeflag)
		}
		return h, nil
	}
	h, err := next("manifest.json")
	if err != nil {
		return nil, err
	}
	if h.Name != "manifest.json" || h.Size > maxManifest {
		return nil, fail(h.Name, "expected manifest.json first")
	}
	raw, err := io.ReadAll(io.LimitReader(tr, maxManifest))
	if err != nil {
		return nil, fail("manifest.json", "read: %v", err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fail("manifest.json", "malformed: %v", err)
	}
	if again, err := encodeManifest(m); err != nil || !bytes.Equal(again, raw) {
		return nil, fail("manifest.json", "not in the exact form an export writes (altered)")
	}
	if m.Format != BundleFormat || m.First == 0 || m.First > m.Size+1 || len(m.PrevLink) != 32 {
		return nil, fail("manifest.json", "format %q, first %d, size %d: not a valid bundle", m.Format, m.First, m.Size)
	}
	if m.Origin != Origin(v.Name(), m.Chain) {
		return nil, fail("manifest.json", "origin %q is not chain %q of the cluster whose key you gave (%s)", m.Origin, m.Chain, v.Name())
	}
	a := int64(m.First - 1) // record index of the first entry
	if m.HashStart != tlog.StoredHashIndex(0, a) {
		return nil, fail("manifest.json", "hash_start %d, want %d", m.HashStart, tlog.StoredHashIndex(0, a))
	}
	frontier := map[int64]tlog.Hash{}
	wantFrontier := frontierIndexes(a)
	if len(m.Frontier) != len(wantFrontier) {
		return nil, fail("manifest.json", "%d frontier hashes, want %d for first %d", len(m.Frontier), len(wantFrontier), m.First)
	}
	for i, s := range m.Frontier {
		if len(s.Hash) != tlog.HashSize || s.Index != wantFrontier[i] {
			return nil, fail("manifest.json", "bad frontier hash at index %d", s.Index)
		}
		var h tlog.Hash
		copy(h[:], s.Hash)
		frontier[s.Index] = h
	}

	// Checkpoints, verified as they are read.
	var cps []Checkpoint
	var hashes []tlog.Hash
	for {
		h, err := next("checkpoints/ or hashes.bin")
		if err != nil {
			return nil, err
		}
		if h.Name == "hashes.bin" {
			want := (tlog.StoredHashCount(int64(m.Size)) - m.HashStart) * tlog.HashSize
			if h.Size != want {
				return nil, fail("hashes.bin", "%d bytes, want %d for a tree of %d", h.Size, want, m.Size)
			}
			raw := make([]byte, h.Size)
			if _, err := io.ReadFull(tr, raw); err != nil {
				return nil, fail("hashes.bin", "truncated: %v", err)
			}
			hashes = make([]tlog.Hash, len(raw)/tlog.HashSize)
			for i := range hashes {
				copy(hashes[i][:], raw[i*tlog.HashSize:])
			}
			break
		}
		if !strings.HasPrefix(h.Name, "checkpoints/") || h.Size > maxCheckpoint {
			return nil, fail(h.Name, "unexpected file (want checkpoints/*.txt, then hashes.bin)")
		}
		msg, err := io.ReadAll(io.LimitReader(tr, maxCheckpoint))
		if err != nil {
			return nil, fail(h.Name, "read: %v", err)
		}
		c, err := OpenCheckpoint(msg, v)
		if err != nil {
			return nil, fail(h.Name, "%v", err)
		}
		if h.Name != checkpointName(c.Size) {
			return nil, fail(h.Name, "the checkpoint inside is at size %d (want the name %s)", c.Size, checkpointName(c.Size))
		}
		if c.Origin != m.Origin {
			return nil, fail(h.Name, "origin %q is not the bundle's %q", c.Origin, m.Origin)
		}
		if len(cps) > 0 && c.Size <= cps[len(cps)-1].Size {
			return nil, fail(h.Name, "checkpoints out of order (size %d after %d)", c.Size, cps[len(cps)-1].Size)
		}
		if c.Size < m.First-1 || c.Size > m.Size {
			return nil, fail(h.Name, "size %d outside the bundle's range %d..%d", c.Size, m.First-1, m.Size)
		}
		cps = append(cps, c)
	}
	if len(cps) == 0 || cps[len(cps)-1].Size != m.Size {
		return nil, fail("checkpoints/", "no signed checkpoint at the bundle's size %d", m.Size)
	}
	var trust *Checkpoint
	if trusted != nil {
		c, err := OpenCheckpoint(trusted, v)
		if err != nil {
			return nil, fail("trusted checkpoint", "%v", err)
		}
		if c.Origin != m.Origin {
			return nil, fail("trusted checkpoint", "origin %q is not the bundle's %q", c.Origin, m.Origin)
		}
		if c.Size > m.Size {
			return nil, fail("bundle", "rolled back or truncated: it ends at size %d, but your checkpoint is at size %d", m.Size, c.Size)
		}
		if c.Size < m.First-1 {
			return nil, fail("trusted checkpoint", "size %d predates the bundle's first entry (seq %d): export from seq %d or earlier", c.Size, m.First, c.Size+1)
		}
		trust = &c
	}

	// The reader reuses one buffer: tlog consumes what it reads before the
	// next call.
	var buf []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		if cap(buf) < len(idx) {
			buf = make([]tlog.Hash, len(idx))
		}
		out := buf[:len(idx)]
		for i, x := range idx {
			switch {
			case x >= m.HashStart && x-m.HashStart < int64(len(hashes)):
				out[i] = hashes[x-m.HashStart]
			default:
				h, ok := frontier[x]
				if !ok {
					return nil, fmt.Errorf("the bundle lacks stored hash %d", x)
				}
				out[i] = h
			}
		}
		return out, nil
	})
	var link [32]byte
	copy(link[:], m.PrevLink)
	// checkAt checks the checkpoints (and the trusted one) at size n.
	ci := 0
	checkAt := func(n uint64, place fmt.Stringer) error {
		for ; ci < len(cps) && cps[ci].Size == n; ci++ {
			if err := matches(cps[ci], n, link, reader); err != nil {
				return fail(place.String(), "checkpoint at size %d: %v (an entry at or before seq %d was altered, removed or reordered)", n, err, n)
			}
		}
		if trust != nil && trust.Size == n {
			if err := matches(*trust, n, link, reader); err != nil {
				return fail(place.String(), "forked history: your checkpoint at size %d does not match the bundle (%v)", n, err)
			}
		}
		return nil
	}
	if err := checkAt(m.First-1, placeName("entries.jsonl start")); err != nil {
		return nil, err
	}

	h, err = next("entries.jsonl")
	if err != nil {
		return nil, err
	}
	if h.Name != "entries.jsonl" {
		return nil, fail(h.Name, "unexpected file (want entries.jsonl)")
	}
	br := bufio.NewReaderSize(tr, 256<<10)
	seq := m.First
	var lineNo uint64
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			break
		}
		lineNo++
		place := linePlace{lineNo, seq}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, fail(place.String(), "line longer than %d bytes", br.Size())
			}
			if !errors.Is(err, io.EOF) {
				return nil, fail(place.String(), "%v", err)
			}
			return nil, fail(place.String(), "the last line does not end with a newline (truncated)")
		}
		if seq > m.Size {
			return nil, fail(place.String(), "more entries than the checkpoint's size %d", m.Size)
		}
		start, err := parseLine(line[:len(line)-1], seq)
		if err != nil {
			return nil, fail(place.String(), "%v", err)
		}
		idx := int64(seq - 1)
		// tlog.RecordHash without copying: the byte before the entry (the
		// ':' of "entry":) becomes the leaf prefix 0x00, in the read buffer.
		line[start-1] = 0
		leaf := tlog.Hash(sha256.Sum256(line[start-1 : len(line)-2]))
		stored, err := tlog.StoredHashesForRecordHash(idx, leaf, reader)
		if err != nil {
			return nil, fail(place.String(), "%v", err)
		}
		base := tlog.StoredHashIndex(0, idx) - m.HashStart
		for j, sh := range stored {
			if sh != hashes[base+int64(j)] {
				if j == 0 {
					return nil, fail(place.String(), "the entry does not match its exported hash (altered, removed or moved)")
				}
				return nil, fail(place.String(), "the exported tree is inconsistent at this entry (tree hashes altered)")
			}
		}
		link = raftstore.ChainLink(link, leaf)
		if err := checkAt(seq, place); err != nil {
			return nil, err
		}
		seq++
	}
	if seq != m.Size+1 {
		return nil, fail("entries.jsonl", "truncated: it ends at seq %d, the signed checkpoint is at size %d", seq-1, m.Size)
	}
	if _, err := tr.Next(); err != io.EOF {
		return nil, fail("bundle", "unexpected data after entries.jsonl")
	}
	// The end of the archive is the end of the gzip member (whose checksum
	// is checked on reaching it), and the member the end of the bundle.
	if n, err := io.Copy(io.Discard, zr); err != nil || n > 0 {
		return nil, fail("bundle", "data after the end of the tar archive (%d bytes, %v)", n, err)
	}
	if _, err := in.ReadByte(); err != io.EOF {
		return nil, fail("bundle", "data after the gzip stream (a second gzip member or appended bytes)")
	}
	rep := &Report{Origin: m.Origin, First: m.First, Size: m.Size, Checkpoints: len(cps)}
	if trust != nil {
		rep.Trusted = trust.Size
	}
	return rep, nil
}

// placeName is a fixed place.
type placeName string

func (p placeName) String() string { return string(p) }

// linePlace names a line of entries.jsonl; formatted only for an error.
type linePlace struct{ line, seq uint64 }

func (p linePlace) String() string {
	return fmt.Sprintf("entries.jsonl line %d (seq %d)", p.line, p.seq)
}

// matches checks checkpoint c against the tree of size n and the link.
func matches(c Checkpoint, n uint64, link [32]byte, r tlog.HashReader) error {
	if n == 0 {
		if c.Root != (tlog.Hash{}) {
			return errors.New("a non-empty root for an empty tree")
		}
		return nil
	}
	root, err := tlog.TreeHash(int64(n), r)
	if err != nil {
		return err
	}
	if root != c.Root {
		return errors.New("the Merkle root differs")
	}
	if link != c.Link {
		return errors.New("hash-chain link differs")
	}
	return nil
}

// parseLine checks a line `{"seq":N,"entry":{...}}` (without its
// newline) and N, and returns the offset of the entry in it (the entry
// runs to the line's last byte, exclusive).
func parseLine(line []byte, seq uint64) (int, error) {
	const prefix = `{"seq":`
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return 0, errors.New(`the line does not start with {"seq":N`)
	}
	rest := line[len(prefix):]
	i := bytes.IndexByte(rest, ',')
	if i <= 0 {
		return 0, errors.New("no sequence number")
	}
	digits := rest[:i]
	n, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil || digits[0] < '1' || digits[0] > '9' {
		// Digits only (ParseUint refuses signs), no leading zero: one
		// spelling per number.
		return 0, fmt.Errorf("sequence number %q", digits)
	}
	if n != seq {
		return 0, fmt.Errorf("sequence number %d, expected %d (an entry is missing, duplicated or reordered)", n, seq)
	}
	const mid = `,"entry":`
	if !bytes.HasPrefix(rest[i:], []byte(mid)) {
		return 0, errors.New("malformed line")
	}
	start := len(prefix) + i + len(mid)
	if len(line)-start < 3 || line[start] != '{' || line[len(line)-1] != '}' || line[len(line)-2] != '}' {
		return 0, errors.New("malformed line")
	}
	return start, nil
}

// frontierIndexes are the stored-hash indexes of the complete subtrees
// that cover records [0, a): what a bundle starting at record a needs of
// the tree before it.
func frontierIndexes(a int64) []int64 {
	var out []int64
	start := int64(0)
	for level := 62; level >= 0; level-- {
		size := int64(1) << level
		if a-start >= size {
			out = append(out, tlog.StoredHashIndex(level, start>>level))
			start += size
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Summary is what a bundle says it covers, read without verifying it
// (Verify does that): what `custos audit export` prints of the bundle it
// wrote.
type Summary struct {
	Origin, Chain string
	First, Size   uint64
	Checkpoints   int
	// SignedAt is the time of the last checkpoint, the one at Size.
	SignedAt time.Time
}

// Inspect reads a bundle's manifest and checkpoints, stopping before its
// hashes and entries.
func Inspect(r io.Reader) (Summary, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return Summary{}, fmt.Errorf("audit: not a bundle: %w", err)
	}
	tr := tar.NewReader(zr)
	var sum Summary
	for {
		h, err := tr.Next()
		if err != nil {
			return Summary{}, fmt.Errorf("audit: not a bundle: %w", err)
		}
		switch {
		case h.Name == "manifest.json":
			var m Manifest
			if err := json.NewDecoder(io.LimitReader(tr, maxManifest)).Decode(&m); err != nil {
				return Summary{}, fmt.Errorf("audit: manifest: %w", err)
			}
			sum.Origin, sum.Chain, sum.First, sum.Size = m.Origin, m.Chain, m.First, m.Size
		case strings.HasPrefix(h.Name, "checkpoints/"):
			msg, err := io.ReadAll(io.LimitReader(tr, maxCheckpoint))
			if err != nil {
				return Summary{}, fmt.Errorf("audit: %s: %w", h.Name, err)
			}
			c, err := ParseCheckpoint(noteText(msg))
			if err != nil {
				return Summary{}, fmt.Errorf("audit: %s: %w", h.Name, err)
			}
			sum.Checkpoints++
			sum.SignedAt = c.Time
		default:
			return sum, nil
		}
	}
}
