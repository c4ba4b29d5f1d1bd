package raftstore

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"golang.org/x/mod/sumdb/tlog"
)

func newTestFSM(t *testing.T) *FSM {
	t.Helper()
	f, err := OpenFSM(filepath.Join(t.TempDir(), "state.db"), nil, func(err error) { t.Fatalf("fatal: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// entry builds a raft log entry carrying txns.
func entry(index uint64, txns ...*Txn) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: encodeBatch(txns)}
}

func put(bucket, key, value string) *Txn {
	return &Txn{Ops: []Op{{Kind: OpPut, Bucket: Path(bucket), Key: []byte(key), Value: []byte(value)}}}
}

func results(t *testing.T, resp interface{}) []Result {
	t.Helper()
	r, ok := resp.([]Result)
	if !ok {
		t.Fatalf("response %T, want []Result", resp)
	}
	return r
}

func get(t *testing.T, f *FSM, bucket, key string) (string, uint64, bool) {
	t.Helper()
	f.flush()
	var v []byte
	var ver uint64
	var ok bool
	if err := f.view(func(r *ReadTx) error { v, ver, ok = r.Get(Path(bucket), []byte(key)); return nil }); err != nil {
		t.Fatal(err)
	}
	return string(v), ver, ok
}

func TestFSMConditions(t *testing.T) {
	f := newTestFSM(t)
	res := results(t, f.Apply(entry(1, put("b", "k", "v1"))))
	if !res[0].Applied || res[0].Revision != 1 {
		t.Fatalf("first put: %+v", res[0])
	}
	cases := []struct {
		name      string
		cond      Cond
		wantApply bool
	}{
		{"absent on existing key fails", Cond{Kind: CondAbsent, Bucket: Path("b"), Key: []byte("k")}, false},
		{"absent on missing key holds", Cond{Kind: CondAbsent, Bucket: Path("b"), Key: []byte("other")}, true},
		{"absent in missing bucket holds", Cond{Kind: CondAbsent, Bucket: Path("nope", "deeper"), Key: []byte("k")}, true},
		{"present on existing key holds", Cond{Kind: CondPresent, Bucket: Path("b"), Key: []byte("k")}, true},
		{"present on missing key fails", Cond{Kind: CondPresent, Bucket: Path("b"), Key: []byte("zz")}, false},
		{"version matches", Cond{Kind: CondVersion, Bucket: Path("b"), Key: []byte("k"), Version: 1}, true},
		{"version differs", Cond{Kind: CondVersion, Bucket: Path("b"), Key: []byte("k"), Version: 7}, false},
		{"version 0 means absent", Cond{Kind: CondVersion, Bucket: Path("b"), Key: []byte("missing"), Version: 0}, true},
	}
	idx := uint64(2)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			txn := &Txn{
				Conds: []Cond{tc.cond},
				Ops:   []Op{{Kind: OpPut, Bucket: Path("side"), Key: []byte(tc.name), Value: []byte("x")}},
			}
			r := results(t, f.Apply(entry(idx, txn)))[0]
			idx++
			if r.Applied != tc.wantApply {
				t.Fatalf("applied = %v, want %v (%+v)", r.Applied, tc.wantApply, r)
			}
			_, _, ok := get(t, f, "side", tc.name)
			if ok != tc.wantApply {
				t.Fatalf("side effect present = %v, want %v", ok, tc.wantApply)
			}
			if !tc.wantApply && r.FailedCond != 0 {
				t.Fatalf("FailedCond = %d, want 0", r.FailedCond)
			}
		})
	}
}

