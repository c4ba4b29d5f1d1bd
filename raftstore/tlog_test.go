package raftstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custos/custos/internal/testkit"
)

// refTree is the tree a chain's stored hashes must equal, computed from
// scratch: tlog.StoredHashes over an in-memory slice.
type refTree struct {
	hashes []tlog.Hash
	n      int64
}

func newRefTree(t testing.TB, datas [][]byte) *refTree {
	t.Helper()
	r := &refTree{}
	for _, d := range datas {
		hs, err := tlog.StoredHashes(r.n, d, r)
		if err != nil {
			t.Fatal(err)
		}
		r.hashes = append(r.hashes, hs...)
		r.n++
	}
	return r
}

func (r *refTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 || idx >= int64(len(r.hashes)) {
			return nil, fmt.Errorf("reference tree: no hash %d", idx)
		}
		out[i] = r.hashes[idx]
	}
	return out, nil
}

func (r *refTree) root(t testing.TB, n int64) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(n, r)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// randomData returns n entries of random length (empty included).
func randomData(rng *rand.Rand, prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		d := fmt.Appendf(nil, "%s-%d-", prefix, i)
		for k := rng.IntN(300); k > 0; k-- {
			d = append(d, byte(rng.Uint32()))
		}
		if rng.IntN(50) == 0 {
			d = nil
		}
		out[i] = d
	}
	return out
}

// appendSeq appends datas to chain, ten transactions per log entry from
// log index idx on, checks that they land right after the current head,
// and returns the next log index.
func appendSeq(t *testing.T, f *FSM, idx uint64, chain string, datas [][]byte) uint64 {
	t.Helper()
	var head uint64
	_ = f.view(func(r *ReadTx) error { head = r.ChainSize([]byte(chain)); return nil })
	for start := 0; start < len(datas); start += 10 {
		var txns []*Txn
		for _, d := range datas[start:min(start+10, len(datas))] {
			txns = append(txns, &Txn{Appends: []Append{{Chain: []byte(chain), Data: d}}})
		}
		for k, r := range results(t, f.ApplyBatch([]*raft.Log{entry(idx, txns...)})[0]) {
			if !r.Applied || r.Chains[0].Seq != head+uint64(start+k+1) {
				t.Fatalf("append %d: %+v, want seq %d", start+k, r, head+uint64(start+k+1))
			}
		}
		idx++
	}
	f.flush()
	return idx
}

