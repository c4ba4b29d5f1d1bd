package raftstore

import "errors"

// Sentinel errors. Callers match them with errors.Is; the HTTP layer maps
// them to statuses in one place.
var (
	// ErrInvalidTxn: the transaction breaks a limit or is malformed.
	ErrInvalidTxn = errors.New("invalid transaction")
	// ErrConflict: a write could not be applied to the current state, such
	// as a put whose bucket path runs through an existing key.
	ErrConflict = errors.New("transaction conflicts with stored state")
	// ErrChainUnwritable: an append to (or a prune of) a chain could not be
	// made — its stored hashes are missing and cannot be rebuilt, or a test
	// injected the fault (Config.ChainFault). The whole transaction is
	// refused: audit records are written with the change or not at all.
	ErrChainUnwritable = errors.New("chain cannot be written")
	// ErrOutOfRange: a chain tree size, record index or stored-hash range
	// beyond what the chain holds.
	ErrOutOfRange = errors.New("chain position out of range")
	// ErrNoLeader: the cluster has no reachable leader; the caller may retry.
	ErrNoLeader = errors.New("no cluster leader reachable")
	// ErrTimeout: the write or read did not complete in time. A write that
	// timed out may still be applied later.
	ErrTimeout = errors.New("cluster did not answer in time")
	// ErrNotLeader: an operation that only the leader can do reached a
	// follower and could not be forwarded.
	ErrNotLeader = errors.New("node is not the leader")
	// ErrClosed: the store is shutting down.
	ErrClosed = errors.New("store closed")
	// ErrJoinRefused: a join request was refused (token, region).
	ErrJoinRefused = errors.New("join refused")
	// ErrRegionMismatch: the joining node declares another region.
	ErrRegionMismatch = errors.New("region mismatch")
	// ErrUnknownPeer: no peer with that id is in the configuration.
	ErrUnknownPeer = errors.New("unknown peer")
	// ErrLastVoter: the change would leave the configuration without a
	// voter (removing the only one), which raft refuses. It is found from
	// the configuration before raft is asked, because raft reports it only
	// as text.
	ErrLastVoter = errors.New("cannot remove the last voter")

	// ErrCorruptEntry and ErrUnknownCommand stop the node: they mean the
	// log holds something this node cannot apply, and skipping it would let
	// replicas diverge.
	ErrCorruptEntry   = errors.New("corrupt log entry")
	ErrUnknownCommand = errors.New("unknown log command")

	// errLocalLeader: a call meant for the leader found that this node
	// is the leader; the caller takes its local path.
	errLocalLeader = errors.New("this node is the leader")
)

// FatalError is what a fail-stop reports: the node must not continue.
type FatalError struct {
	Op  string
	Err error
}

func (e *FatalError) Error() string { return "raftstore: fatal: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *FatalError) Unwrap() error { return e.Err }

// remoteError is an error that happened on another node; it unwraps to the
// sentinel it was classified as there.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// txnFailure aborts a bbolt transaction because one raft transaction hit a
// business error; ApplyBatch then re-runs with it marked failed.
type txnFailure struct {
	id  txnID
	err error
}

func (e *txnFailure) Error() string { return e.err.Error() }
