package raftstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// dumpBytes is a dump of f's state.
func dumpBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	f.flush()
	var b bytes.Buffer
	err := f.db.View(func(tx *bolt.Tx) error { return writeDump(context.Background(), tx, &b) })
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// openAt opens the FSM of a state file (closed at the end of the test).
func openAt(t *testing.T, path string) *FSM {
	t.Helper()
	f, err := OpenFSM(path, nil, func(err error) { t.Fatalf("fatal: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// A dump loaded back is the same state (the canonical dump: buckets,
// keys, values, versions, chains, meta); replaying the rest of the log
// onto a dump taken midway gives the state of the whole log; a gap in
// the replayed entries is refused.
func TestDumpLoadReplay(t *testing.T) {
	logs := sampleLog()
	full := newTestFSM(t)
	full.ApplyBatch(logs)
	path := filepath.Join(t.TempDir(), "state.db")
	info, err := LoadDump(path, bufio.NewReader(bytes.NewReader(dumpBytes(t, full))))
	if err != nil {
		t.Fatal(err)
	}
	if info.Index != uint64(len(logs)) || len(info.Chains) == 0 {
		t.Fatalf("info %+v", info)
	}
	if !bytes.Equal(dumpOf(t, full), dumpOf(t, openAt(t, path))) {
		t.Fatal("the loaded state differs from the dumped one")
	}

	k := len(logs) / 2
	half := newTestFSM(t)
	half.ApplyBatch(logs[:k])
	var entries []LogEntry
	for _, l := range logs {
		entries = append(entries, LogEntry{Index: l.Index, Term: l.Term, Type: uint8(l.Type), Data: l.Data})
	}
	dir := t.TempDir()
	mid := filepath.Join(dir, "mid.db")
	if _, err := LoadDump(mid, bufio.NewReader(bytes.NewReader(dumpBytes(t, half)))); err != nil {
		t.Fatal(err)
	}
	if _, err := Replay(mid, entries[k+1:]); err == nil {
		t.Fatal("a replay with a gap was accepted")
	}
	if info, err = Replay(mid, entries); err != nil || info.Index != uint64(len(logs)) {
		t.Fatalf("replay: %+v %v", info, err)
	}
	if !bytes.Equal(dumpOf(t, full), dumpOf(t, openAt(t, mid))) {
		t.Fatal("the replayed state differs from the state of the whole log")
	}
}

func TestLoadDumpRefusesDamage(t *testing.T) {
	f := newTestFSM(t)
	f.ApplyBatch(sampleLog())
	good := dumpBytes(t, f)
	cases := map[string][]byte{
		"empty":          nil,
		"magic":          append([]byte("custos-state-dump/2\n"), good[len(dumpMagic):]...),
		"cut short":      good[:len(good)-10],
		"no end":         good[:len(good)-1],
		"unknown tag":    append(bytes.Clone(good[:len(dumpMagic)]), 'Q'),
		"key outside":    append(bytes.Clone(good[:len(dumpMagic)]), 'K', 1, 'k', 1, 'v', 'Z'),
		"close too many": append(bytes.Clone(good[:len(dumpMagic)]), 'E'),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			if _, err := LoadDump(path, bufio.NewReader(bytes.NewReader(in))); !errors.Is(err, ErrBadDump) {
				t.Fatalf("got %v, want ErrBadDump", err)
			}
			if _, err := os.Stat(path); err == nil {
				t.Fatal("a refused dump left a state file")
			}
		})
	}
}

func FuzzLoadDump(f *testing.F) {
	f.Add([]byte(dumpMagic + "B\x04\x00metaK\x01k\x01vEZ"))
	f.Add([]byte(dumpMagic + "Z"))
	f.Fuzz(func(t *testing.T, in []byte) {
		path := filepath.Join(t.TempDir(), "state.db")
		if _, err := LoadDump(path, bufio.NewReader(bytes.NewReader(in))); err == nil {
			off, err := OpenOffline(path)
			if err != nil {
				t.Fatalf("a loaded dump does not open: %v", err)
			}
			off.Close()
		}
	})
}