// verifyChainTree checks a chain's tree against a from-scratch computation
// over datas (every record ever appended): the stored hashes byte for byte,
// every tree hash, and random inclusion and consistency proofs, which must
// verify against the tree hashes and fail for a tampered record or root.
func verifyChainTree(t testing.TB, r *ReadTx, chain string, datas [][]byte, rng *rand.Rand) []tlog.Hash {
	t.Helper()
	name, size := []byte(chain), uint64(len(datas))
	ref := newRefTree(t, datas)
	if got := r.ChainSize(name); got != size {
		t.Fatalf("chain %s: size %d, want %d", chain, got, size)
	}
	stored, err := r.ChainStoredHashes(name, 0, int64(len(ref.hashes)))
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(ref.hashes) {
		t.Fatalf("chain %s: %d stored hashes, want %d", chain, len(stored), len(ref.hashes))
	}
	for i := range stored {
		if stored[i] != ref.hashes[i] {
			t.Fatalf("chain %s: stored hash %d is %v, want %v", chain, i, stored[i], ref.hashes[i])
		}
	}
	roots := make([]tlog.Hash, size+1)
	for n := range roots {
		if roots[n], err = r.ChainTreeHash(name, uint64(n)); err != nil {
			t.Fatal(err)
		}
		if want := ref.root(t, int64(n)); roots[n] != want {
			t.Fatalf("chain %s: tree hash of size %d is %v, want %v", chain, n, roots[n], want)
		}
	}
	if size == 0 {
		return roots
	}
	type pair struct{ n, k uint64 } // a tree size and a record index or older size
	records := []pair{{size, 0}, {size, size - 1}, {1, 0}}
	trees := []pair{{size, size}, {size, 1}, {1, 1}}
	for range 100 {
		n := 1 + rng.Uint64N(size)
		records = append(records, pair{n, rng.Uint64N(n)})
		trees = append(trees, pair{n, 1 + rng.Uint64N(n)})
	}
	for _, p := range records {
		proof, err := r.ChainProveRecord(name, p.n, p.k)
		if err != nil {
			t.Fatal(err)
		}
		leaf := tlog.RecordHash(datas[p.k])
		if err := tlog.CheckRecord(proof, int64(p.n), roots[p.n], int64(p.k), leaf); err != nil {
			t.Fatalf("chain %s: record %d in size %d: %v", chain, p.k, p.n, err)
		}
		forged := tlog.RecordHash(append(bytes.Clone(datas[p.k]), 'x'))
		if tlog.CheckRecord(proof, int64(p.n), roots[p.n], int64(p.k), forged) == nil {
			t.Fatalf("chain %s: proof of record %d in size %d accepts a forged record", chain, p.k, p.n)
		}
	}
	for _, p := range trees {
		proof, err := r.ChainProveTree(name, p.n, p.k)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(proof, int64(p.n), roots[p.n], int64(p.k), roots[p.k]); err != nil {
			t.Fatalf("chain %s: size %d in size %d: %v", chain, p.k, p.n, err)
		}
		forged := roots[p.k]
		forged[0] ^= 1
		if tlog.CheckTree(proof, int64(p.n), roots[p.n], int64(p.k), forged) == nil {
			t.Fatalf("chain %s: proof of size %d in size %d accepts a forged root", chain, p.k, p.n)
		}
	}
	for range 20 {
		from := rng.Int64N(int64(len(ref.hashes)))
		to := from + rng.Int64N(int64(len(ref.hashes))-from+1)
		part, err := r.ChainStoredHashes(name, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(part) != fmt.Sprint(ref.hashes[from:to]) {
			t.Fatalf("chain %s: stored hashes [%d, %d) differ", chain, from, to)
		}
	}
	indexes := []int64{0, int64(len(ref.hashes)) - 1}
	for range 20 {
		indexes = append(indexes, rng.Int64N(int64(len(ref.hashes))))
	}
	got, err := r.ChainReadHashes(name, indexes)
	if err != nil {
		t.Fatal(err)
	}
	for i, idx := range indexes {
		if got[i] != ref.hashes[idx] {
			t.Fatalf("chain %s: ChainReadHashes(%d) = %v, want %v", chain, idx, got[i], ref.hashes[idx])
		}
	}
	return roots
}

// Chains of random sizes, appended interleaved in random batches (several
// appends per transaction, transactions per entry, entries per commit),
// hold exactly the tree a from-scratch computation gives.
func TestChainTreeMatchesReference(t *testing.T) {
	const seed = 6962
	rng := rand.New(rand.NewPCG(seed, 0))
	chains := []struct {
		name string
		size int
	}{
		{"one", 1}, {"two", 2}, {"three", 3}, {"seven", 7}, {"eight", 8}, {"nine", 9},
		{"random-a", 10 + rng.IntN(3000)}, {"random-b", 10 + rng.IntN(3000)}, {"random-c", 10 + rng.IntN(3000)},
	}
	datas := make([][][]byte, len(chains))
	left := 0
	for i, c := range chains {
		datas[i] = randomData(rng, c.name, c.size)
		left += c.size
	}
	t.Logf("seed %d, chain sizes %v", seed, chains)

	f := newTestFSM(t)
	next := make([]int, len(chains)) // records appended per chain
	idx := uint64(1)
	for left > 0 {
		var logs []*raft.Log
		var want [][]ChainPos
		for e := 1 + rng.IntN(4); e > 0 && left > 0; e-- {
			var txns []*Txn
			var pos []ChainPos
			for k := 1 + rng.IntN(8); k > 0 && left > 0; k-- {
				txn := &Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("b"), Key: fmt.Appendf(nil, "%d", idx), Value: []byte("v")}}}
				for a := 1 + rng.IntN(3); a > 0 && left > 0; a-- {
					c := rng.IntN(len(chains))
					for next[c] == chains[c].size {
						c = (c + 1) % len(chains)
					}
					txn.Appends = append(txn.Appends, Append{Chain: []byte(chains[c].name), Data: datas[c][next[c]]})
					next[c]++
					left--
					pos = append(pos, ChainPos{Chain: chains[c].name, Seq: uint64(next[c])})
				}
				txns = append(txns, txn)
			}
			logs = append(logs, entry(idx, txns...))
			want = append(want, pos)
			idx++
		}
		for i, resp := range f.ApplyBatch(logs) {
			var got []ChainPos
			for _, r := range results(t, resp) {
				for _, p := range r.Chains {
					got = append(got, ChainPos{Chain: p.Chain, Seq: p.Seq})
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want[i]) {
				t.Fatalf("entry %d landed at %v, want %v", logs[i].Index, got, want[i])
			}
		}
		if rng.IntN(3) == 0 {
			f.flush()
		}
	}
	f.flush()
	for i, c := range chains {
		t.Run(c.name, func(t *testing.T) {
			_ = f.view(func(r *ReadTx) error {
				verifyChainTree(t, r, c.name, datas[i], rng)
				return nil
			})
		})
	}
}