func TestFSMPutsDeletesAndVersions(t *testing.T) {
	f := newTestFSM(t)
	txn := &Txn{Ops: []Op{
		{Kind: OpPut, Bucket: Path("t", "acme", "guests"), Key: []byte("g1"), Value: []byte("one")},
		{Kind: OpPut, Bucket: Path("t", "acme", "guests"), Key: []byte("g2"), Value: []byte("two")},
		{Kind: OpPut, Bucket: Path("t", "other"), Key: []byte("x"), Value: []byte("y")},
	}}
	if r := results(t, f.Apply(entry(1, txn)))[0]; !r.Applied {
		t.Fatalf("%+v", r)
	}
	del := &Txn{Ops: []Op{
		{Kind: OpDelete, Bucket: Path("t", "acme", "guests"), Key: []byte("g1")},
		{Kind: OpDelete, Bucket: Path("missing"), Key: []byte("nothing")},
		{Kind: OpPut, Bucket: Path("t", "acme", "guests"), Key: []byte("g2"), Value: []byte("TWO")},
	}}
	r := results(t, f.Apply(entry(2, del)))[0]
	if !r.Applied || r.Revision != 2 {
		t.Fatalf("%+v", r)
	}
	if _, _, ok := getPath(t, f, Path("t", "acme", "guests"), "g1"); ok {
		t.Fatal("g1 still present after delete")
	}
	if v, ver, _ := getPath(t, f, Path("t", "acme", "guests"), "g2"); v != "TWO" || ver != 2 {
		t.Fatalf("g2 = %q@%d", v, ver)
	}
	drop := &Txn{Ops: []Op{{Kind: OpDeleteBucket, Bucket: Path("t"), Key: []byte("acme")}}}
	if r := results(t, f.Apply(entry(3, drop)))[0]; !r.Applied {
		t.Fatalf("%+v", r)
	}
	if _, _, ok := getPath(t, f, Path("t", "acme", "guests"), "g2"); ok {
		t.Fatal("bucket delete left data")
	}
	if v, _, ok := getPath(t, f, Path("t", "other"), "x"); !ok || v != "y" {
		t.Fatal("bucket delete touched a sibling")
	}
}

func getPath(t *testing.T, f *FSM, path [][]byte, key string) (string, uint64, bool) {
	t.Helper()
	var v []byte
	var ver uint64
	var ok bool
	f.flush()
	_ = f.view(func(r *ReadTx) error { v, ver, ok = r.Get(path, []byte(key)); return nil })
	return string(v), ver, ok
}

// A transaction that hits a business error leaves nothing behind, while the
// other transactions of the same entry apply.
func TestFSMConflictIsAtomicWithinBatch(t *testing.T) {
	f := newTestFSM(t)
	results(t, f.Apply(entry(1, put("b", "leaf", "x"))))
	bad := &Txn{
		Ops: []Op{
			{Kind: OpPut, Bucket: Path("b"), Key: []byte("before"), Value: []byte("1")},
			// "leaf" is a key, so it cannot be a bucket on the path.
			{Kind: OpPut, Bucket: Path("b", "leaf"), Key: []byte("k"), Value: []byte("2")},
		},
		Appends: []Append{{Chain: []byte("audit"), Data: []byte("bad")}},
	}
	good := &Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("b"), Key: []byte("good"), Value: []byte("3")}},
		Appends: []Append{{Chain: []byte("audit"), Data: []byte("good")}}}
	res := results(t, f.Apply(entry(2, good, bad, good)))
	if !res[0].Applied || res[1].Applied || !res[2].Applied {
		t.Fatalf("results %+v", res)
	}
	if !errors.Is(res[1].Err, ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", res[1].Err)
	}
	if _, _, ok := get(t, f, "b", "before"); ok {
		t.Fatal("failed transaction left a write")
	}
	if res[0].Chains[0].Seq != 1 || res[2].Chains[0].Seq != 2 {
		t.Fatalf("chain seqs %d %d, want 1 2", res[0].Chains[0].Seq, res[2].Chains[0].Seq)
	}
}

func TestFSMChainLinks(t *testing.T) {
	f := newTestFSM(t)
	datas := []string{"first", "second", "third"}
	for i, d := range datas {
		txn := &Txn{Appends: []Append{{Chain: []byte("tenant/acme"), Data: []byte(d)}}}
		r := results(t, f.Apply(entry(uint64(i+1), txn)))[0]
		if r.Chains[0].Seq != uint64(i+1) {
			t.Fatalf("seq %d, want %d", r.Chains[0].Seq, i+1)
		}
	}
	_ = f.view(func(r *ReadTx) error {
		var prev [32]byte
		for i, d := range datas {
			data, hash, ok := r.ChainEntry([]byte("tenant/acme"), uint64(i+1))
			if !ok || string(data) != d {
				t.Fatalf("entry %d = %q", i+1, data)
			}
			if want := ChainLink(prev, tlog.RecordHash([]byte(d))); hash != want {
				t.Fatalf("entry %d hash %x, want %x", i+1, hash, want)
			}
			prev = hash
		}
		seq, head := r.ChainHead([]byte("tenant/acme"))
		if seq != 3 || head != prev {
			t.Fatalf("head %d %x", seq, head)
		}
		if seq, _ := r.ChainHead([]byte("other")); seq != 0 {
			t.Fatal("unknown chain has entries")
		}
		return nil
	})
	// The genesis link is SHA-256 over 32 zero bytes and the data's leaf
	// hash: a golden value, so a change to the hash construction cannot go
	// unnoticed.
	golden, err := os.ReadFile("testdata/chain_first.hash")
	if err != nil {
		t.Fatal(err)
	}
	h := ChainLink([32]byte{}, tlog.RecordHash([]byte("first")))
	if got := []byte(hex.EncodeToString(h[:]) + "\n"); !bytes.Equal(got, golden) {
		t.Fatalf("genesis hash %s, golden %s", got, golden)
	}
}

