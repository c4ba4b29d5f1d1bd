package raftstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// The FSM's half of group commit. ApplyBatch applies many raft entries, each
// carrying many transactions (from the proposer), into one open bbolt write
// transaction; commitLoop commits it soon after (commit policy below). A
// transaction that hits a business error rolls the whole bbolt transaction
// back, and everything still uncommitted is replayed with that transaction
// marked failed (rollback-and-replay: bbolt has no savepoints).

// appliedBatch is one ApplyBatch call's entries, decoded.
type appliedBatch struct {
	logs    []*raft.Log
	decoded [][]*Txn
}

// Commit policy: at most commitDelay after the first uncommitted apply, or
// once this many entries are pending.
const (
	commitDelay      = 5 * time.Millisecond
	maxPendingLogs   = 2048
	maxPendingTxnOps = 64 << 10
)

// setCommitted records that the state file holds index i and wakes the
// waiters of appliedWait.
func (f *FSM) setCommitted(i uint64) {
	f.notifyMu.Lock()
	f.committed.Store(i)
	close(f.notify)
	f.notify = make(chan struct{})
	f.notifyMu.Unlock()
}

// appliedWait returns the committed index and a channel closed when it next
// advances. A waiter that needs an index already applied but not yet
// committed asks for the commit at once.
func (f *FSM) appliedWait(want uint64) (uint64, <-chan struct{}) {
	f.notifyMu.Lock()
	c, ch := f.committed.Load(), f.notify
	f.notifyMu.Unlock()
	if c < want && f.applied.Load() >= want {
		select {
		case f.now <- struct{}{}:
		default:
		}
	}
	return c, ch
}

// commitLoop commits the open transaction commitDelay after it was first
// written, or at once when asked.
func (f *FSM) commitLoop() {
	defer close(f.loopDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-f.dirty:
			timer.Reset(commitDelay)
			select {
			case <-timer.C:
			case <-f.now:
				timer.Stop()
			case <-f.done:
				return
			}
		case <-f.now:
		case <-f.done:
			return
		}
		f.flush()
	}
}

// flush commits the open write transaction, if any.
func (f *FSM) flush() {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.commitLocked()
}

// commitLocked commits the open write transaction, if any; the caller holds
// wmu. A commit error is fatal.
func (f *FSM) commitLocked() {
	if f.tx == nil {
		return
	}
	start := time.Now()
	err := f.tx.Commit()
	f.mu.RUnlock() // taken when the transaction began
	f.tx = nil
	if err != nil {
		f.fatal(&FatalError{Op: "commit state", Err: err})
		return
	}
	f.pending, f.pendingOps, f.failed = nil, 0, nil
	f.batches.Add(1)
	f.nanos.Add(uint64(time.Since(start)))
	f.setCommitted(f.applied.Load())
}

// txnID names a transaction by its log index and position in the entry.
type txnID struct {
	index uint64
	txn   int
}

// ApplyBatch applies committed entries into the open write transaction.
// Each command entry's response is a []Result, one per transaction it
// carried.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	resp := make([]interface{}, len(logs))
	decoded := make([][]*Txn, len(logs))
	applied := f.applied.Load()
	last := -1
	for i, l := range logs {
		if l.Index <= applied {
			f.skipped.Add(1)
			continue // already in the state file: never apply twice
		}
		last = i
		if l.Type != raft.LogCommand {
			continue
		}
		txns, ignorable, err := decodeCommand(l.Data)
		if err != nil {
			f.fatal(&FatalError{Op: fmt.Sprintf("decode log entry %d", l.Index), Err: err})
			return resp
		}
		if ignorable {
			f.logger.Warn("skipping ignorable command of a newer version", "index", l.Index, "type", l.Data[0])
		}
		decoded[i] = txns
	}
	if last < 0 {
		return resp
	}
	b := appliedBatch{logs: logs[:last+1], decoded: decoded[:last+1]}

	f.wmu.Lock()
	defer f.wmu.Unlock()
	for {
		if f.tx == nil {
			f.mu.RLock() // released by commitLocked or the rollback below
			tx, err := f.db.Begin(true)
			if err != nil {
				f.mu.RUnlock()
				f.fatal(&FatalError{Op: "begin state transaction", Err: err})
				return resp
			}
			f.tx = tx
		}
		results, err := f.applyBatchTx(b)
		var tf *txnFailure
		if errors.As(err, &tf) {
			// Undo everything uncommitted and replay it with the failing
			// transaction marked; earlier batches replay identically.
			_ = f.tx.Rollback()
			f.tx = nil
			f.mu.RUnlock()
			if f.failed == nil {
				f.failed = map[txnID]error{}
			}
			f.failed[tf.id] = tf.err
			if err := f.replayLocked(); err != nil {
				f.fatal(&FatalError{Op: "replay state transaction", Err: err})
				return resp
			}
			continue
		}
		if err != nil {
			f.fatal(&FatalError{Op: "write state", Err: err})
			return resp
		}
		for i := range b.logs {
			if b.decoded[i] != nil {
				resp[i] = results[i]
			}
		}
		f.pending = append(f.pending, b)
		f.pendingOps += b.ops()
		f.applied.Store(logs[last].Index)
		break
	}
	if len(f.pending) >= maxPendingLogs || f.pendingOps >= maxPendingTxnOps {
		f.commitLocked()
	} else {
		select {
		case f.dirty <- struct{}{}:
		default:
		}
	}
	return resp
}

// ops counts the writes and appends of a batch.
func (b appliedBatch) ops() int {
	n := 0
	for _, txns := range b.decoded {
		for _, t := range txns {
			n += len(t.Ops) + len(t.Appends)
		}
	}
	return n
}

// replayLocked re-applies the pending batches into a fresh transaction.
func (f *FSM) replayLocked() error {
	f.mu.RLock()
	tx, err := f.db.Begin(true)
	if err != nil {
		f.mu.RUnlock()
		return err
	}
	f.tx = tx
	for _, b := range f.pending {
		if _, err := f.applyBatchTx(b); err != nil {
			return err // cannot happen: it applied before, deterministically
		}
	}
	return nil
}

// applyBatchTx applies one batch into f.tx and records its last index/term.
func (f *FSM) applyBatchTx(b appliedBatch) ([][]Result, error) {
	tx := f.tx
	meta := tx.Bucket(bucketMeta)
	rev := getUint(meta, keyRevision)
	chains := chainCache{} // valid for this call: tx does not change within it
	results := make([][]Result, len(b.logs))
	for i, txns := range b.decoded {
		results[i] = make([]Result, len(txns))
		for k, t := range txns {
			id := txnID{b.logs[i].Index, k}
			if ferr, ok := f.failed[id]; ok {
				results[i][k] = Result{FailedCond: -1, Err: ferr}
				continue
			}
			r, err := applyTxn(tx, t, &rev, chainHooks{fault: f.chainFault, tally: f.chainTally}, chains)
			if err != nil {
				if !errors.Is(err, ErrChainUnwritable) {
					err = fmt.Errorf("%w: %v", ErrConflict, err)
				}
				return nil, &txnFailure{id: id, err: err}
			}
			results[i][k] = r
		}
	}
	if err := chains.flush(tx, nil); err != nil {
		return nil, err
	}
	lastLog := b.logs[len(b.logs)-1]
	if err := putUint(meta, keyRevision, rev); err != nil {
		return nil, err
	}
	if err := putUint(meta, keyAppliedIndex, lastLog.Index); err != nil {
		return nil, err
	}
	return results, putUint(meta, keyAppliedTerm, lastLog.Term)
}