// The leaves of the Certificate Transparency (RFC 6962) reference test
// vectors; the golden roots are theirs. So the layout is checked against an
// independent implementation, and can never change silently.
func TestChainTreeGolden(t *testing.T) {
	f := newTestFSM(t)
	var datas [][]byte
	for _, leaf := range []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657"} {
		d, err := hex.DecodeString(leaf)
		if err != nil {
			t.Fatal(err)
		}
		datas = append(datas, d)
	}
	appendSeq(t, f, 1, "golden", datas)
	golden, err := os.Open("testdata/chain_tree_7.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer golden.Close()
	lines := 0
	_ = f.view(func(r *ReadTx) error {
		for sc := bufio.NewScanner(golden); sc.Scan(); lines++ {
			size, want, _ := strings.Cut(sc.Text(), " ")
			n, err := strconv.ParseUint(size, 10, 64)
			if err != nil {
				t.Fatalf("golden line %q: %v", sc.Text(), err)
			}
			h, err := r.ChainTreeHash([]byte("golden"), n)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(h[:]); got != want {
				t.Fatalf("tree hash of size %d: %s, golden %s", n, got, want)
			}
		}
		if _, err := r.ChainStoredHashes([]byte("golden"), 0, 11); err != nil {
			t.Fatalf("7 records store 11 hashes: %v", err)
		}
		return nil
	})
	if lines != 7 {
		t.Fatalf("golden file has %d sizes, want 7", lines)
	}
}

// Bad arguments are refused with ErrOutOfRange and the chain's name.
func TestChainTreeReadErrors(t *testing.T) {
	f := newTestFSM(t)
	appendSeq(t, f, 1, "audit", randomData(rand.New(rand.NewPCG(1, 2)), "a", 5))
	count := tlog.StoredHashCount(5)
	cases := []struct {
		name  string
		chain string
		call  func(r *ReadTx, chain []byte) error
		ok    bool
	}{
		{"tree hash of the empty tree", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainTreeHash(c, 0); return err }, true},
		{"tree hash of the whole chain", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainTreeHash(c, 5); return err }, true},
		{"tree hash beyond the chain", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainTreeHash(c, 6); return err }, false},
		{"tree hash of an unknown chain", "nope", func(r *ReadTx, c []byte) error { _, err := r.ChainTreeHash(c, 1); return err }, false},
		{"record beyond the chain", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainProveRecord(c, 6, 0); return err }, false},
		{"record not in the tree", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainProveRecord(c, 3, 3); return err }, false},
		{"record in the empty tree", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainProveRecord(c, 0, 0); return err }, false},
		{"last record", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainProveRecord(c, 5, 4); return err }, true},
		{"tree proof beyond the chain", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainProveTree(c, 6, 1); return err }, false},
		{"tree proof from size 0", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainProveTree(c, 5, 0); return err }, false},
		{"tree proof from a larger tree", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainProveTree(c, 4, 5); return err }, false},
		{"tree proof of equal sizes", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainProveTree(c, 5, 5); return err }, true},
		{"stored hashes from below 0", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainStoredHashes(c, -1, 1); return err }, false},
		{"stored hashes reversed", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainStoredHashes(c, 2, 1); return err }, false},
		{"stored hashes past the end", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainStoredHashes(c, 0, count+1); return err }, false},
		{"all stored hashes", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainStoredHashes(c, 0, count); return err }, true},
		{"read a hash past the end", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainReadHashes(c, []int64{0, count}); return err }, false},
		{"read a negative hash index", "audit", func(r *ReadTx, c []byte) error { _, err := r.ChainReadHashes(c, []int64{-1}); return err }, false},
		{"read hashes of an unknown chain", "nope", func(r *ReadTx, c []byte) error { _, err := r.ChainReadHashes(c, []int64{0}); return err }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_ = f.view(func(r *ReadTx) error {
				err := tc.call(r, []byte(tc.chain))
				switch {
				case tc.ok && err != nil:
					t.Fatalf("refused: %v", err)
				case !tc.ok && !errors.Is(err, ErrOutOfRange):
					t.Fatalf("err = %v, want ErrOutOfRange", err)
				case !tc.ok && !strings.Contains(err.Error(), strconv.Quote(tc.chain)):
					t.Fatalf("error %q does not name chain %q", err, tc.chain)
				}
				return nil
			})
		})
	}
	// RFC 6962: the empty tree's hash is SHA-256 of the empty string.
	_ = f.view(func(r *ReadTx) error {
		if h, _ := r.ChainTreeHash([]byte("audit"), 0); h != sha256.Sum256(nil) {
			t.Fatalf("empty tree hash %x", h)
		}
		return nil
	})
}

// A snapshot restored on another node carries the tree: both continue the
// chain from the same log with no gap and the same hashes.
func TestChainTreeSurvivesSnapshotRestore(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	datas := randomData(rng, "audit", 300)
	src := newTestFSM(t)
	idx := appendSeq(t, src, 1, "audit", datas[:200])
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	dst := newTestFSM(t)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	appendSeq(t, src, idx, "audit", datas[200:])
	appendSeq(t, dst, idx, "audit", datas[200:])
	var roots [2][]tlog.Hash
	for i, f := range []*FSM{src, dst} {
		_ = f.view(func(r *ReadTx) error {
			roots[i] = verifyChainTree(t, r, "audit", datas, rng)
			return nil
		})
	}
	if fmt.Sprint(roots[0]) != fmt.Sprint(roots[1]) {
		t.Fatal("tree hashes differ between the snapshotted and the restored node")
	}
	if !bytes.Equal(dumpOf(t, src), dumpOf(t, dst)) {
		t.Fatal("states differ after continuing from the snapshot")
	}
}

// verifyLinks checks the hash links of the entries a chain holds, from
// where pruning left it, and returns their data.
func verifyLinks(t testing.TB, r *ReadTx, chain string) (first uint64, datas [][]byte) {
	t.Helper()
	first, prev := r.ChainPruned([]byte(chain))
	want := first
	r.ChainEntries([]byte(chain), 0, func(seq uint64, link [32]byte, data []byte) bool {
		if seq != want {
			t.Fatalf("chain %s: entry %d, want %d", chain, seq, want)
		}
		if ChainLink(prev, tlog.RecordHash(data)) != link {
			t.Fatalf("chain %s: entry %d does not link to the one before", chain, seq)
		}
		datas = append(datas, bytes.Clone(data))
		prev, want = link, want+1
		return true
	})
	if size, head := r.ChainHead([]byte(chain)); size != want-1 || (size > 0 && head != prev) {
		t.Fatalf("chain %s: entries end at %d, head at %d", chain, want-1, size)
	}
	return first, datas
}

func TestChainPrune(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := newTestFSM(t)
	datas := randomData(rng, "audit", 100)
	idx := appendSeq(t, f, 1, "audit", datas)
	idx = appendSeq(t, f, idx, "other", randomData(rng, "other", 5))
	var roots []tlog.Hash
	var links [][32]byte // links[seq]
	_ = f.view(func(r *ReadTx) error {
		roots = verifyChainTree(t, r, "audit", datas, rng)
		links = make([][32]byte, 101)
		for seq := uint64(1); seq <= 100; seq++ {
			_, links[seq], _ = r.ChainEntry([]byte("audit"), seq)
		}
		return nil
	})
	steps := []struct {
		name      string
		txn       *Txn
		wantFirst uint64 // first entry still held afterwards
	}{
		{"below 1 prunes nothing", &Txn{Ops: []Op{PruneChain([]byte("audit"), 1)}}, 1},
		{"a failed condition prunes nothing", &Txn{Conds: []Cond{{Kind: CondPresent, Bucket: Path("b"), Key: []byte("nope")}},
			Ops: []Op{PruneChain([]byte("audit"), 50)}}, 1},
		{"below 40", &Txn{Ops: []Op{PruneChain([]byte("audit"), 40)}}, 40},
		{"a point already pruned is a no-op", &Txn{Ops: []Op{PruneChain([]byte("audit"), 20)}}, 40},
		{"the same point again", &Txn{Ops: []Op{PruneChain([]byte("audit"), 40)}}, 40},
		{"with a put in the same transaction", &Txn{Ops: []Op{PruneChain([]byte("audit"), 60),
			{Kind: OpPut, Bucket: Path("b"), Key: []byte("k"), Value: []byte("v")}}}, 60},
		{"past the head keeps the head", &Txn{Ops: []Op{PruneChain([]byte("audit"), 1000)}}, 100},
		{"an unknown chain", &Txn{Ops: []Op{PruneChain([]byte("nope"), 10)}}, 100},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := results(t, f.Apply(entry(idx, st.txn)))[0]
			idx++
			if r.Err != nil {
				t.Fatalf("prune refused: %v", r.Err)
			}
			_ = f.view(func(r *ReadTx) error {
				first, link := r.ChainPruned([]byte("audit"))
				if first != st.wantFirst || link != links[first-1] {
					t.Fatalf("ChainPruned = %d %x, want %d %x", first, link, st.wantFirst, links[st.wantFirst-1])
				}
				got, held := verifyLinks(t, r, "audit")
				if got != st.wantFirst || len(held) != 101-int(first) {
					t.Fatalf("entries %d.. (%d of them), want %d..100", got, len(held), st.wantFirst)
				}
				for seq := uint64(1); seq <= 100; seq++ {
					if _, _, ok := r.ChainEntry([]byte("audit"), seq); ok != (seq >= first) {
						t.Fatalf("entry %d present = %v after pruning below %d", seq, ok, first)
					}
				}
				// The tree does not notice: same hashes, same proofs.
				if again := verifyChainTree(t, r, "audit", datas, rng); fmt.Sprint(again) != fmt.Sprint(roots) {
					t.Fatal("pruning changed a tree hash")
				}
				if first, _ := r.ChainPruned([]byte("other")); first != 1 || r.ChainSize([]byte("other")) != 5 {
					t.Fatal("pruning touched another chain")
				}
				if first, _ := r.ChainPruned([]byte("nope")); first != 1 || r.ChainSize([]byte("nope")) != 0 || r.tx.Bucket(bucketTlog).Bucket([]byte("nope")) != nil {
					t.Fatal("pruning an unknown chain created it")
				}
				return nil
			})
		})
	}
	// The chain goes on from its head.
	more := randomData(rng, "more", 5)
	appendSeq(t, f, idx, "audit", more)
	_ = f.view(func(r *ReadTx) error {
		verifyChainTree(t, r, "audit", append(datas, more...), rng)
		if first, held := verifyLinks(t, r, "audit"); first != 100 || len(held) != 6 {
			t.Fatalf("after appending: entries from %d, %d of them", first, len(held))
		}
		return nil
	})
}

// Stored hashes that do not cover a chain — a chain written before they
// existed, or by an older node in a rolling upgrade — are rebuilt from its
// entries at its next append or prune, the same on every node; if the
// entries needed were pruned the append is refused.
func TestChainTreeRebuiltWhenIncomplete(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(tx *bolt.Tx) error
		pruneAt uint64 // prune instead of append to trigger the rebuild
		refused bool
	}{
		{"no stored hashes", func(tx *bolt.Tx) error { return tx.Bucket(bucketTlog).DeleteBucket([]byte("audit")) }, 0, false},
		{"last records missing", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketTlog).Bucket([]byte("audit"))
			for record := int64(45); record < 50; record++ {
				if b.Get(binary8(record)) == nil {
					return fmt.Errorf("no record %d to remove", record)
				}
				if err := b.Delete(binary8(record)); err != nil {
					return err
				}
			}
			return nil
		}, 0, false},
		{"rebuilt before a prune", func(tx *bolt.Tx) error { return tx.Bucket(bucketTlog).DeleteBucket([]byte("audit")) }, 30, false},
		{"entries pruned", func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketChains).Bucket([]byte("audit")).Delete(binary8(1)); err != nil {
				return err
			}
			return tx.Bucket(bucketTlog).DeleteBucket([]byte("audit"))
		}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 5))
			f := newTestFSM(t)
			datas := randomData(rng, "audit", 51)
			idx := appendSeq(t, f, 1, "audit", datas[:50])
			if err := f.db.Update(tc.damage); err != nil {
				t.Fatal(err)
			}
			_ = f.view(func(r *ReadTx) error {
				if _, err := r.ChainTreeHash([]byte("audit"), 50); err == nil {
					t.Fatal("the damage does not show")
				}
				return nil
			})
			txn := &Txn{Appends: []Append{{Chain: []byte("audit"), Data: datas[50]}}}
			if tc.pruneAt > 0 {
				txn = &Txn{Ops: []Op{PruneChain([]byte("audit"), tc.pruneAt)}}
				datas = datas[:50]
			}
			r := results(t, f.Apply(entry(idx, txn)))[0]
			if tc.refused {
				if !errors.Is(r.Err, ErrChainUnwritable) || r.Applied {
					t.Fatalf("result %+v, want ErrChainUnwritable", r)
				}
				return
			}
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			_ = f.view(func(r *ReadTx) error {
				verifyChainTree(t, r, "audit", datas, rng)
				return nil
			})
		})
	}
}

func binary8(i int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

var errInjected = errors.New("audit store unavailable (injected)")

// With the chain fault hook armed, a transaction that appends to the chain
// is refused whole with ErrChainUnwritable, the other transactions of the
// same entry apply, and the chain continues with no gap once it clears.
func TestFSMChainFaultFailsClosed(t *testing.T) {
	f := newTestFSM(t)
	var armed atomic.Bool
	f.chainFault = func(chain, _ []byte) error {
		if armed.Load() && string(chain) == "audit" {
			return errInjected
		}
		return nil
	}
	withAudit := func(key, rec string) *Txn {
		return &Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("b"), Key: []byte(key), Value: []byte("v")}},
			Appends: []Append{{Chain: []byte("audit"), Data: []byte(rec)}}}
	}
	results(t, f.Apply(entry(1, withAudit("k1", "r1"))))
	armed.Store(true)
	res := results(t, f.Apply(entry(2,
		put("b", "plain", "v"),
		withAudit("k2", "r2"),
		&Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("b"), Key: []byte("k3"), Value: []byte("v")}},
			Appends: []Append{{Chain: []byte("other"), Data: []byte("o1")}}},
	)))
	if !res[0].Applied || !res[2].Applied || res[1].Applied {
		t.Fatalf("results %+v", res)
	}
	if !errors.Is(res[1].Err, ErrChainUnwritable) || errors.Is(res[1].Err, ErrConflict) || !strings.Contains(res[1].Err.Error(), `"audit"`) {
		t.Fatalf("refused with %v, want ErrChainUnwritable naming the chain", res[1].Err)
	}
	if _, _, ok := get(t, f, "b", "k2"); ok {
		t.Fatal("the refused transaction's put is visible")
	}
	if res[2].Revision != res[0].Revision+1 {
		t.Fatalf("revisions %d, %d: the refused transaction took one", res[0].Revision, res[2].Revision)
	}
	armed.Store(false)
	r := results(t, f.Apply(entry(3, withAudit("k4", "r4"))))[0]
	if !r.Applied || r.Chains[0].Seq != 2 {
		t.Fatalf("after the fault: %+v, want seq 2", r)
	}
	_ = f.view(func(r *ReadTx) error {
		if _, datas := verifyLinks(t, r, "audit"); fmt.Sprintf("%q", datas) != `["r1" "r4"]` {
			t.Fatalf("chain holds %q", datas)
		}
		verifyChainTree(t, r, "audit", [][]byte{[]byte("r1"), []byte("r4")}, rand.New(rand.NewPCG(1, 1)))
		return nil
	})
}

// A 3-node cluster keeps one chain through a leader change, a node restart
// and a snapshot install: every append lands right after the previous one
// (no gap, no duplicate) and every node holds the same links and tree.
func TestClusterChainTreeAcrossLeaderChangeAndRestart(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = 16, 4, 50*time.Millisecond
	})
	rng := rand.New(rand.NewPCG(9, 9))
	datas := randomData(rng, "audit", 200)
	nodes := append([]*Store(nil), c.nodes...)
	next := 0
	write := func(through func() *Store, n int) {
		t.Helper()
		for range n {
			s := through()
			res, err := s.Apply(ctxT(t), &Txn{
				Ops:     []Op{{Kind: OpPut, Bucket: Path("b"), Key: fmt.Appendf(nil, "%d", next), Value: []byte("v")}},
				Appends: []Append{{Chain: []byte("audit"), Data: datas[next]}},
			})
			if err != nil || !res.Applied {
				t.Fatalf("write %d via %s: %+v %v", next, s.NodeID(), res, err)
			}
			if res.Chains[0].Seq != uint64(next+1) {
				t.Fatalf("write %d landed at seq %d", next, res.Chains[0].Seq)
			}
			next++
		}
	}
	anyNode := func() *Store { return nodes[rng.IntN(len(nodes))] }
	write(c.waitLeader, 40)

	old := c.waitLeader()
	target := c.follower()
	if err := old.TransferLeadership(ctxT(t), target.NodeID()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "new leader", target.IsLeader)
	// Writes forwarded to the old leader while it steps down would have an
	// unknown outcome (ErrNoLeader): let every node learn the new one first.
	testkit.Eventually(t, "every node follows the new leader", func() bool {
		for _, n := range nodes {
			if n.Status().LeaderID != target.NodeID() {
				return false
			}
		}
		return true
	})
	write(anyNode, 40)

	// Restart a follower while the others write and snapshot past it, so
	// it comes back through a snapshot install.
	var down *Store
	for i, n := range nodes {
		if !n.IsLeader() {
			down, nodes = n, append(nodes[:i:i], nodes[i+1:]...)
			break
		}
	}
	cfg := down.cfg
	cfg.ListenAddress = cfg.AdvertiseAddress
	if err := down.Close(); err != nil {
		t.Fatal(err)
	}
	write(anyNode, 100)
	leader := c.waitLeader()
	testkit.Eventually(t, "a snapshot past the stopped node", func() bool {
		_ = leader.raft.Snapshot().Error()
		first, _ := leader.logs.FirstIndex()
		return first > down.fsm.AppliedIndex()+1
	})
	back, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	nodes = append(nodes, back)
	write(anyNode, 20)

	var roots [][]tlog.Hash
	for _, n := range nodes {
		if err := n.View(ctxT(t), Linearizable, func(r *ReadTx) error {
			if first, held := verifyLinks(t, r, "audit"); first != 1 || fmt.Sprint(held) != fmt.Sprint(datas) {
				t.Fatalf("node %s: chain from %d holds other data", n.NodeID(), first)
			}
			roots = append(roots, verifyChainTree(t, r, "audit", datas, rng))
			return nil
		}); err != nil {
			t.Fatalf("node %s (restarted: %v): %v; status %+v", n.NodeID(), n == back, err, n.Status())
		}
	}
	for i := range roots {
		if fmt.Sprint(roots[i]) != fmt.Sprint(roots[0]) {
			t.Fatalf("node %s has other tree hashes than %s", nodes[i].NodeID(), nodes[0].NodeID())
		}
	}
	if back.fsm.restores.Load() == 0 {
		t.Log("the restarted node caught up from the log, not a snapshot")
	}
}

// The chain fault hook, set on every node, refuses a write with its audit
// append as a business error, also through a follower; its puts are
// nowhere, and the chain goes on with no gap. The hook decides from the
// record, so every node decides the same whenever it applies the entry.
func TestClusterChainFaultFailsClosed(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		cfg.ChainFault = func(chain, data []byte) error {
			if bytes.HasPrefix(data, []byte("poison")) {
				return errInjected
			}
			return nil
		}
	})
	audited := func(key, rec string) *Txn {
		return &Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("b"), Key: []byte(key), Value: []byte("v")}},
			Appends: []Append{{Chain: []byte("audit"), Data: []byte(rec)}}}
	}
	if _, err := c.follower().Apply(ctxT(t), audited("k1", "r1")); err != nil {
		t.Fatal(err)
	}
	for _, via := range []*Store{c.waitLeader(), c.follower()} {
		res, err := via.Apply(ctxT(t), audited("k2", "poison"))
		if err != nil {
			t.Fatalf("via %s: %v", via.NodeID(), err)
		}
		if res.Applied || !errors.Is(res.Err, ErrChainUnwritable) || !strings.Contains(res.Err.Error(), `"audit"`) {
			t.Fatalf("via %s: %+v, want refused with ErrChainUnwritable naming the chain", via.NodeID(), res)
		}
	}
	res, err := c.follower().Apply(ctxT(t), audited("k3", "r3"))
	if err != nil || !res.Applied || res.Chains[0].Seq != 2 {
		t.Fatalf("after the refused writes: %+v %v, want seq 2", res, err)
	}
	for _, n := range c.nodes {
		if err := n.View(ctxT(t), Linearizable, func(r *ReadTx) error {
			if _, _, ok := r.Get(Path("b"), []byte("k2")); ok {
				t.Fatalf("node %s: the refused write is visible", n.NodeID())
			}
			if _, held := verifyLinks(t, r, "audit"); fmt.Sprintf("%q", held) != `["r1" "r3"]` {
				t.Fatalf("node %s: chain holds %q", n.NodeID(), held)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}
