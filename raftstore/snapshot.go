package raftstore

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// Snapshot captures a consistent read transaction; Persist streams it.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.flush() // the snapshot must hold everything applied so far
	f.mu.RLock()
	defer f.mu.RUnlock()
	tx, err := f.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshot: %w", err)
	}
	return &fsmSnapshot{tx: tx}, nil
}

// fsmSnapshot is a snapshot in the making: a read transaction on the state
// file, open until raft releases it.
type fsmSnapshot struct{ tx *bolt.Tx }

// Persist writes the state file as of the snapshot (a byte copy: free pages
// included, see Compact).
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("raftstore: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release ends the read transaction.
func (s *fsmSnapshot) Release() { _ = s.tx.Rollback() }

// Restore replaces the state with a snapshot: it is written to a temporary
// file, synced and checked, then renamed over the state file and reopened.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.path + ".restore"
	if err := writeSynced(tmp, rc); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("raftstore: restore: %w", err)
	}
	check, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 2e9, ReadOnly: true})
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("raftstore: restore: snapshot is not a state file: %w", err)
	}
	check.Close()

	// Anything applied but uncommitted predates the snapshot: discard it.
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.tx != nil {
		_ = f.tx.Rollback()
		f.tx = nil
		f.mu.RUnlock()
		f.pending, f.pendingOps, f.failed = nil, 0, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The old file is closed only once its readers are done, in the
	// background: a snapshot raft is taking holds a read transaction on it,
	// and raft releases it only after its main loop answers — which waits
	// for this restore. Closing here would deadlock (it did, in tests).
	// Renaming over the open file is safe: it keeps its inode until closed.
	old := f.db
	if err := os.Rename(tmp, f.path); err != nil {
		f.fatal(&FatalError{Op: "rename restored state", Err: err})
		return err
	}
	if err := syncDir(filepath.Dir(f.path)); err != nil {
		f.fatal(&FatalError{Op: "sync state dir", Err: err})
		return err
	}
	if err := f.open(); err != nil {
		f.fatal(&FatalError{Op: "reopen restored state", Err: err})
		return err
	}
	f.closing.Add(1)
	go func() {
		defer f.closing.Done()
		if err := old.Close(); err != nil {
			f.logger.Warn("closing the state file replaced by a snapshot", "error", err)
		}
	}()
	f.restores.Add(1)
	return nil
}

// writeSynced writes r to a new file at path and fsyncs it.
func writeSynced(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// syncDir fsyncs a directory, making renames in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
