package raftstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Group commit: Apply queues a transaction; one loop drains whatever is
// queued (up to maxTxnsPerEntry) into a single raft entry. raft itself
// batches entries that queue up behind a log write (BatchApplyCh) and the
// FSM applies a whole batch of entries in one bbolt transaction, so under
// load one fsync carries many transactions while each keeps its own result.
const (
	maxTxnsPerEntry  = 1024
	maxBytesPerEntry = 4 << 20
	maxInflight      = 2 // raft entries proposed and not yet applied
	logCacheEntries  = 4
)

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
	p := &proposal{txn: t, size: approxSize(t), done: make(chan struct{})}
	if p.size > maxBytesPerEntry {
		return Result{}, fmt.Errorf("%w: transaction of about %d bytes, limit %d", ErrInvalidTxn, p.size, maxBytesPerEntry)
	}
	s.nProposals.Add(1)
	select {
	case s.proposals <- p:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("raftstore: queue write: %w", ErrTimeout)
	case <-s.done:
		return Result{}, ErrClosed
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return Result{}, fmt.Errorf("raftstore: write: %w", ErrTimeout)
	}
}

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

func (s *Store) batchLoop() {
	defer s.wg.Done()
	for {
		var first *proposal
		select {
		case first = <-s.proposals:
		case <-s.done:
			return
		}
		batch, size := []*proposal{first}, first.size
	drain:
		for len(batch) < maxTxnsPerEntry && size < maxBytesPerEntry {
			select {
			case p := <-s.proposals:
				batch = append(batch, p)
				size += p.size
			default:
				break drain
			}
		}
		s.submit(batch)
	}
}

// submit proposes one entry. On the leader raft.Apply only enqueues (and
// blocks while raft's queue is full, which is what lets batches grow under
// load); the wait for the commit happens in its own goroutine.
func (s *Store) submit(batch []*proposal) {
	txns := make([]*Txn, len(batch))
	for i, p := range batch {
		txns[i] = p.txn
	}
	entry := encodeBatch(txns)
	s.nEntries.Add(1)
	// Bound the entries in flight: while they are, proposals queue up and
	// the next entry carries all of them.
	select {
	case s.inflight <- struct{}{}:
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
			<-s.inflight
			deliver(batch, results, err)
		}()
		return
	}
	go func() {
		results, err := s.forward(entry)
		<-s.inflight
		deliver(batch, results, err)
	}()
}

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
