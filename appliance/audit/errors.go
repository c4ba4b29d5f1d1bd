package audit

import (
	"errors"
	"fmt"

	"github.com/custos/custos/raftstore"
)

// Sentinel errors.
var (
	// ErrInvalid: an entry breaks the schema. Entries are built by code,
	// not by clients, so this is a bug in the caller, not bad input.
	ErrInvalid = errors.New("audit: invalid entry")
	// ErrCheckpoint: a checkpoint is malformed or its signature does not
	// verify.
	ErrCheckpoint = errors.New("audit: bad checkpoint")
	// ErrNoKeys: the cluster has no checkpoint keys (not bootstrapped).
	ErrNoKeys = errors.New("audit: the cluster has no checkpoint keys")
	// ErrCannotSign: this node cannot sign checkpoints (it is sealed).
	ErrCannotSign = errors.New("audit: this node cannot sign checkpoints (sealed)")
	// ErrNotFound: no such entry or checkpoint.
	ErrNotFound = errors.New("audit: not found")
	// ErrRange: an index or size outside the chain.
	ErrRange = errors.New("audit: index or size out of range")
	// ErrBatcherClosed: the batcher was closed (the node is stopping). It
	// wraps raftstore.ErrClosed, so the API answers it as unavailable.
	ErrBatcherClosed = fmt.Errorf("audit: batcher closed: %w", raftstore.ErrClosed)
	// ErrCondition: a condition of the entry (AppendIf) did not hold when
	// its transaction applied, so the entry was not written.
	ErrCondition = errors.New("audit: a condition of the entry did not hold")
)

// VerifyError says where a bundle fails and what is wrong.
type VerifyError struct {
	Place string // such as "entries.jsonl line 17 (seq 17)"
	What  string
}

func (e *VerifyError) Error() string { return e.Place + ": " + e.What }

// refusal is a transaction the store refused without writing any of it.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }
