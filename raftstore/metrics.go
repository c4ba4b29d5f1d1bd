package raftstore

import (
	"os"
	"time"
)

// DBStats are the state file's figures for metrics: its size, its free
// pages and bbolt's transaction counters since the file was opened (a
// snapshot restore opens a new file, so the counters start again).
type DBStats struct {
	SizeBytes    int64 // the file's size on disk
	FreePages    int   // pages on the freelist
	PendingPages int   // pages freed but still held by open read transactions
	FreeBytes    int   // bytes allocated to free pages
	ReadTxns     int   // read transactions started
	OpenReadTxns int   // read transactions open now
	WriteTxns    int64 // commits of the state (each a batch of applied entries)
	PageAllocs   int64 // pages allocated by write transactions
	Writes       int64 // pages written to disk by commits
	WriteTime    time.Duration
}

// DBStats reads the state file's figures. It takes no lock a write
// holds: bbolt's Stats is a copy under its own stats lock.
func (s *Store) DBStats() DBStats {
	f := s.fsm
	f.mu.RLock()
	db := f.db
	f.mu.RUnlock()
	if db == nil {
		return DBStats{}
	}
	st := db.Stats()
	out := DBStats{
		FreePages: st.FreePageN, PendingPages: st.PendingPageN, FreeBytes: st.FreeAlloc,
		ReadTxns: st.TxN, OpenReadTxns: st.OpenTxN,
		WriteTxns:  int64(f.batches.Load()),
		PageAllocs: st.TxStats.GetPageCount(), Writes: st.TxStats.GetWrite(), WriteTime: st.TxStats.GetWriteTime(),
	}
	if fi, err := os.Stat(db.Path()); err == nil {
		out.SizeBytes = fi.Size()
	}
	return out
}

// LastContact is when this node last heard from the leader (the zero
// time on the leader itself, or before any contact).
func (s *Store) LastContact() time.Time { return s.raft.LastContact() }