// sampleLog is a log exercising every kind of operation.
func sampleLog() []*raft.Log {
	var logs []*raft.Log
	idx := uint64(1)
	add := func(txns ...*Txn) {
		logs = append(logs, entry(idx, txns...))
		idx++
	}
	for i := 0; i < 50; i++ {
		k := []byte{byte('a' + i%7)}
		add(
			&Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("t", "acme"), Key: k, Value: bytes.Repeat([]byte{byte(i)}, i*13)}},
				Appends: []Append{{Chain: []byte("acme"), Data: []byte{byte(i)}}}},
			&Txn{Conds: []Cond{{Kind: CondAbsent, Bucket: Path("t", "acme"), Key: k}},
				Ops: []Op{{Kind: OpPut, Bucket: Path("never"), Key: k, Value: []byte("x")}}},
		)
		if i%10 == 9 {
			add(&Txn{Ops: []Op{{Kind: OpDelete, Bucket: Path("t", "acme"), Key: []byte("b")},
				{Kind: OpDeleteBucket, Bucket: Path("t"), Key: []byte("gone")},
				{Kind: OpPut, Bucket: Path("t", "gone"), Key: []byte("k"), Value: []byte("v")}}})
			// Keep the last five entries of the chain.
			add(&Txn{Ops: []Op{PruneChain([]byte("acme"), uint64(i-3))}})
		}
	}
	logs = append(logs, &raft.Log{Index: idx, Term: 1, Type: raft.LogConfiguration, Data: []byte("ignored")})
	return logs
}

