package raftstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/custos/custos/internal/testkit"
)

// failingLog fails every StoreLogs once armed, like a disk that returns EIO.
type failingLog struct {
	raft.LogStore
	armed atomic.Bool
}

var errDisk = errors.New("input/output error (injected)")

func (f *failingLog) StoreLogs(logs []*raft.Log) error {
	if f.armed.Load() {
		return errDisk
	}
	return f.LogStore.StoreLogs(logs)
}

func (f *failingLog) StoreLog(l *raft.Log) error { return f.StoreLogs([]*raft.Log{l}) }

// A log write error stops the node: Fatal is called with the I/O error and
// the write is never acknowledged.
func TestLogWriteErrorIsFatalAndNotAcknowledged(t *testing.T) {
	creds, err := NewClusterCredentials("n1")
	if err != nil {
		t.Fatal(err)
	}
	fatal := make(chan error, 4)
	fl := &failingLog{}
	cfg := fastConfig(t, "n1", "eu-west-1", creds)
	cfg.Bootstrap = true
	cfg.Fatal = func(err error) {
		fatal <- err
		select {} // a stopped node never returns into raft
	}
	cfg.wrapLog = func(ls raft.LogStore) raft.LogStore { fl.LogStore = ls; return fl }
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "leader", s.IsLeader)
	if _, err := s.Apply(ctxT(t), put("b", "before", "v")); err != nil {
		t.Fatalf("write before the fault: %v", err)
	}
	fl.armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := s.Apply(ctx, put("b", "after", "v"))
	if err == nil {
		t.Fatalf("write acknowledged after a log I/O error: %+v", res)
	}
	select {
	case ferr := <-fatal:
		var fe *FatalError
		if !errors.As(ferr, &fe) || !errors.Is(ferr, errDisk) {
			t.Fatalf("fatal error %v, want a FatalError wrapping the disk error", ferr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("log write error did not stop the node")
	}
	if _, _, ok := getPath(t, s.fsm, Path("b"), "after"); ok {
		t.Fatal("the failed write reached the state")
	}
}

// The log store survives what raft does to a deposed leader: delete an
// uncommitted tail entry, then restart. (raft-wal v0.4.0 fails this.)
func TestLogStoreTailTruncateReopen(t *testing.T) {
	cfg := Config{DataDir: t.TempDir(), Fatal: func(err error) { t.Fatalf("fatal: %v", err) }}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	ls, err := openLogStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}})
	}
	if err := ls.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := ls.DeleteRange(10, 10); err != nil {
		t.Fatal(err)
	}
	if err := ls.Close(); err != nil {
		t.Fatal(err)
	}
	ls, err = openLogStore(cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer ls.Close()
	for i := uint64(1); i <= 9; i++ {
		var l raft.Log
		if err := ls.GetLog(i, &l); err != nil || l.Data[0] != byte(i) {
			t.Fatalf("GetLog(%d) after reopen: %v %v", i, l.Data, err)
		}
	}
	if last, err := ls.LastIndex(); err != nil || last != 9 {
		t.Fatalf("LastIndex %d %v, want 9", last, err)
	}
}
