package audit

import (
	"context"
	"fmt"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// AppendRead writes e, the entry of a read of sc's tenant's data (a read
// of personal fields, a search, a subject lookup, a listing by subject),
// to that tenant's chain, on conditions (paths relative to the tenant)
// that what the read saw is still current, and returns once it is
// committed: the caller serves what it read only after a nil return.
// ErrCondition (wrapped) when a condition does not hold.
//
// Through b when it is not nil, so that concurrent reads share a
// transaction; otherwise in a transaction of its own through sc. The
// services that audit reads (records, blobs) share this one path, so
// every read entry is written the same way.
func AppendRead(ctx context.Context, b *Batcher, sc tenancy.Scope, e Entry, conds ...raftstore.Cond) error {
	if b != nil {
		return b.AppendIf(ctx, sc, e, conds...)
	}
	data, err := e.Encode()
	if err != nil {
		return err
	}
	res, err := sc.Apply(ctx, &tenancy.Txn{Conds: conds, Audit: [][]byte{data}})
	switch {
	case err != nil:
		return fmt.Errorf("audit: append to %s's chain: %w", sc.ID(), err)
	case res.Err != nil:
		return fmt.Errorf("audit: append to %s's chain: %w", sc.ID(), res.Err)
	case !res.Applied:
		return fmt.Errorf("audit: append to %s's chain: %w", sc.ID(), ErrCondition)
	}
	return nil
}
