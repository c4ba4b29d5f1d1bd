package raftstore

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// A snapshot raft is still taking holds a read transaction on the state
// file, and raft releases it only after its main loop answers — which
// waits for the restore. Restore must therefore not wait for it (it did,
// and deadlocked); the held snapshot still persists the state it saw.
func TestFSMRestoreWhileSnapshotHeld(t *testing.T) {
	src := newTestFSM(t)
	src.ApplyBatch(sampleLog())
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var incoming memSink
	if err := snap.Persist(&incoming); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := newTestFSM(t)
	dst.Apply(entry(1, put("stale", "k", "v")))
	held, err := dst.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- dst.Restore(io.NopCloser(bytes.NewReader(incoming.Bytes()))) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		held.Release() // unblock it, to fail instead of hanging
		<-done
		t.Fatal("Restore waited for a snapshot that is still held")
	}
	if !bytes.Equal(dumpOf(t, src), dumpOf(t, dst)) {
		t.Fatal("restored state differs from the snapshot")
	}

	var old memSink
	if err := held.Persist(&old); err != nil {
		t.Fatal(err)
	}
	held.Release()
	check := newTestFSM(t)
	if err := check.Restore(io.NopCloser(bytes.NewReader(old.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := get(t, check, "stale", "k"); !ok {
		t.Fatal("the held snapshot lost the state it was taken from")
	}
}
