package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// CompactStats describes one Compact run on one node. Sizes are in bytes;
// the snapshot sizes add up every snapshot the node keeps.
type CompactStats struct {
	StateBytesBefore    int64         `json:"state_bytes_before"`
	StateBytesAfter     int64         `json:"state_bytes_after"`
	LogBytesBefore      int64         `json:"log_bytes_before"`
	LogBytesAfter       int64         `json:"log_bytes_after"`
	SnapshotBytesBefore int64         `json:"snapshot_bytes_before"`
	SnapshotBytesAfter  int64         `json:"snapshot_bytes_after"`
	SnapshotIndex       uint64        `json:"snapshot_index"` // the newest snapshot
	Duration            time.Duration `json:"duration_nanos"`
}

const (
	// compactTxBytes bounds one bbolt transaction of a file rewrite, and
	// so its memory.
	compactTxBytes = 64 << 20
	// maxCompactSnapshots bounds the snapshots one Compact takes: the
	// store keeps two, and a try may find nothing new to snapshot.
	maxCompactSnapshots = 6
)

// Compact makes this node forget deleted bytes, for crypto-shredding: once
// it returns, no file the node keeps — the state file, the raft log, the
// snapshots — holds data deleted by a write acknowledged before the call,
// not even in bbolt's free pages. It works on this node only: the caller
// runs it on every node, the leader first (a snapshot installed from a
// peer that has not compacted yet can bring the bytes back). See
// DESIGN.md, "Compaction for crypto-shredding".
//
// In order: wait until every write acknowledged before the call is applied
// and committed here (a linearizable barrier, so the node needs a leader);
// rewrite the state file; take snapshots until every snapshot kept was
// taken from the rewritten file, with TrailingLogs lowered so that raft
// deletes every log entry up to the barrier; rewrite the log file. Writes
// and reads on this node wait while a file is rewritten.
func (s *Store) Compact(ctx context.Context) (st CompactStats, err error) {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	select {
	case <-s.done:
		return st, ErrClosed
	default:
	}
	start := time.Now()
	if err := s.Barrier(ctx); err != nil {
		return st, fmt.Errorf("raftstore: compact: barrier: %w", err)
	}
	st.SnapshotBytesBefore = s.snapshotBytes()

	restore, err := s.truncateLogTo(s.fsm.AppliedIndex())
	if err != nil {
		return st, err
	}
	defer func() {
		if rerr := restore(); rerr != nil && err == nil {
			err = rerr
		}
	}()

	// The state file first: a snapshot is a copy of the whole file, free
	// pages included, so only snapshots of the rewritten file are clean.
	var mark uint64
	if st.StateBytesBefore, st.StateBytesAfter, mark, err = s.fsm.compact(); err != nil {
		return st, err
	}
	if st.SnapshotIndex, err = s.snapshotAfter(ctx, mark); err != nil {
		return st, err
	}
	if st.LogBytesBefore, st.LogBytesAfter, err = s.logs.compact(); err != nil {
		return st, err
	}
	st.SnapshotBytesAfter = s.snapshotBytes()
	st.Duration = time.Since(start)
	s.logger.Info("storage compacted",
		"state_bytes_before", st.StateBytesBefore, "state_bytes_after", st.StateBytesAfter,
		"log_bytes_before", st.LogBytesBefore, "log_bytes_after", st.LogBytesAfter,
		"snapshot_bytes_before", st.SnapshotBytesBefore, "snapshot_bytes_after", st.SnapshotBytesAfter,
		"snapshot_index", st.SnapshotIndex, "duration", st.Duration)
	return st, nil
}

// truncateLogTo lowers raft's TrailingLogs so that the next snapshots
// delete every log entry up to index (which this node has applied) and
// keep the newer ones, and returns the function that restores the
// configured value.
//
// raft truncates up to min(snapshot index, last log index - TrailingLogs).
// The last log index never drops below the commit index, so TrailingLogs =
// commit index - index truncates at least up to index. TrailingLogs 0 would
// do too, but would also delete entries a follower a few entries behind
// still needs, and make it fetch a whole snapshot.
func (s *Store) truncateLogTo(index uint64) (restore func() error, err error) {
	rc := s.raft.ReloadableConfig()
	rc.TrailingLogs = 0
	if commit := s.raft.CommitIndex(); commit > index {
		rc.TrailingLogs = commit - index
	}
	if err := s.raft.ReloadConfig(rc); err != nil {
		return nil, fmt.Errorf("raftstore: compact: set trailing logs: %w", err)
	}
	return func() error {
		rc := s.raft.ReloadableConfig()
		rc.TrailingLogs = s.cfg.TrailingLogs
		if err := s.raft.ReloadConfig(rc); err != nil {
			return fmt.Errorf("raftstore: compact: restore trailing logs: %w", err)
		}
		return nil
	}, nil
}

// snapshotAfter takes snapshots until every snapshot the store keeps is
// newer than mark (the index of the rewritten state file) and one of them
// is this call's, taken with the lowered TrailingLogs. It returns the
// newest snapshot's index.
//
// Each snapshot follows a fresh no-op entry, so its index is above mark
// and above the previous one: raft refuses a snapshot when the state
// machine applied nothing since the node started (ErrNothingNewToSnapshot),
// and two snapshots of one index taken in the same millisecond would get
// the same name.
func (s *Store) snapshotAfter(ctx context.Context, mark uint64) (uint64, error) {
	taken := false
	for try := 0; try < maxCompactSnapshots; try++ {
		list, err := s.snaps.List()
		if err != nil {
			return 0, fmt.Errorf("raftstore: compact: list snapshots: %w", err)
		}
		if taken && allAfter(list, mark) {
			return list[0].Index, nil
		}
		if err := s.appendNoop(ctx); err != nil {
			return 0, err
		}
		err = s.raft.Snapshot().Error()
		if errors.Is(err, raft.ErrNothingNewToSnapshot) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("raftstore: compact: snapshot: %w", mapRaftErr(err))
		}
		taken = true
	}
	return 0, fmt.Errorf("raftstore: compact: older snapshots still kept after %d tries", maxCompactSnapshots)
}

