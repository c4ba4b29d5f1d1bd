package raftstore

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// openLogStore opens the raft log and stable store: raft-boltdb/v2.
//
// raft-wal was measured too (faster log writes, see BENCHMARKS.md) but its
// only version this build can fetch, v0.4.0, corrupts its index when raft
// truncates the log tail (a deposed leader dropping an uncommitted entry):
// the node then cannot restart (hashicorp/raft-wal#31, fixed after v0.4.0).
// The fault test hit it; TestLogStoreTailTruncateReopen guards against it.
func openLogStore(cfg Config) (*failStopLogs, error) {
	l := &failStopLogs{path: filepath.Join(cfg.DataDir, "raft", "raft.db"), wrap: cfg.wrapLog, fatal: cfg.Fatal}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

// failStopLogs wraps the raft log and stable store: any write error stops
// the node, so nothing is acknowledged after an I/O error. It also counts
// log writes (each one fsync'd commit) for benchmarks.
//
// Every call holds mu shared; compact holds it exclusively while it rewrites
// the file and reopens it, so raft's calls wait for the swap instead of
// reaching a closed store.
type failStopLogs struct {
	path  string
	wrap  func(raft.LogStore) raft.LogStore // tests inject faults under the wrapper
	fatal func(error)

	mu   sync.RWMutex
	bolt *raftboltdb.BoltStore // the stable store, and the log under wrap
	log  raft.LogStore

	batches atomic.Uint64
	entries atomic.Uint64
	nanos   atomic.Uint64
}

var (
	_ raft.LogStore    = (*failStopLogs)(nil)
	_ raft.StableStore = (*failStopLogs)(nil)
)

// open opens the log file; the caller holds mu or is the only user.
func (l *failStopLogs) open() error {
	bs, err := raftboltdb.New(raftboltdb.Options{Path: l.path, BoltOptions: boltOptions()})
	if err != nil {
		return fmt.Errorf("raftstore: open log %s: %w", l.path, err)
	}
	l.bolt, l.log = bs, bs
	if l.wrap != nil {
		l.log = l.wrap(bs)
	}
	return nil
}

// Close closes the log file. raft must be shut down first.
func (l *failStopLogs) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bolt == nil {
		return nil
	}
	err := l.bolt.Close()
	l.bolt = nil
	return err
}

func (l *failStopLogs) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.log.FirstIndex()
}

func (l *failStopLogs) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.log.LastIndex()
}

func (l *failStopLogs) GetLog(index uint64, log *raft.Log) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.log.GetLog(index, log)
}

func (l *failStopLogs) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

func (l *failStopLogs) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	l.mu.RLock()
	err := l.log.StoreLogs(logs)
	l.mu.RUnlock()
	l.nanos.Add(uint64(time.Since(start)))
	if err != nil {
		l.fatal(&FatalError{Op: "write raft log", Err: err})
		return err
	}
	l.batches.Add(1)
	l.entries.Add(uint64(len(logs)))
	return nil
}

func (l *failStopLogs) DeleteRange(min, max uint64) error {
	l.mu.RLock()
	err := l.log.DeleteRange(min, max)
	l.mu.RUnlock()
	if err != nil {
		l.fatal(&FatalError{Op: "truncate raft log", Err: err})
		return err
	}
	return nil
}

func (l *failStopLogs) Set(k, v []byte) error {
	l.mu.RLock()
	err := l.bolt.Set(k, v)
	l.mu.RUnlock()
	if err != nil {
		l.fatal(&FatalError{Op: "write raft stable store", Err: err})
		return err
	}
	return nil
}

func (l *failStopLogs) SetUint64(k []byte, v uint64) error {
	l.mu.RLock()
	err := l.bolt.SetUint64(k, v)
	l.mu.RUnlock()
	if err != nil {
		l.fatal(&FatalError{Op: "write raft stable store", Err: err})
		return err
	}
	return nil
}

func (l *failStopLogs) Get(k []byte) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.bolt.Get(k)
}

func (l *failStopLogs) GetUint64(k []byte) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.bolt.GetUint64(k)
}
