package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Limits of the proposer's entries.
const (
	maxTxnsPerEntry  = 1024
	maxBytesPerEntry = 4 << 20
	maxInflight      = 2 // raft entries proposed and not yet applied
)

// proposer is the leader-facing half of group commit: it turns the
// transactions Store.Apply hands it into raft entries. One loop (run) drains
// whatever is queued, up to maxTxnsPerEntry transactions or
// maxBytesPerEntry bytes, into a single entry and proposes it: with
// raft.Apply on the leader, forwarded to the leader (Store.forward) on a
// follower. At most maxInflight entries are proposed and not yet applied;
// meanwhile transactions queue up and the next entry carries all of them, so
// entries grow by themselves under load. raft then writes the entries that
// queue up behind a log write in one fsync (BatchApplyCh), and the FSM
// applies a whole batch of entries in one bbolt transaction (commit.go), so
// under load one fsync carries many transactions while each keeps its own
// Result.
type proposer struct {
	s        *Store
	queue    chan *proposal
	inflight chan struct{} // one token per entry proposed and not yet applied
	txns     atomic.Uint64 // transactions queued (Stats.Proposals)
	entries  atomic.Uint64 // entries proposed or forwarded (Stats.EntriesSent)
}

// proposal is one transaction waiting for its result.
type proposal struct {
	txn  *Txn
	size int
	res  Result
	err  error
	done chan struct{}
}

func (p *proposal) finish(r Result, err error) {
	p.res, p.err = r, err
	close(p.done)
}

// Apply replicates one transaction and returns its result once a majority
// has it durably and the local state reflects it... on the node that
// committed it (the leader). A write that arrives at a follower is forwarded
// to the leader. On ErrTimeout or ErrNoLeader the outcome is unknown: the
// write may still be applied.
func (s *Store) Apply(ctx context.Context, t *Txn) (Result, error) {
	if err := t.Validate(); err != nil {
		return Result{}, err
	}
	if s.cfg.ObserveApply == nil {
		return s.proposer.propose(ctx, t)
	}
	start := time.Now()
	r, err := s.proposer.propose(ctx, t)
	s.cfg.ObserveApply(time.Since(start))
	return r, err
}

// propose queues a valid transaction for the next entry and waits for its
// result.
func (pr *proposer) propose(ctx context.Context, t *Txn) (Result, error) {
	p := &proposal{txn: t, size: approxSize(t), done: make(chan struct{})}
	if p.size > maxBytesPerEntry {
		return Result{}, fmt.Errorf("%w: transaction of about %d bytes, limit %d", ErrInvalidTxn, p.size, maxBytesPerEntry)
	}
	pr.txns.Add(1)
	select {
	case pr.queue <- p:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("raftstore: queue write: %w", ErrTimeout)
	case <-pr.s.done:
		return Result{}, ErrClosed
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return Result{}, fmt.Errorf("raftstore: write: %w", ErrTimeout)
	}
}

// approxSize estimates a transaction's encoded size, for the entry limits.
func approxSize(t *Txn) int {
	n := 16
	for _, c := range t.Conds {
		n += len(c.Key) + 16 + pathSize(c.Bucket)
	}
	for _, o := range t.Ops {
		n += len(o.Key) + len(o.Value) + 16 + pathSize(o.Bucket)
	}
	for _, a := range t.Appends {
		n += len(a.Chain) + len(a.Data) + 16
	}
	return n
}

func pathSize(p [][]byte) int {
	n := 0
	for _, e := range p {
		n += len(e) + 2
	}
	return n
}

// run drains the queue into entries until the store closes.
func (pr *proposer) run() {
	defer pr.s.wg.Done()
	for {
		var first *proposal
		select {
		case first = <-pr.queue:
		case <-pr.s.done:
			return
		}
		batch, size := []*proposal{first}, first.size
	drain:
		for len(batch) < maxTxnsPerEntry && size < maxBytesPerEntry {
			select {
			case p := <-pr.queue:
				batch = append(batch, p)
				size += p.size
			default:
				break drain
			}
		}
		pr.submit(batch)
	}
}

// submit proposes one entry. On the leader raft.Apply only enqueues (and
// blocks while raft's queue is full, which is what lets batches grow under
// load); the wait for the commit happens in its own goroutine.
func (pr *proposer) submit(batch []*proposal) {
	s := pr.s
	txns := make([]*Txn, len(batch))
	for i, p := range batch {
		txns[i] = p.txn
	}
	entry := encodeBatch(txns)
	pr.entries.Add(1)
	// Bound the entries in flight: while they are, proposals queue up and
	// the next entry carries all of them.
	select {
	case pr.inflight <- struct{}{}:
	case <-s.done:
		deliver(batch, nil, ErrClosed)
		return
	}
	if s.raft.State() == raft.Leader {
		fut := s.raft.Apply(entry, s.cfg.ApplyTimeout)
		go func() {
			results, err := s.waitApply(fut)
			if errors.Is(err, raft.ErrNotLeader) {
				// Not enqueued: nothing was written; forward instead.
				results, err = s.forward(entry)
			}
			<-pr.inflight
			deliver(batch, results, err)
		}()
		return
	}
	go func() {
		results, err := s.forward(entry)
		<-pr.inflight
		deliver(batch, results, err)
	}()
}

// deliver hands each proposal of an entry its result, or the entry's error.
func deliver(batch []*proposal, results []Result, err error) {
	if err == nil && len(results) != len(batch) {
		err = fmt.Errorf("raftstore: %d results for %d transactions", len(results), len(batch))
	}
	for i, p := range batch {
		if err != nil {
			p.finish(Result{}, err)
		} else {
			p.finish(results[i], nil)
		}
	}
}

// waitApply waits for a local raft.Apply and maps raft's errors.
func (s *Store) waitApply(fut raft.ApplyFuture) ([]Result, error) {
	if err := fut.Error(); err != nil {
		return nil, mapRaftErr(err)
	}
	results, ok := fut.Response().([]Result)
	if !ok {
		return nil, fmt.Errorf("raftstore: entry was not applied as a transaction batch")
	}
	return results, nil
}

// mapRaftErr maps raft's errors to the store's sentinels; raft.ErrNotLeader
// stays, for the caller to forward or map.
func mapRaftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return raft.ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v (the write may or may not be applied)", ErrNoLeader, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return err
}
