package tenancy

import (
	"context"
	"fmt"

	"github.com/custos/custos/raftstore"
)

// BatchEntry is one audit entry of a batched append: Data goes to Scope's
// chain if Conds (relative to Scope's tenant) hold.
type BatchEntry struct {
	Scope Scope
	Data  []byte
	Conds []raftstore.Cond
}

// AppendBatch appends every entry to its own tenant's chain in one
// transaction, in order, on the conditions the entries carry — not on their
// tenants existing (see the package doc). failed is the index of the entry
// whose condition did not hold (nothing was written then), or -1. A scope
// only names its tenant here: the entries are written to this boundary's
// store.
func (b *Boundary) AppendBatch(ctx context.Context, batch []BatchEntry) (failed int, res raftstore.Result, err error) {
	t := &raftstore.Txn{Appends: make([]raftstore.Append, 0, len(batch))}
	var owner []int // owner[i]: the entry of t.Conds[i]
	for i, e := range batch {
		if e.Scope.root == nil {
			return -1, raftstore.Result{}, fmt.Errorf("%w: entry %d: the scope of a malformed tenant id", ErrOutOfScope, i)
		}
		for _, c := range e.Conds {
			p, err := e.Scope.abs(c.Bucket)
			if err != nil {
				return -1, raftstore.Result{}, err
			}
			c.Bucket = p
			t.Conds = append(t.Conds, c)
			owner = append(owner, i)
		}
		t.Appends = append(t.Appends, raftstore.Append{Chain: e.Scope.chain(), Data: e.Data})
	}
	res, err = b.raw.Apply(ctx, t)
	if err == nil && !res.Applied && res.Err == nil && res.FailedCond >= 0 && res.FailedCond < len(owner) {
		return owner[res.FailedCond], res, nil
	}
	return -1, res, err
}
