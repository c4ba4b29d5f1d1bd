package audit_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

// sameContent reports whether the gzip'd tar b holds exactly members ms.
func sameContent(b []byte, ms []member) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return false
	}
	tr := tar.NewReader(zr)
	for _, m := range ms {
		h, err := tr.Next()
		if err != nil || h.Name != m.name {
			return false
		}
		data, err := io.ReadAll(tr)
		if err != nil || !bytes.Equal(data, m.data) {
			return false
		}
	}
	_, err = tr.Next()
	return err == io.EOF
}

// member is one file of a bundle.
type member struct {
	name string
	data []byte
}

func unpack(t testing.TB, b []byte) []member {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var ms []member
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return ms
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{h.Name, data})
	}
}

func pack(t testing.TB, ms []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range ms {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (e *env) export(chain string, from, to time.Time) []byte {
	e.t.Helper()
	var buf bytes.Buffer
	if err := e.svc.Export(context.Background(), chain, from, to, &buf); err != nil {
		e.t.Fatal(err)
	}
	return buf.Bytes()
}

func (e *env) checkpoint(chain string) []byte {
	e.t.Helper()
	msg, err := e.svc.SignNow(context.Background(), chain)
	if err != nil {
		e.t.Fatal(err)
	}
	return msg
}

// exportUpTo exports the chain up to its checkpoint at size (the entry
// size's time as the end).
func (e *env) exportUpTo(t testing.TB, chain string, size int) []byte {
	t.Helper()
	return e.export(chain, time.Time{}, entry(size-1, "").Time)
}

func TestExportVerifies(t *testing.T) {
	e := newEnv(t)
	e.fill("system", 0, 1200, "")
	e.checkpoint("system")
	e.fill("system", 1200, 2500, "")
	b := e.export("system", time.Time{}, time.Time{})
	rep, err := audit.Verify(bytes.NewReader(b), e.v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.First != 1 || rep.Size != 2500 || rep.Checkpoints != 2 {
		t.Fatalf("report %+v", rep)
	}
	// A time range: from entry 700's time; to before the last checkpoint
	// ends on that checkpoint (1200).
	from := entry(700, "").Time
	to := entry(900, "").Time
	b = e.export("system", from, to)
	rep, err = audit.Verify(bytes.NewReader(b), e.v, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.First != 701 || rep.Size != 1200 {
		t.Fatalf("ranged report %+v", rep)
	}
	// The entries are exactly the canonical entries.
	ms := unpack(t, b)
	lines := strings.Split(strings.TrimSuffix(string(ms[len(ms)-1].data), "\n"), "\n")
	e700 := entry(700, "")
	want, _ := e700.Encode()
	if len(lines) != 500 || !strings.Contains(lines[0], string(want)) || !strings.HasPrefix(lines[0], `{"seq":701,"entry":`) {
		t.Fatalf("entries.jsonl: %d lines, first %s", len(lines), lines[0])
	}
	// A different key does not verify.
	_, other, _ := audit.NewKeys("custos-audit-other")
	ov, _ := audit.Verifier([]byte(other))
	if _, err := audit.Verify(bytes.NewReader(b), ov, nil); err == nil {
		t.Fatal("verified with another cluster's key")
	}
}

// verifyFails asserts that Verify refuses b and names a place.
func verifyFails(t *testing.T, e *env, b []byte, trusted []byte, what string) *audit.VerifyError {
	t.Helper()
	_, err := audit.Verify(bytes.NewReader(b), e.v, trusted)
	if err == nil {
		t.Fatalf("%s: the bundle verified", what)
	}
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Place == "" || ve.What == "" {
		t.Fatalf("%s: error %v does not name a place", what, err)
	}
	return ve
}

// Acceptance 2, on an exported bundle: every single-byte flip anywhere
// (random positions in every member and in the gzip file), a deleted,
// duplicated or moved entry, a truncated tail, a rollback behind a
// checkpoint the auditor kept, and a forked history that reuses an old
// checkpoint are all detected, naming the place.
func TestBundleTamperMatrix(t *testing.T) {
	// The auditor's old checkpoint covers the first older entries, the
	// bundle newer: both past a Merkle tile (256 entries), so proofs span
	// tiles. Every flip verifies the whole bundle again, so these sizes
	// set the test's time.
	const older, newer = 300, 600
	e := newEnv(t)
	e.fill("tenant:acme", 0, older, "")
	old := e.checkpoint("tenant:acme") // the auditor keeps this one
	e.fill("tenant:acme", older, newer, "")
	good := e.export("tenant:acme", time.Time{}, time.Time{})
	if _, err := audit.Verify(bytes.NewReader(good), e.v, old); err != nil {
		t.Fatalf("the untouched bundle: %v", err)
	}
	ms := unpack(t, good)
	rng := rand.New(rand.NewPCG(3, 4))
	flips := 0
	for mi, m := range ms {
		positions := 20
		if m.name == "entries.jsonl" {
			positions = 150
		}
		for k := 0; k < positions; k++ {
			pos := rng.IntN(len(m.data))
			bad := append([]member(nil), ms...)
			data := bytes.Clone(m.data)
			data[pos] ^= byte(1 + rng.IntN(255))
			bad[mi] = member{m.name, data}
			ve := verifyFails(t, e, pack(t, bad), old, m.name+" flip")
			if m.name == "entries.jsonl" && !strings.Contains(ve.Place, "entries.jsonl") {
				t.Errorf("flip at %d of entries.jsonl reported at %q: %s", pos, ve.Place, ve.What)
			}
			flips++
		}
	}
	// The compressed file itself: gzip's CRC covers the content; a flip in
	// header metadata (mtime, OS, XFL) that leaves every member's content
	// unchanged changes nothing of the audit log, and is the only kind of
	// flip allowed to verify.
	metaOnly := 0
	for k := 0; k < 60; k++ {
		b := bytes.Clone(good)
		pos := rng.IntN(len(b))
		if k < 10 {
			pos = k // the gzip header
		}
		b[pos] ^= byte(1 + rng.IntN(255))
		if _, err := audit.Verify(bytes.NewReader(b), e.v, old); err == nil {
			if !sameContent(b, ms) {
				t.Fatalf("gzip flip at %d changed the content and verified", pos)
			}
			metaOnly++
			continue
		}
		flips++
	}
	t.Logf("%d single-byte flips detected; %d gzip header flips left the content unchanged", flips, metaOnly)

	entriesAt := len(ms) - 1
	lines := strings.SplitAfter(string(ms[entriesAt].data), "\n")
	lines = lines[:len(lines)-1]
	withLines := func(ls []string) []byte {
		bad := append([]member(nil), ms...)
		bad[entriesAt] = member{"entries.jsonl", []byte(strings.Join(ls, ""))}
		return pack(t, bad)
	}
	for name, ls := range map[string][]string{
		"delete entry 500":    append(append([]string{}, lines[:499]...), lines[500:]...),
		"duplicate entry 500": append(append(append([]string{}, lines[:500]...), lines[499]), lines[500:]...),
		"swap 10 and 11":      append(append(append([]string{}, lines[:9]...), lines[10], lines[9]), lines[11:]...),
		"truncate the tail":   lines[:newer-10],
		"drop the last":       lines[:len(lines)-1],
	} {
		ve := verifyFails(t, e, withLines(ls), old, name)
		t.Logf("%s: %v", name, ve)
	}
	// Swapping two entries with their seq prefixes kept in order is caught
	// by the hashes, at the first moved entry.
	swapped := append([]string{}, lines...)
	swapped[9], swapped[10] = strings.Replace(lines[10], `{"seq":11,`, `{"seq":10,`, 1), strings.Replace(lines[9], `{"seq":10,`, `{"seq":11,`, 1)
	if ve := verifyFails(t, e, withLines(swapped), old, "reorder"); !strings.Contains(ve.Place, "seq 10") {
		t.Errorf("reorder reported at %q", ve.Place)
	}

	// Rollback: an older bundle (size older) against the auditor's newer
	// checkpoint (size newer).
	newerCP := e.checkpoint("tenant:acme")
	olderBundle := e.exportUpTo(t, "tenant:acme", older)
	if _, err := audit.Verify(bytes.NewReader(olderBundle), e.v, nil); err != nil {
		t.Fatalf("the older bundle on its own: %v", err)
	}
	if ve := verifyFails(t, e, olderBundle, newerCP, "rollback"); !strings.Contains(ve.What, "rolled back") {
		t.Errorf("rollback reported as %v", ve)
	}

	// Fork: a second store with the same key holds the same first older
	// entries, then a different history, signed with the real key (an
	// insider with the key). Its bundle verifies on its own, but not
	// against the checkpoint the auditor kept of the real one (newer).
	fork := newEnvWith(t, storetest.Options{Dir: t.TempDir()}, e.skey, e.vkey)
	fork.fill("tenant:acme", 0, older, "")
	fork.checkpoint("tenant:acme")
	fork.fill("tenant:acme", older, newer, "-forged")
	forged := fork.export("tenant:acme", time.Time{}, time.Time{})
	if _, err := audit.Verify(bytes.NewReader(forged), e.v, old); err != nil {
		t.Fatalf("the forged bundle is consistent with the old checkpoint at %d (shared history): %v", older, err)
	}
	if ve := verifyFails(t, e, forged, newerCP, "fork"); !strings.Contains(ve.What, "forked") {
		t.Errorf("fork reported as %v", ve)
	}
	// Without the key, a forger reuses the real old checkpoint and drops
	// the signed newer ones: the bundle has no signed head for its size.
	fm := unpack(t, forged)
	var noHead []member
	for _, m := range fm {
		if strings.HasPrefix(m.name, "checkpoints/") && !strings.HasSuffix(m.name, fmt.Sprintf("%020d.txt", older)) {
			continue
		}
		noHead = append(noHead, m)
	}
	verifyFails(t, e, pack(t, noHead), nil, "fork without the key")
}

// The container is covered too (issue 11): one gzip member and nothing
// after it, nothing after the tar archive's end, regular files only,
// checkpoint files named by their own size, and exactly the frontier
// hashes the first entry needs. Each is refused, naming the place.
func TestVerifyRefusesWhatTheFormatDoesNotHold(t *testing.T) {
	e := newEnv(t)
	e.fill("system", 0, 40, "")
	e.checkpoint("system")
	e.fill("system", 40, 50, "")
	good := e.export("system", entry(20, "").Time, time.Time{}) // first 21: a frontier
	if _, err := audit.Verify(bytes.NewReader(good), e.v, nil); err != nil {
		t.Fatalf("the untouched bundle: %v", err)
	}
	ms := unpack(t, good)

	// Appended bytes, and a second gzip member (whose content alone would
	// verify).
	ve := verifyFails(t, e, append(bytes.Clone(good), "junk"...), nil, "appended junk")
	if !strings.Contains(ve.What, "after the gzip stream") {
		t.Errorf("appended junk reported as %v", ve)
	}
	verifyFails(t, e, append(bytes.Clone(good), good...), nil, "a second gzip member")
	verifyFails(t, e, append(bytes.Clone(good), 0), nil, "one zero byte appended")

	// Data inside the gzip member after the tar archive's end.
	var tarBytes bytes.Buffer
	zr, err := gzip.NewReader(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(&tarBytes, zr); err != nil {
		t.Fatal(err)
	}
	var inner bytes.Buffer
	zw := gzip.NewWriter(&inner)
	zw.Write(tarBytes.Bytes())
	zw.Write([]byte("hidden after the archive"))
	zw.Close()
	if ve := verifyFails(t, e, inner.Bytes(), nil, "data after the tar end"); !strings.Contains(ve.What, "after the end of the tar archive") {
		t.Errorf("data after the tar end reported as %v", ve)
	}

	// A checkpoint under another size's name.
	var renamed []member
	for _, m := range ms {
		if strings.HasPrefix(m.name, "checkpoints/") {
			m.name = "checkpoints/00000000000000000001.txt"
		}
		renamed = append(renamed, m)
	}
	if ve := verifyFails(t, e, pack(t, renamed), nil, "a renamed checkpoint"); !strings.HasPrefix(ve.Place, "checkpoints/") {
		t.Errorf("renamed checkpoint reported at %q", ve.Place)
	}

	// A member that is not a regular file.
	var buf bytes.Buffer
	zw = gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeSymlink, Linkname: "elsewhere"})
	tw.Close()
	zw.Close()
	if ve := verifyFails(t, e, buf.Bytes(), nil, "a symlink"); !strings.Contains(ve.What, "not a regular file") {
		t.Errorf("symlink reported as %v", ve)
	}

	// An extra frontier hash that no check would use, in the exact form an
	// export writes.
	var m audit.Manifest
	if err := json.Unmarshal(ms[0].data, &m); err != nil || len(m.Frontier) == 0 {
		t.Fatalf("manifest: %v %+v", err, m)
	}
	m.Frontier = append([]audit.Stored{{Index: 0, Hash: make([]byte, 32)}}, m.Frontier...)
	raw, _ := json.MarshalIndent(m, "", "  ")
	extra := append([]member{{"manifest.json", append(raw, '\n')}}, ms[1:]...)
	if ve := verifyFails(t, e, pack(t, extra), nil, "an extra frontier hash"); ve.Place != "manifest.json" {
		t.Errorf("extra frontier hash reported at %q", ve.Place)
	}
}

// An export covers everything it was asked for (issue 11): with no end it
// reaches the chain's last entry, with an end whose entries no checkpoint
// covers yet it signs one instead of failing or ending in the past, and a
// range already covered signs nothing new.
func TestExportCoversWhatWasAsked(t *testing.T) {
	e := newEnv(t)
	const chain = "tenant:acme"
	latest := func() uint64 {
		msg, err := e.svc.Latest(context.Background(), raftstore.Linearizable, chain)
		if err != nil {
			t.Fatal(err)
		}
		c, err := audit.OpenCheckpoint(msg, e.v)
		if err != nil {
			t.Fatal(err)
		}
		return c.Size
	}
	verified := func(b []byte) *audit.Report {
		t.Helper()
		rep, err := audit.Verify(bytes.NewReader(b), e.v, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	e.fill(chain, 0, 10, "")
	e.checkpoint(chain) // at 10
	e.fill(chain, 10, 15, "")
	if rep := verified(e.export(chain, time.Time{}, time.Time{})); rep.First != 1 || rep.Size != 15 {
		t.Fatalf("everything: %+v, want 1..15", rep)
	}
	e.fill(chain, 15, 20, "")
	// Up to entry 18 (seq 18): no checkpoint covers it; one is signed, at
	// the head (20).
	if rep := verified(e.export(chain, time.Time{}, entry(17, "").Time)); rep.Size != 20 {
		t.Fatalf("up to seq 18: %+v, want it to end at a checkpoint signed now (20)", rep)
	}
	e.fill(chain, 20, 25, "")
	// Up to seq 6: the checkpoint at 10 covers it; nothing new is signed.
	if rep := verified(e.export(chain, time.Time{}, entry(5, "").Time)); rep.Size != 10 {
		t.Fatalf("up to seq 6: %+v, want 10", rep)
	}
	if n := latest(); n != 20 {
		t.Fatalf("a covered range signed a checkpoint (latest %d)", n)
	}
	// From seq 21 to the end (checkpoints 20 and 25); Inspect reads the
	// range without verifying.
	b := e.export(chain, entry(20, "").Time, time.Time{})
	if rep := verified(b); rep.First != 21 || rep.Size != 25 {
		t.Fatalf("from seq 21: %+v, want 21..25", rep)
	}
	sum, err := audit.Inspect(bytes.NewReader(b))
	if err != nil || sum.First != 21 || sum.Size != 25 || sum.Chain != chain || sum.Checkpoints != 2 || sum.SignedAt.IsZero() {
		t.Fatalf("inspect: %+v %v", sum, err)
	}
}
