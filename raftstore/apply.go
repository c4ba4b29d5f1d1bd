package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Result is the outcome of one transaction.
type Result struct {
	// Applied is true when every condition held and all writes were made.
	Applied bool
	// FailedCond is the index of the first condition that did not hold, or
	// -1.
	FailedCond int
	// Err is a business error (wrapping ErrConflict or ErrChainUnwritable)
	// that aborted the transaction without writing anything.
	Err error
	// Revision is the store revision the transaction wrote at; every key it
	// put carries this version.
	Revision uint64
	// Chains lists where each append landed, in order.
	Chains []ChainPos
}

// applyTxn checks the conditions and, if they hold, applies the writes,
// then the appends. A returned error is a business error; the caller
// aborts the bbolt transaction so that nothing of this raft transaction
// remains. fault, if set, is asked before each append (a test hook:
// Config.ChainFault); tally names the count of each (Config.ChainTally).
func applyTxn(tx *bolt.Tx, t *Txn, rev *uint64, hooks chainHooks, chains chainCache) (Result, error) {
	for i, c := range t.Conds {
		if !condHolds(tx, c) {
			return Result{FailedCond: i}, nil
		}
	}
	*rev++
	res := Result{Applied: true, FailedCond: -1, Revision: *rev}
	var version [8]byte
	binary.BigEndian.PutUint64(version[:], *rev)
	for i, o := range t.Ops {
		if err := applyOp(tx, i, o, version, chains); err != nil {
			return Result{}, err
		}
	}
	for _, a := range t.Appends {
		pos, err := appendChain(tx, a.Chain, a.Data, hooks, chains)
		if err != nil {
			return Result{}, err
		}
		res.Chains = append(res.Chains, pos)
	}
	return res, nil
}

// condHolds reports whether a condition holds in tx. Validate refuses
// unknown kinds, so none reaches here; one would not hold.
func condHolds(tx *bolt.Tx, c Cond) bool {
	_, ver, ok := getVersioned(bucketAt(tx, c.Bucket), c.Key)
	switch c.Kind {
	case CondAbsent:
		return !ok
	case CondPresent:
		return ok
	case CondVersion:
		return (c.Version == 0 && !ok) || (ok && ver == c.Version)
	}
	return false
}

// applyOp makes op i of a transaction; a put stores version before the
// value. Validate refuses unknown kinds, so none reaches here; one would do
// nothing.
func applyOp(tx *bolt.Tx, i int, o Op, version [8]byte, chains chainCache) error {
	switch o.Kind {
	case OpPut:
		b, err := createPath(tx, o.Bucket)
		if err != nil {
			return fmt.Errorf("op %d: %v", i, err)
		}
		v := make([]byte, 0, 8+len(o.Value))
		v = append(append(v, version[:]...), o.Value...)
		if err := b.Put(o.Key, v); err != nil {
			return fmt.Errorf("op %d: put: %v", i, err)
		}
	case OpDelete:
		if b := bucketAt(tx, o.Bucket); b != nil {
			if err := b.Delete(o.Key); err != nil {
				return fmt.Errorf("op %d: delete: %v", i, err)
			}
		}
	case OpDeleteBucket:
		var err error
		if len(o.Bucket) == 0 {
			err = tx.DeleteBucket(o.Key)
		} else if b := bucketAt(tx, o.Bucket); b != nil {
			err = b.DeleteBucket(o.Key)
		}
		if err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return fmt.Errorf("op %d: delete bucket: %v", i, err)
		}
	case OpPruneChain:
		// Pruning reads the head and may rebuild the chain's hash
		// bucket: write the head, forget the cached state.
		if err := chains.flush(tx, o.Key); err != nil {
			return err
		}
		delete(chains, string(o.Key))
		if err := pruneChain(tx, o.Key, pruneBefore(o)); err != nil {
			return fmt.Errorf("op %d: %w", i, err)
		}
	}
	return nil
}

func bucketAt(tx *bolt.Tx, path [][]byte) *bolt.Bucket {
	if len(path) == 0 {
		return nil
	}
	b := tx.Bucket(path[0])
	for _, name := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(name)
	}
	return b
}

func createPath(tx *bolt.Tx, path [][]byte) (*bolt.Bucket, error) {
	b, err := tx.CreateBucketIfNotExists(path[0])
	if err != nil {
		return nil, fmt.Errorf("bucket %q: %v", path[0], err)
	}
	for _, name := range path[1:] {
		if b, err = b.CreateBucketIfNotExists(name); err != nil {
			return nil, fmt.Errorf("bucket %q: %v", name, err)
		}
	}
	return b, nil
}

// getVersioned returns a key's value (aliasing bbolt memory: copy before the
// transaction ends) and version.
func getVersioned(b *bolt.Bucket, key []byte) ([]byte, uint64, bool) {
	if b == nil {
		return nil, 0, false
	}
	v := b.Get(key)
	if len(v) < 8 {
		return nil, 0, false // absent, or a nested bucket
	}
	return v[8:], binary.BigEndian.Uint64(v), true
}

func getUint(b *bolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint(b *bolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, v))
}