func dumpOf(t *testing.T, f *FSM) []byte {
	t.Helper()
	f.flush()
	var b bytes.Buffer
	if err := f.dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The same log applied twice from scratch, in different batch sizes, gives
// the same state: same keys, values, versions, chain links, indexes.
func TestFSMDeterminism(t *testing.T) {
	logs := sampleLog()
	a, b := newTestFSM(t), newTestFSM(t)
	a.ApplyBatch(logs)
	for i := range logs {
		b.ApplyBatch(logs[i : i+1])
	}
	da, db := dumpOf(t, a), dumpOf(t, b)
	if !bytes.Equal(da, db) {
		t.Fatalf("states differ:\n%s\n---\n%s", da, db)
	}
	if len(da) < 1000 {
		t.Fatalf("dump suspiciously small: %s", da)
	}
	for _, want := range []string{`"\x00tlog/acme"`, `"\x00pruned" "acme"`, `"\x00chains/acme"`} {
		if !bytes.Contains(da, []byte(want)) {
			t.Fatalf("dump has no %s lines:\n%s", want, da)
		}
	}
}

// Entries at or below the applied index are skipped: applying them again
// changes nothing, and the index survives a reopen.
func TestFSMSkipsAppliedEntries(t *testing.T) {
	f := newTestFSM(t)
	logs := sampleLog()
	f.ApplyBatch(logs)
	before := dumpOf(t, f)
	resp := f.ApplyBatch(logs[:5])
	for _, r := range resp {
		if r != nil {
			t.Fatalf("re-applied entry answered %v", r)
		}
	}
	if !bytes.Equal(before, dumpOf(t, f)) {
		t.Fatal("re-applying changed the state")
	}
	f.Close()
	g, err := OpenFSM(f.path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.AppliedIndex() != logs[len(logs)-1].Index {
		t.Fatalf("applied index after reopen %d, want %d", g.AppliedIndex(), logs[len(logs)-1].Index)
	}
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	src := newTestFSM(t)
	src.ApplyBatch(sampleLog())
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot point are not in it.
	src.ApplyBatch([]*raft.Log{entry(1000, put("late", "k", "v"))})
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := newTestFSM(t)
	dst.ApplyBatch([]*raft.Log{entry(1, put("stale", "k", "v"))})
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := get(t, dst, "stale", "k"); ok {
		t.Fatal("restore kept the old state")
	}
	if _, _, ok := get(t, dst, "late", "k"); ok {
		t.Fatal("snapshot included a later write")
	}
	want := sampleLog()
	if dst.AppliedIndex() != want[len(want)-1].Index {
		t.Fatalf("applied index %d after restore", dst.AppliedIndex())
	}
	ref := newTestFSM(t)
	ref.ApplyBatch(sampleLog())
	if !bytes.Equal(dumpOf(t, ref), dumpOf(t, dst)) {
		t.Fatal("restored state differs from the snapshotted state")
	}
	// A garbage snapshot is refused and the state is untouched.
	if err := dst.Restore(io.NopCloser(bytes.NewReader([]byte("not a database")))); err == nil {
		t.Fatal("garbage snapshot restored")
	}
	if !bytes.Equal(dumpOf(t, ref), dumpOf(t, dst)) {
		t.Fatal("failed restore changed the state")
	}
}

// Undecodable and unknown entries stop the node; ignorable ones are skipped.
func TestFSMCorruptEntriesAreFatal(t *testing.T) {
	cases := []struct {
		name  string
		data  []byte
		fatal bool
	}{
		{"truncated", encodeBatch([]*Txn{put("b", "k", "v")})[:6], true},
		{"unknown type", []byte{9, 1, 0}, true},
		{"newer version", []byte{cmdTxnBatch, codecVersion + 1, 0}, true},
		{"ignorable unknown", []byte{flagIgnorable | 9, 5, 1, 2, 3}, false},
		{"trailing bytes", append(encodeBatch([]*Txn{put("b", "k", "v")}), 0), true},
		{"reserved bucket", encodeBatch([]*Txn{put("\x00meta", "applied_index", "x")}), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got error
			f, err := OpenFSM(filepath.Join(t.TempDir(), "s.db"), nil, func(err error) { got = err })
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.ApplyBatch([]*raft.Log{{Index: 1, Type: raft.LogCommand, Data: tc.data}})
			if (got != nil) != tc.fatal {
				t.Fatalf("fatal = %v, want %v", got, tc.fatal)
			}
			var fe *FatalError
			if tc.fatal && !errors.As(got, &fe) {
				t.Fatalf("fatal error %T, want *FatalError", got)
			}
			if tc.fatal && f.AppliedIndex() != 0 {
				t.Fatal("applied index advanced past a fatal entry")
			}
		})
	}
}

// A business error in a later batch replays the earlier, still uncommitted
// batches: their writes and results survive unchanged.
func TestFSMConflictReplaysPendingBatches(t *testing.T) {
	f := newTestFSM(t)
	results(t, f.Apply(entry(1, put("b", "leaf", "x"))))
	first := results(t, f.ApplyBatch([]*raft.Log{entry(2, put("b", "pending", "p"))})[0])
	bad := &Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("b", "leaf"), Key: []byte("k"), Value: []byte("2")}}}
	second := results(t, f.ApplyBatch([]*raft.Log{entry(3, bad, put("b", "after", "a"))})[0])
	if !first[0].Applied || first[0].Revision != 2 {
		t.Fatalf("first batch: %+v", first)
	}
	if second[0].Applied || !errors.Is(second[0].Err, ErrConflict) || !second[1].Applied || second[1].Revision != 3 {
		t.Fatalf("second batch: %+v", second)
	}
	if f.AppliedIndex() != 1 {
		t.Fatalf("committed index %d before the commit, want 1", f.AppliedIndex())
	}
	for _, k := range []string{"pending", "after"} {
		if _, _, ok := get(t, f, "b", k); !ok {
			t.Fatalf("%s lost in the replay", k)
		}
	}
	if f.AppliedIndex() != 3 {
		t.Fatalf("committed index %d, want 3", f.AppliedIndex())
	}
}
