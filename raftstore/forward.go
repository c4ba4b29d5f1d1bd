package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"reflect"
	"time"
)

// leaderAddr returns the leader's cluster address, or ErrNoLeader.
func (s *Store) leaderAddr() (string, error) {
	addr, id := s.raft.LeaderWithID()
	if addr == "" || string(id) == s.cfg.NodeID {
		return "", fmt.Errorf("raftstore: %w", ErrNoLeader)
	}
	return string(addr), nil
}

// onLeaderChange says what a call to the leader does when, while it is in
// flight, this node stops naming that node as the leader (callLeaderOnce).
type onLeaderChange int

const (
	// waitAnswer keeps waiting for the answer, up to the bound: for
	// membership changes and leadership transfers, which may move the
	// leadership themselves and whose answer says what happened.
	waitAnswer onLeaderChange = iota
	// giveUp ends the call with ErrNoLeader, outcome unknown: forwarded
	// writes, which must not be sent twice.
	giveUp
	// askAgain ends the call and asks the new leader: read indexes, which
	// change nothing.
	askAgain
)

// callLeader makes a cluster RPC to the leader, bounded by ApplyTimeout.
// While no leader is known, the leader cannot be dialed, or the node asked
// says it is not (or no longer) the leader, nothing can have happened, so it
// retries until the bound; once a request is in flight a failure is final
// (its outcome is unknown), and a leader change is handled as change says.
// A transport failure drops the connection so the next call redials.
func (s *Store) callLeader(ctx context.Context, method string, args any, reply interface{ wireErr() WireErr }, change onLeaderChange) error {
	deadline := time.Now().Add(s.cfg.ApplyTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		if s.IsLeader() {
			return errLocalLeader
		}
		err, retry := s.callLeaderOnce(method, args, reply, time.Until(deadline), change)
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

// leaderWatch is how often an in-flight call to the leader checks whether
// the node still believes it is the leader (see callLeaderOnce). A leader
// change is noticed within this, which is small against an election
// (HeartbeatTimeout and ElectionTimeout, 500 ms to 1 s), and one
// LeaderWithID per interval and call in flight costs nothing.
const leaderWatch = 10 * time.Millisecond

func (s *Store) callLeaderOnce(method string, args, reply any, budget time.Duration, change onLeaderChange) (err error, retry bool) {
	addr, err := s.leaderAddr()
	if err != nil {
		return err, true
	}
	c, err := s.pool.get(addr, min(budget, time.Second))
	if err != nil {
		return fmt.Errorf("raftstore: reach leader %s: %w", addr, ErrNoLeader), true
	}
	// The answer is decoded into a fresh value, copied to reply only when
	// it arrives in time: a call given up may still be answered later, and
	// must not write into a reply the caller has reused or read.
	into := reflect.New(reflect.TypeOf(reply).Elem())
	call := c.Go(method, args, into.Interface(), make(chan *rpc.Call, 1))
	timer := time.NewTimer(max(budget, 10*time.Millisecond))
	defer timer.Stop()
	var watchC <-chan time.Time
	if change != waitAnswer {
		watch := time.NewTicker(leaderWatch)
		defer watch.Stop()
		watchC = watch.C
	}
	for {
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
			reflect.ValueOf(reply).Elem().Set(into.Elem())
			return nil, false
		case <-watchC:
			// A leader that went silent (paused, cut off) answers no call
			// until it is back, and a call waiting for it would hold its
			// caller — and, for a write, the proposer's in-flight slot —
			// until the timeout, long after a new leader is known: the
			// followers stop believing in it after HeartbeatTimeout. So
			// the call ends as soon as this node no longer names addr as
			// the leader, and its connection is dropped (a silent peer's
			// connection may be dead). A write's outcome is unknown (the
			// old leader may have replicated the entry before it went
			// silent, and the new leader then commits it), so it is not
			// sent again: the caller gets ErrNoLeader. A read index is
			// asked of the new leader.
			if cur, _ := s.raft.LeaderWithID(); string(cur) == addr {
				continue
			}
			s.pool.drop(addr, c)
			return fmt.Errorf("raftstore: leader %s: leadership changed while the call was in flight (outcome unknown): %w", addr, ErrNoLeader), change == askAgain
		case <-timer.C:
			s.pool.drop(addr, c)
			return fmt.Errorf("raftstore: leader %s: %w", addr, ErrTimeout), false
		case <-s.done:
			return ErrClosed, false
		}
	}
}

func (s *Store) forward(entry []byte) ([]Result, error) {
	var reply ApplyReply
	err := s.callLeader(context.Background(), "Cluster.Apply", &ApplyArgs{Entry: entry}, &reply, giveUp)
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
