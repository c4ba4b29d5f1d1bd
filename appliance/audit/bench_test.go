package audit

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/raftstore"
)

// benchBundle builds, in memory, the bundle of a chain of n entries with a
// checkpoint every 1000 entries, signed with the vector key.
func benchBundle(b testing.TB, n int) []byte {
	b.Helper()
	signer, verifier := vectorKey(&testing.T{})
	tree := map[int64]tlog.Hash{}
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = tree[x]
		}
		return out, nil
	})
	entries := make([][]byte, n)
	var link [32]byte
	var cps [][]byte
	origin := Origin(verifier.Name(), "tenant:bench")
	for i := 0; i < n; i++ {
		e := Entry{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
			Actor: Actor{Type: ActorUser, ID: fmt.Sprintf("u-%d", i%97)}, Action: "record.read",
			Target: fmt.Sprintf("guests/r%d", i), Outcome: OutcomeSuccess, RequestID: "01HQXYZ", Source: "10.1.2.3",
			Details: map[string]string{"collection": "guests"}}
		data, err := e.Encode()
		if err != nil {
			b.Fatal(err)
		}
		entries[i] = data
		hs, err := tlog.StoredHashes(int64(i), data, reader)
		if err != nil {
			b.Fatal(err)
		}
		for j, h := range hs {
			tree[tlog.StoredHashIndex(0, int64(i))+int64(j)] = h
		}
		link = raftstore.ChainLink(link, tlog.RecordHash(data))
		if (i+1)%1000 == 0 || i == n-1 {
			root, err := tlog.TreeHash(int64(i+1), reader)
			if err != nil {
				b.Fatal(err)
			}
			msg, err := Sign(Checkpoint{Origin: origin, Size: uint64(i + 1), Root: root, Link: link, Time: time.Unix(0, 0).UTC()}, signer)
			if err != nil {
				b.Fatal(err)
			}
			cps = append(cps, msg)
		}
	}
	hashes := make([]tlog.Hash, tlog.StoredHashCount(int64(n)))
	for i := range hashes {
		hashes[i] = tree[int64(i)]
	}
	bundle := &Bundle{
		Manifest:    Manifest{Format: BundleFormat, Origin: origin, Chain: "tenant:bench", First: 1, Size: uint64(n), PrevLink: make([]byte, 32), HashStart: 0, Frontier: []Stored{}},
		Checkpoints: cps,
		Hashes:      hashes,
		Entries: func(fn func(uint64, []byte) error) error {
			for i, d := range entries {
				if err := fn(uint64(i+1), d); err != nil {
					return err
				}
			}
			return nil
		},
	}
	for i, d := range entries {
		bundle.EntriesLen += int64(len(EntryLine(uint64(i+1), d)))
	}
	var buf bytes.Buffer
	if err := bundle.Write(&buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkVerify measures offline verification of an exported bundle of
// 1,000,000 entries (the target: at least 1 M entries/s per core;
// run with -cpu 1). It reports entries/s.
func BenchmarkVerify(b *testing.B) {
	const n = 1_000_000
	bundle := benchBundle(b, n)
	_, verifier := vectorKey(&testing.T{})
	b.SetBytes(int64(len(bundle)))
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		rep, err := Verify(bytes.NewReader(bundle), verifier, nil)
		if err != nil || rep.Size != n {
			b.Fatalf("%+v %v", rep, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "entries/s")
}
