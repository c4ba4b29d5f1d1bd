package raftstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sampleTxns() []*Txn {
	return []*Txn{
		put("b", "k", "v"),
		{
			Conds: []Cond{
				{Kind: CondAbsent, Bucket: Path("a", "b"), Key: []byte("x")},
				{Kind: CondVersion, Bucket: Path("a"), Key: []byte("y"), Version: 1 << 40},
			},
			Ops: []Op{
				{Kind: OpPut, Bucket: Path("a", "b", "c"), Key: []byte{0, 1, 2}, Value: bytes.Repeat([]byte("z"), 300)},
				{Kind: OpDelete, Bucket: Path("a"), Key: []byte("y")},
				{Kind: OpDeleteBucket, Key: []byte("tenant:old")},
			},
			Appends: []Append{{Chain: []byte("system"), Data: []byte(`{"action":"x"}`)}},
		},
		{Ops: []Op{PruneChain([]byte("system"), 1<<33)}, Appends: []Append{{Chain: []byte("system"), Data: nil}}},
	}
}

// The codec version byte is the lowest version that decodes the batch: 1
// unless it prunes, so that nodes of version 1 decode all the rest.
func TestCodecVersionIsTheLowestNeeded(t *testing.T) {
	cases := []struct {
		name string
		txns []*Txn
		want byte
	}{
		{"no prune", []*Txn{put("b", "k", "v")}, 1},
		{"append only", []*Txn{{Appends: []Append{{Chain: []byte("c"), Data: []byte("d")}}}}, 1},
		{"prune", []*Txn{put("b", "k", "v"), {Ops: []Op{PruneChain([]byte("c"), 5)}}}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := encodeBatch(tc.txns)
			if data[1] != tc.want {
				t.Fatalf("version byte %d, want %d", data[1], tc.want)
			}
			// Any other label is refused: one encoding per entry.
			for _, ver := range []byte{1, 2} {
				relabelled := append([]byte{data[0], ver}, data[2:]...)
				_, _, err := decodeCommand(relabelled)
				if (err == nil) != (ver == tc.want) {
					t.Fatalf("decode labelled %d: %v", ver, err)
				}
				if err != nil && !errors.Is(err, ErrCorruptEntry) {
					t.Fatalf("decode labelled %d: %v, want ErrCorruptEntry", ver, err)
				}
			}
		})
	}
}

func TestCodecRoundTrip(t *testing.T) {
	in := sampleTxns()
	out, ignorable, err := decodeCommand(encodeBatch(in))
	if err != nil || ignorable {
		t.Fatalf("decode: %v %v", err, ignorable)
	}
	if diff := cmp.Diff(in, out, cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })); diff != "" {
		t.Fatalf("round trip (-in +out):\n%s", diff)
	}
}

func TestTxnValidate(t *testing.T) {
	big := bytes.Repeat([]byte("k"), MaxKeySize+1)
	cases := []struct {
		name string
		txn  Txn
	}{
		{"empty", Txn{}},
		{"empty key", Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("b")}}}},
		{"long key", Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("b"), Key: big}}}},
		{"no bucket", Txn{Ops: []Op{{Kind: OpPut, Key: []byte("k")}}}},
		{"reserved bucket", Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("\x00meta"), Key: []byte("k")}}}},
		{"reserved bucket delete", Txn{Ops: []Op{{Kind: OpDeleteBucket, Key: []byte("\x00chains")}}}},
		{"deep path", Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("1", "2", "3", "4", "5", "6", "7", "8", "9"), Key: []byte("k")}}}},
		{"bad op kind", Txn{Ops: []Op{{Kind: 9, Bucket: Path("b"), Key: []byte("k")}}}},
		{"bad cond kind", Txn{Conds: []Cond{{Kind: 0, Bucket: Path("b"), Key: []byte("k")}}}},
		{"value on delete", Txn{Ops: []Op{{Kind: OpDelete, Bucket: Path("b"), Key: []byte("k"), Value: []byte("v")}}}},
		{"empty chain", Txn{Appends: []Append{{Data: []byte("x")}}}},
		{"huge value", Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("b"), Key: []byte("k"), Value: make([]byte, MaxValueSize+1)}}}},
		{"prune without chain", Txn{Ops: []Op{PruneChain(nil, 3)}}},
		{"prune long chain name", Txn{Ops: []Op{PruneChain(big, 3)}}},
		{"prune with bucket", Txn{Ops: []Op{{Kind: OpPruneChain, Bucket: Path("b"), Key: []byte("c"), Value: make([]byte, 8)}}}},
		{"prune point not 8 bytes", Txn{Ops: []Op{{Kind: OpPruneChain, Key: []byte("c"), Value: []byte{1}}}}},
		{"op kind after prune", Txn{Ops: []Op{{Kind: OpPruneChain + 1, Bucket: Path("b"), Key: []byte("k")}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.txn.Validate(); !errors.Is(err, ErrInvalidTxn) {
				t.Fatalf("Validate = %v, want ErrInvalidTxn", err)
			}
		})
	}
	for _, ok := range sampleTxns() {
		if err := ok.Validate(); err != nil {
			t.Fatalf("valid txn refused: %v", err)
		}
	}
}

// FuzzDecodeCommand: arbitrary entries never panic; whatever decodes is
// valid and re-encodes to the same bytes.
func FuzzDecodeCommand(f *testing.F) {
	f.Add(encodeBatch(sampleTxns()))
	f.Add(encodeBatch([]*Txn{put("b", "k", "v")}))
	f.Add([]byte{cmdTxnBatch, 1, 0})
	f.Add(encodeBatch([]*Txn{{Ops: []Op{PruneChain([]byte("audit"), 42)}}}))
	f.Add([]byte(noopEntry))
	f.Add([]byte{flagIgnorable | 7, 9})
	f.Add([]byte{cmdTxnBatch, codecVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		txns, ignorable, err := decodeCommand(data)
		if err != nil || ignorable || len(data) == 2 {
			return
		}
		for _, tx := range txns {
			if err := tx.Validate(); err != nil {
				t.Fatalf("decoded an invalid txn: %v", err)
			}
		}
		if again := encodeBatch(txns); !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", data, again)
		}
	})
}
