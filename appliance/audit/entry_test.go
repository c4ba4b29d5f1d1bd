package audit

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/raftstore"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// vectorEntries are the entries of the test vectors.
func vectorEntries() []Entry {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	op := Actor{Type: ActorOperator, ID: "operator"}
	return []Entry{
		{Time: t0, Actor: op, Action: "cluster.init", Target: "node:n1", Outcome: OutcomeSuccess, Details: map[string]string{"region": "eu-west-1"}},
		{Time: t0.Add(time.Second), Actor: op, Action: "tenant.create", Target: "tenant:acme", Outcome: OutcomeSuccess, RequestID: "01HQ", Source: "10.0.0.7"},
		{Time: t0.Add(2 * time.Second), Actor: Actor{Type: ActorSystem, ID: "system"}, Action: "key.create", Target: "subject:h:AAAAAAAAAAAAAAAAAAAAAA", Outcome: OutcomeSuccess},
		{Time: t0.Add(3 * time.Second), Actor: Actor{Type: ActorUser, ID: "u-42"}, Action: "record.read", Target: "guests/r1", Outcome: OutcomeDenied,
			Details: map[string]string{"reason": "quote \" backslash \\ tab \t nl \n ctl \x01 é ✓", "b": "2", "a": "1"}},
		{Time: t0.Add(4 * time.Second), Actor: Actor{Type: ActorAPIKey, ID: "k_1"}, Action: "cluster.remove_peer", Target: "node:n3", Outcome: OutcomeRequested},
	}
}

// vectorKey is a fixed signing key (a deterministic reader), so the
// signature is a vector too (Ed25519 signing is deterministic).
func vectorKey(t *testing.T) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), "custos-audit-test-vectors")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestVectors: known entries -> known canonical bytes, leaf hashes, links,
// Merkle roots and checkpoint signature (testdata/vectors.golden). Any
// change to the encoding or the tree breaks it.
func TestVectors(t *testing.T) {
	signer, verifier := vectorKey(t)
	var out bytes.Buffer
	hashes := map[int64]tlog.Hash{}
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		r := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			r[i] = hashes[x]
		}
		return r, nil
	})
	var link [32]byte
	for i, e := range vectorEntries() {
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatalf("entry %d does not decode: %v", i+1, err)
		}
		if again, _ := back.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("entry %d: decode-encode is not the identity", i+1)
		}
		stored, err := tlog.StoredHashes(int64(i), b, reader)
		if err != nil {
			t.Fatal(err)
		}
		for j, h := range stored {
			hashes[tlog.StoredHashIndex(0, int64(i))+int64(j)] = h
		}
		link = raftstore.ChainLink(link, tlog.RecordHash(b))
		root, err := tlog.TreeHash(int64(i+1), reader)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "entry %d: %s\nleaf %d: %s\nlink %d: %s\nroot %d: %s\n", i+1, b, i+1, tlog.RecordHash(b), i+1, hex.EncodeToString(link[:]), i+1, root)
		if i == 4 {
			c := Checkpoint{Origin: Origin(verifier.Name(), "system"), Size: 5, Root: root, Link: link, Time: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC)}
			msg, err := Sign(c, signer)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&out, "checkpoint:\n%s", msg)
			back, err := OpenCheckpoint(msg, verifier)
			if err != nil || back != c {
				t.Fatalf("checkpoint round trip: %+v %v", back, err)
			}
		}
	}
	golden(t, "vectors.golden", out.Bytes())
}

func TestEncodeRefusesInvalid(t *testing.T) {
	ok := vectorEntries()[0]
	for name, mut := range map[string]func(*Entry){
		"no time":          func(e *Entry) { e.Time = time.Time{} },
		"actor type":       func(e *Entry) { e.Actor.Type = "robot" },
		"no actor id":      func(e *Entry) { e.Actor.ID = "" },
		"action uppercase": func(e *Entry) { e.Action = "Tenant.Create" },
		"action space":     func(e *Entry) { e.Action = "tenant create" },
		"no target":        func(e *Entry) { e.Target = "" },
		"long target":      func(e *Entry) { e.Target = strings.Repeat("t", 257) },
		"outcome":          func(e *Entry) { e.Outcome = "maybe" },
		"long request id":  func(e *Entry) { e.RequestID = strings.Repeat("r", 129) },
		"bad utf-8":        func(e *Entry) { e.Target = "\xff" },
		"detail key":       func(e *Entry) { e.Details = map[string]string{"Bad Key": "v"} },
		"detail too long":  func(e *Entry) { e.Details = map[string]string{"k": strings.Repeat("v", 513)} },
		"too many details": func(e *Entry) {
			e.Details = map[string]string{}
			for i := 0; i < 17; i++ {
				e.Details[fmt.Sprintf("k%d", i)] = "v"
			}
		},
	} {
		e := ok
		e.Details = map[string]string{}
		mut(&e)
		if _, err := e.Encode(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestDecodeRefusesNonCanonical(t *testing.T) {
	b, _ := vectorEntries()[1].Encode()
	s := string(b)
	for name, in := range map[string]string{
		"spaces":          strings.Replace(s, `"action":`, `"action": `, 1),
		"key order":       strings.Replace(s, `{"v":1,"time"`, `{"time"`, 1) + "",
		"unknown field":   strings.Replace(s, `"v":1,`, `"v":1,"x":2,`, 1),
		"version 2":       strings.Replace(s, `"v":1`, `"v":2`, 1),
		"short time":      strings.Replace(s, `.000000006Z`, `.000000006+00:00`, 1),
		"escaped letter":  strings.Replace(s, `"tenant.create"`, `"tenant.\u0063reate"`, 1),
		"trailing data":   s + " ",
		"empty":           "",
		"not json":        "garbage",
		"null details":    strings.Replace(s, `"details":{}`, `"details":null`, 1),
		"missing details": strings.Replace(s, `,"details":{}`, ``, 1),
	} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: decoded %s", name, in)
		}
	}
}

// FuzzDecode: decoding never panics, and whatever decodes re-encodes to
// the same bytes.
func FuzzDecode(f *testing.F) {
	for _, e := range vectorEntries() {
		b, _ := e.Encode()
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := e.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded %q but re-encodes to %q (%v)", b, again, err)
		}
	})
}

// FuzzParseCheckpoint: parsing never panics; what parses prints back to
// the same text.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add("custos-audit-x/system\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nlink AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2026-01-02T03:05:00Z\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCheckpoint(text)
		if err != nil {
			return
		}
		if c.Text() != text {
			t.Fatalf("parsed %q, prints %q", text, c.Text())
		}
	})
}

// FuzzVerify: a bundle reader never panics on arbitrary input.
func FuzzVerify(f *testing.F) {
	_, v := vectorKey(&testing.T{})
	f.Add([]byte{0x1f, 0x8b})
	f.Add(benchBundle(f, 30)) // a valid bundle (a checkpoint at 30)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Verify(bytes.NewReader(b), v, nil)
		_, _ = io.Copy(io.Discard, bytes.NewReader(b))
	})
}