func allAfter(list []*raft.SnapshotMeta, mark uint64) bool {
	for _, m := range list {
		if m.Index <= mark {
			return false
		}
	}
	return len(list) > 0
}

// appendNoop commits a no-op entry through the leader and waits until this
// node has applied it.
func (s *Store) appendNoop(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("raftstore: compact: %w", ErrTimeout)
	}
	if _, err := s.forward(noopEntry); err != nil {
		return fmt.Errorf("raftstore: compact: no-op entry: %w", err)
	}
	if err := s.Barrier(ctx); err != nil {
		return fmt.Errorf("raftstore: compact: %w", err)
	}
	return nil
}

// snapshotBytes is the size of the snapshots the store keeps, or 0 if they
// cannot be listed.
func (s *Store) snapshotBytes() int64 {
	list, err := s.snaps.List()
	if err != nil {
		return 0
	}
	var n int64
	for _, m := range list {
		n += m.Size
	}
	return n
}

// compact rewrites the state file with its live data only and reopens it.
// It holds wmu and mu throughout, so no apply, commit, snapshot or read
// runs during the rewrite and none can see a closed database. It returns
// the applied index of the rewritten file.
//
// A failure while writing the copy leaves the state file untouched and is
// returned; a failure once the file is closed calls Fatal, because the node
// then has no state file it can trust to be open.
func (f *FSM) compact() (before, after int64, index uint64, err error) {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.commitLocked()
	if f.committed.Load() != f.applied.Load() {
		return 0, 0, 0, errors.New("raftstore: compact state: applied entries are not committed")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.db == nil {
		return 0, 0, 0, ErrClosed
	}
	index = f.applied.Load()
	before = fileSize(f.path)
	tmp := f.path + ".compact"
	if err := writeCompacted(f.db, tmp); err != nil {
		return 0, 0, 0, fmt.Errorf("raftstore: compact state: %w", err)
	}
	// After a failure from here on f.db stays the closed database: every
	// use fails cleanly (and stops the node) instead of dereferencing nil.
	if err := f.db.Close(); err != nil {
		return 0, 0, 0, f.stop("close state for compaction", err)
	}
	if err := replaceFile(tmp, f.path); err != nil {
		return 0, 0, 0, f.stop("replace compacted state", err)
	}
	if err := f.open(); err != nil {
		return 0, 0, 0, f.stop("reopen compacted state", err)
	}
	return before, fileSize(f.path), index, nil
}

func (f *FSM) stop(op string, err error) error {
	fe := &FatalError{Op: op, Err: err}
	f.fatal(fe)
	return fe
}

// compact rewrites the log file with its live entries only and reopens it.
// bbolt locks its file, so the store is closed during the rewrite; mu is
// held exclusively, so raft's calls wait and never reach the closed store.
//
// A failure while writing the copy leaves the log file untouched: it is
// reopened and the error returned. Any other failure calls Fatal: the node
// cannot go on without its log, and while Fatal runs raft's calls stay
// blocked behind mu, so nothing is acknowledged from a half-swapped log.
func (l *failStopLogs) compact() (before, after int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bolt == nil {
		return 0, 0, ErrClosed
	}
	before = fileSize(l.path)
	// After a failure from here on l.bolt stays the closed store: every
	// call fails cleanly (and stops the node) instead of dereferencing nil.
	if err := l.bolt.Close(); err != nil {
		return 0, 0, l.stop("close raft log for compaction", err)
	}
	tmp := l.path + ".compact"
	if err := compactFile(l.path, tmp); err != nil {
		if rerr := l.open(); rerr != nil {
			return 0, 0, l.stop("reopen raft log after failed compaction", rerr)
		}
		return 0, 0, fmt.Errorf("raftstore: compact raft log: %w", err)
	}
	if err := replaceFile(tmp, l.path); err != nil {
		return 0, 0, l.stop("replace compacted raft log", err)
	}
	if err := l.open(); err != nil {
		return 0, 0, l.stop("reopen compacted raft log", err)
	}
	return before, fileSize(l.path), nil
}

func (l *failStopLogs) stop(op string, err error) error {
	fe := &FatalError{Op: op, Err: err}
	l.fatal(fe)
	return fe
}

// compactFile writes a compacted copy of the closed bbolt file at path to
// tmp.
func compactFile(path, tmp string) error {
	src, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, ReadOnly: true})
	if err != nil {
		return err
	}
	defer src.Close()
	return writeCompacted(src, tmp)
}

// writeCompacted copies the live data of src — every bucket, key, value
// and bucket sequence — into a new bbolt file at tmp and syncs it. The copy
// has none of src's free pages, where bbolt leaves deleted and overwritten
// bytes until it happens to reuse them. A leftover tmp from an interrupted
// run is replaced.
func writeCompacted(src *bolt.DB, tmp string) error {
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	err = bolt.Compact(dst, src, compactTxBytes)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// replaceFile renames tmp (complete and synced) over path and syncs the
// directory, so the rename survives a crash. Old and new file hold the same
// data, so a crash at any point leaves path usable.
func replaceFile(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// fileSize is the size of the file at path, or 0 if it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
