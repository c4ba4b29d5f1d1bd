package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

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
		if err = s.callLeader(ctx, "Cluster.ReadIndex", &ReadIndexArgs{From: s.cfg.NodeID}, &reply, askAgain); err == nil {
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

// waitApplied waits until the committed state holds index idx.
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

// readGate confirms leadership for linearizable reads, in the order raft's
// ReadIndex requires (Raft thesis §6.4; hashicorp/raft issue #603):
//
//  1. the leader must have committed an entry of its own term, or its commit
//     index may lag what the previous leader committed: a no-op command
//     entry, once per term;
//  2. read the commit index: the read index;
//  3. confirm leadership with a quorum *after* reading it, so that no other
//     leader can have committed anything newer before: here by committing
//     another no-op entry, proposed after the index was read — it commits
//     only if a quorum accepts it in this term, which a node deposed
//     meanwhile (its followers moved to a newer term) cannot get;
//  4. the caller then waits until its state machine has applied the read
//     index (on a follower, usually at once: the read index is the commit
//     index, not the no-op's, which a follower learns only with the next
//     append or heartbeat).
//
// Why not raft's ReadIndex with VerifyLeader (read the commit index, then
// confirm leadership with a heartbeat round): hashicorp/raft counts, as
// votes for a VerifyLeader, the answers to AppendEntries requests sent
// *before* the verify was asked (replication.go: updateLastAppended and
// heartbeat call notifyAll(true) for every waiting verify). A leader paused
// with SIGSTOP (or otherwise silent) resumes with its followers' answers to
// its last pipelined requests waiting in its sockets, sent before they
// elected a new leader; they confirm it as leader although it was deposed
// seconds ago, and it serves a state missing every write of the new leader
// (TestFaultSilentLeaderStopped, porcupine: a read on the resumed leader
// returned a value overwritten by acknowledged writes 2 s before; the
// regression test is TestClusterResumedLeaderReadsNoStaleState). An entry
// cannot be confirmed by an answer to an older request: the answers that
// count for its commit name its index.
//
// The cost is one log entry (a disk write on a quorum) per round instead of
// one heartbeat round (BenchmarkLinearizableRead; figures in DESIGN.md).
// Concurrent callers share one round, and a caller that arrives while a
// round is in flight waits for the next one, so its read index is taken
// after it arrived.
type readGate struct {
	s       *Store
	mu      sync.Mutex
	waiting []chan readResult
	running bool
}

type readResult struct {
	idx uint64
	err error
}

func (g *readGate) confirm(ctx context.Context) (uint64, error) {
	ch := make(chan readResult, 1)
	g.mu.Lock()
	g.waiting = append(g.waiting, ch)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	select {
	case r := <-ch:
		return r.idx, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("raftstore: confirm leadership: %w", ErrTimeout)
	}
}

func (g *readGate) loop() {
	for {
		g.mu.Lock()
		batch := g.waiting
		g.waiting = nil
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		idx, err := g.round()
		for _, ch := range batch {
			ch <- readResult{idx, err}
		}
	}
}

func (g *readGate) round() (uint64, error) {
	s := g.s
	r := s.raft
	if r.State() != raft.Leader {
		return 0, fmt.Errorf("raftstore: read index: %w", ErrNotLeader)
	}
	term := r.CurrentTerm()
	if s.barrierTerm.Load() != term {
		// The first no-op of the term: until the leader commits an entry
		// of its own term, its commit index may lag what the previous
		// leader committed.
		if err := g.commitNoop(); err != nil {
			return 0, err
		}
		if r.CurrentTerm() != term {
			return 0, fmt.Errorf("raftstore: term changed during barrier: %w", ErrNoLeader)
		}
		s.barrierTerm.Store(term)
	}
	idx := r.CommitIndex()
	// Confirm the leadership after reading the index, by a quorum that
	// accepts an entry proposed after it (not VerifyLeader: see readGate).
	if err := g.commitNoop(); err != nil {
		return 0, err
	}
	if r.CurrentTerm() != term {
		return 0, fmt.Errorf("raftstore: term changed during read: %w", ErrNoLeader)
	}
	return idx, nil
}

// commitNoop commits a no-op command entry: a command entry rather than
// raft.Barrier, whose entries never reach the FSM, so that the applied
// index can reach a commit index that points at one.
func (g *readGate) commitNoop() error {
	s := g.s
	if err := waitFuture(s.raft.Apply(noopEntry, s.cfg.ApplyTimeout), s.cfg.ApplyTimeout); err != nil {
		return fmt.Errorf("raftstore: read index: %w", err)
	}
	return nil
}

// waitFuture waits for a raft future at most d.
func waitFuture(f raft.Future, d time.Duration) error {
	ch := make(chan error, 1)
	go func() { ch <- f.Error() }()
	select {
	case err := <-ch:
		if err != nil {
			return fmt.Errorf("raftstore: leadership check: %w", mapLeaderErr(err))
		}
		return nil
	case <-time.After(d):
		return fmt.Errorf("raftstore: leadership check: %w", ErrTimeout)
	}
}

func mapLeaderErr(err error) error {
	err = mapRaftErr(err)
	if err == raft.ErrNotLeader {
		return ErrNotLeader
	}
	return err
}
