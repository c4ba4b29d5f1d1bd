package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"time"

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

// leaderAddr returns the leader's cluster address, or ErrNoLeader.
func (s *Store) leaderAddr() (string, error) {
	addr, id := s.raft.LeaderWithID()
	if addr == "" || string(id) == s.cfg.NodeID {
		return "", fmt.Errorf("raftstore: %w", ErrNoLeader)
	}
	return string(addr), nil
}

// callLeader makes a cluster RPC to the leader, bounded by ApplyTimeout.
// While no leader is known, the leader cannot be dialed, or the node asked
// says it is not (or no longer) the leader, nothing can have happened, so it
// retries until the bound; once a request is in flight a failure is final
// (its outcome is unknown). A transport failure drops the connection so the
// next call redials.
func (s *Store) callLeader(ctx context.Context, method string, args any, reply interface{ wireErr() WireErr }) error {
	deadline := time.Now().Add(s.cfg.ApplyTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		if s.IsLeader() {
			return errLocalLeader
		}
		err, retry := s.callLeaderOnce(method, args, reply, time.Until(deadline))
		if err == nil {
			if werr := reply.wireErr(); werr.Kind == "not_leader" {
				err, retry = fmt.Errorf("raftstore: %w", ErrNoLeader), true
			} else {
				return nil
			}
		}
		if !retry || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return err
		case <-s.done:
			return ErrClosed
		}
	}
}

func (s *Store) callLeaderOnce(method string, args, reply any, budget time.Duration) (err error, retry bool) {
	addr, err := s.leaderAddr()
	if err != nil {
		return err, true
	}
	c, err := s.pool.get(addr, min(budget, time.Second))
	if err != nil {
		return fmt.Errorf("raftstore: reach leader %s: %w", addr, ErrNoLeader), true
	}
	call := c.Go(method, args, reply, make(chan *rpc.Call, 1))
	timer := time.NewTimer(max(budget, 10*time.Millisecond))
	defer timer.Stop()
	select {
	case <-call.Done:
		if call.Error != nil {
			var se rpc.ServerError
			if !errors.As(call.Error, &se) {
				s.pool.drop(addr, c)
			}
			// The request may have reached the leader: not retried.
			return fmt.Errorf("raftstore: leader %s: %v: %w", addr, call.Error, ErrNoLeader), false
		}
		return nil, false
	case <-timer.C:
		s.pool.drop(addr, c)
		return fmt.Errorf("raftstore: leader %s: %w", addr, ErrTimeout), false
	case <-s.done:
		return ErrClosed, false
	}
}

func (s *Store) forward(entry []byte) ([]Result, error) {
	var reply ApplyReply
	err := s.callLeader(context.Background(), "Cluster.Apply", &ApplyArgs{Entry: entry}, &reply)
	if errors.Is(err, errLocalLeader) {
		// Became the leader while looking for one.
		return s.waitApply(s.raft.Apply(entry, s.cfg.ApplyTimeout))
	}
	if err != nil {
		return nil, err
	}
	if err := reply.Err.err(); err != nil {
		return nil, err
	}
	out := make([]Result, len(reply.Results))
	for i, w := range reply.Results {
		out[i] = w.result()
	}
	return out, nil
}

// View runs fn on the local state. With Linearizable it first makes sure
// the local state includes every write committed before the call.
func (s *Store) View(ctx context.Context, c Consistency, fn func(*ReadTx) error) error {
	if c == Linearizable {
		if err := s.Barrier(ctx); err != nil {
			return err
		}
	}
	return s.fsm.view(fn)
}

// Barrier waits until the local state reflects every write committed before
// the call (a read index, as in etcd).
func (s *Store) Barrier(ctx context.Context) error {
	var idx uint64
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if s.raft.State() == raft.Leader {
			idx, err = s.gate.confirm(ctx)
			break
		}
		var reply ReadIndexReply
		if err = s.callLeader(ctx, "Cluster.ReadIndex", &ReadIndexArgs{From: s.cfg.NodeID}, &reply); err == nil {
			idx, err = reply.Index, reply.Err.err()
		}
		if !errors.Is(err, errLocalLeader) {
			break
		}
	}
	if err != nil {
		return err
	}
	return s.waitApplied(ctx, idx)
}

func (s *Store) waitApplied(ctx context.Context, idx uint64) error {
	for {
		applied, ch := s.fsm.appliedWait(idx)
		if applied >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("raftstore: wait for index %d (applied %d): %w", idx, applied, ErrTimeout)
		case <-s.done:
			return ErrClosed
		}
	}
}
