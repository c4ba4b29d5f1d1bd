package raftstore

import (
	"encoding/binary"
	"fmt"
)

// Limits enforced when a transaction is built and again when it is decoded.
// They keep every transaction inside what bbolt accepts, so that a
// transaction that reaches the log can only fail for a business reason.
const (
	MaxKeySize      = 1024       // bytes in a key or a bucket name
	MaxValueSize    = 4 << 20    // bytes in one value or chain entry
	MaxPathDepth    = 8          // nested bucket levels
	MaxTxnItems     = 4096       // conditions + ops + appends in one transaction
	MaxChainNameLen = MaxKeySize // bytes in a chain name
	maxBatchTxns    = 1 << 16    // transactions in one log entry
)

// CondKind says what a condition requires of a key.
type CondKind uint8

// Condition kinds.
const (
	CondAbsent  CondKind = 1 // the key does not exist
	CondPresent CondKind = 2 // the key exists
	CondVersion CondKind = 3 // the key exists at exactly Version (0: absent)
)

// OpKind says what an operation does.
type OpKind uint8

// Operation kinds.
const (
	OpPut          OpKind = 1 // put Key=Value in Bucket, creating buckets on the path
	OpDelete       OpKind = 2 // delete Key from Bucket; absent is not an error
	OpDeleteBucket OpKind = 3 // delete the bucket named Key under Bucket (nil Bucket: top level)
	// OpPruneChain deletes the entries of the chain named Key whose
	// sequence number is below Value (8 bytes, big-endian; build it with
	// PruneChain), never the chain's last entry. The chain's Merkle tree
	// keeps every hash, so tree hashes and proofs do not change; where the
	// chain now starts and the link before it are kept (ReadTx.ChainPruned).
	// Pruning to a point already pruned does nothing. Bucket must be empty.
	OpPruneChain OpKind = 4
)

// Cond is one precondition of a transaction.
type Cond struct {
	Kind    CondKind
	Bucket  [][]byte
	Key     []byte
	Version uint64
}

// Op is one write of a transaction.
type Op struct {
	Kind   OpKind
	Bucket [][]byte
	Key    []byte
	Value  []byte
}

// Append adds Data to the chain named Chain.
type Append struct {
	Chain []byte
	Data  []byte
}

// Txn is the unit of replication: all conditions hold and then every op and
// append is applied, or nothing is.
type Txn struct {
	Conds   []Cond
	Ops     []Op
	Appends []Append
}

// PruneChain returns the op that deletes the entries of chain below seq
// before (see OpPruneChain).
func PruneChain(chain []byte, before uint64) Op {
	return Op{Kind: OpPruneChain, Key: chain, Value: binary.BigEndian.AppendUint64(nil, before)}
}

// pruneBefore is the sequence number an OpPruneChain prunes below.
func pruneBefore(o Op) uint64 { return binary.BigEndian.Uint64(o.Value) }

// Path is a convenience for building bucket paths from strings.
func Path(names ...string) [][]byte {
	p := make([][]byte, len(names))
	for i, n := range names {
		p[i] = []byte(n)
	}
	return p
}

// Validate checks the transaction against the store's limits. Bucket names
// starting with 0x00 are reserved for the store itself.
func (t *Txn) Validate() error {
	if n := len(t.Conds) + len(t.Ops) + len(t.Appends); n == 0 {
		return fmt.Errorf("%w: empty transaction", ErrInvalidTxn)
	} else if n > MaxTxnItems {
		return fmt.Errorf("%w: %d items, limit %d", ErrInvalidTxn, n, MaxTxnItems)
	}
	for i, c := range t.Conds {
		if c.Kind < CondAbsent || c.Kind > CondVersion {
			return fmt.Errorf("%w: condition %d: unknown kind %d", ErrInvalidTxn, i, c.Kind)
		}
		if err := validPath(c.Bucket, false); err != nil {
			return fmt.Errorf("%w: condition %d: %v", ErrInvalidTxn, i, err)
		}
		if err := validKey(c.Key); err != nil {
			return fmt.Errorf("%w: condition %d: %v", ErrInvalidTxn, i, err)
		}
	}
	for i, o := range t.Ops {
		if o.Kind < OpPut || o.Kind > OpPruneChain {
			return fmt.Errorf("%w: op %d: unknown kind %d", ErrInvalidTxn, i, o.Kind)
		}
		if o.Kind == OpPruneChain {
			if err := validPrune(o); err != nil {
				return fmt.Errorf("%w: op %d: %v", ErrInvalidTxn, i, err)
			}
			continue
		}
		if err := validPath(o.Bucket, o.Kind == OpDeleteBucket); err != nil {
			return fmt.Errorf("%w: op %d: %v", ErrInvalidTxn, i, err)
		}
		if err := validKey(o.Key); err != nil {
			return fmt.Errorf("%w: op %d: %v", ErrInvalidTxn, i, err)
		}
		if o.Kind == OpDeleteBucket && len(o.Bucket) == 0 && o.Key[0] == 0 {
			return fmt.Errorf("%w: op %d: reserved bucket", ErrInvalidTxn, i)
		}
		if len(o.Value) > MaxValueSize {
			return fmt.Errorf("%w: op %d: value of %d bytes, limit %d", ErrInvalidTxn, i, len(o.Value), MaxValueSize)
		}
		if o.Kind != OpPut && len(o.Value) != 0 {
			return fmt.Errorf("%w: op %d: value on a delete", ErrInvalidTxn, i)
		}
	}
	for i, a := range t.Appends {
		if len(a.Chain) == 0 || len(a.Chain) > MaxChainNameLen {
			return fmt.Errorf("%w: append %d: chain name must be 1..%d bytes", ErrInvalidTxn, i, MaxChainNameLen)
		}
		if len(a.Data) > MaxValueSize {
			return fmt.Errorf("%w: append %d: %d bytes, limit %d", ErrInvalidTxn, i, len(a.Data), MaxValueSize)
		}
	}
	return nil
}

func validPrune(o Op) error {
	if len(o.Bucket) != 0 {
		return fmt.Errorf("prune with a bucket path")
	}
	if len(o.Key) == 0 || len(o.Key) > MaxChainNameLen {
		return fmt.Errorf("chain name must be 1..%d bytes", MaxChainNameLen)
	}
	if len(o.Value) != 8 {
		return fmt.Errorf("prune point of %d bytes, want 8", len(o.Value))
	}
	return nil
}

func validPath(p [][]byte, allowEmpty bool) error {
	if len(p) == 0 && !allowEmpty {
		return fmt.Errorf("empty bucket path")
	}
	if len(p) > MaxPathDepth {
		return fmt.Errorf("bucket path of depth %d, limit %d", len(p), MaxPathDepth)
	}
	for _, name := range p {
		if err := validKey(name); err != nil {
			return fmt.Errorf("bucket name: %v", err)
		}
	}
	if len(p) > 0 && p[0][0] == 0 {
		return fmt.Errorf("bucket names starting with 0x00 are reserved")
	}
	return nil
}

func validKey(k []byte) error {
	if len(k) == 0 {
		return fmt.Errorf("empty key")
	}
	if len(k) > MaxKeySize {
		return fmt.Errorf("key of %d bytes, limit %d", len(k), MaxKeySize)
	}
	return nil
}
