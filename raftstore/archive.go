package raftstore

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// LogEntry is a committed raft log entry as the log archive keeps it
// (point-in-time restore replays them onto a backup's state).
type LogEntry struct {
	Index, Term uint64
	Type        uint8
	AppendedAt  time.Time
	Data        []byte
}

// ErrLogCompacted means the entries asked for were removed from the raft log
// by a snapshot; First is the first it still holds.
type ErrLogCompacted struct{ First uint64 }

func (e *ErrLogCompacted) Error() string {
	return fmt.Sprintf("raftstore: the log was compacted: its first entry is %d", e.First)
}

// CommittedEntries returns up to max log entries from index from on,
// only entries this node's state has applied (so only committed ones): an
// empty list when there are none yet. *ErrLogCompacted when from was
// removed from the log.
func (s *Store) CommittedEntries(from uint64, max int) ([]LogEntry, error) {
	applied := s.fsm.AppliedIndex()
	first, err := s.logs.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("raftstore: log: %w", err)
	}
	if from < first {
		return nil, &ErrLogCompacted{First: first}
	}
	var out []LogEntry
	for i := from; i <= applied && len(out) < max; i++ {
		var l raft.Log
		if err := s.logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				return nil, &ErrLogCompacted{First: i + 1}
			}
			return nil, fmt.Errorf("raftstore: log entry %d: %w", i, err)
		}
		out = append(out, LogEntry{Index: l.Index, Term: l.Term, Type: uint8(l.Type), AppendedAt: l.AppendedAt, Data: l.Data})
	}
	return out, nil
}

// Replay applies archived log entries to the state file at path (a
// backup's state, offline) as the state machine applied them: the same
// log gives the same state. Entries at or below the state's applied
// index are skipped; the entries must follow it without a gap.
func Replay(path string, entries []LogEntry) (DumpInfo, error) {
	var (
		mu    sync.Mutex
		fatal error
	)
	fsm, err := OpenFSM(path, nil, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if fatal == nil {
			fatal = err
		}
	})
	if err != nil {
		return DumpInfo{}, err
	}
	next := fsm.AppliedIndex() + 1
	logs := make([]*raft.Log, 0, len(entries))
	for _, e := range entries {
		if e.Index < next {
			continue
		}
		if e.Index != next {
			fsm.Close()
			return DumpInfo{}, fmt.Errorf("raftstore: replay: entry %d missing (the archive has a gap)", next)
		}
		logs = append(logs, &raft.Log{Index: e.Index, Term: e.Term, Type: raft.LogType(e.Type), AppendedAt: e.AppendedAt, Data: e.Data})
		next++
	}
	for len(logs) > 0 {
		n := min(len(logs), 256)
		fsm.ApplyBatch(logs[:n])
		logs = logs[n:]
	}
	if err := fsm.Close(); err != nil {
		return DumpInfo{}, fmt.Errorf("raftstore: replay: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fatal != nil {
		return DumpInfo{}, fmt.Errorf("raftstore: replay: %w", fatal)
	}
	off, err := OpenOffline(path)
	if err != nil {
		return DumpInfo{}, err
	}
	defer off.Close()
	return off.Info()
}
