package tenants

import (
	"context"
	"fmt"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

// Stores hands out tenant-scoped stores. It is the storage a domain
// service (collections, records, blobs) is given: there is no method that
// reaches another tenant's data or the system buckets, so isolation holds
// by construction, as row-level security does in a database, rather than
// by every query remembering to filter by tenant.
type Stores struct{ raw Store }

// NewStores wraps the replicated store.
func NewStores(raw Store) *Stores { return &Stores{raw: raw} }

// Of returns tenant's store. The API resolves and authorizes the tenant
// first; a malformed id gives a store whose every call fails.
func (s *Stores) Of(tenant string) Scoped { return Scoped{sc: newScope(tenant), raw: s.raw} }

// Scoped is one tenant's storage. Bucket paths given to it are relative to
// the tenant's bucket (["records", "guests"] means ["tenant:<id>",
// "records", "guests"]); audit appends must go to the tenant's own chain;
// and every write also requires the tenant to exist, so that nothing is
// written for a tenant deleted meanwhile.
type Scoped struct {
	sc  Scope
	raw Store
}

// Tenant is the store's tenant id.
func (s Scoped) Tenant() string { return s.sc.ID() }

// Chain is the name of the tenant's audit chain.
func (s Scoped) Chain() string { return audit.TenantChain(s.sc.ID()) }

func (s Scoped) abs(rel [][]byte) ([][]byte, error) {
	if !s.sc.Valid() {
		return nil, fmt.Errorf("%w: malformed tenant id", ErrNotFound)
	}
	if len(rel) == 0 {
		return nil, fmt.Errorf("%w: an empty bucket path", ErrOutOfScope)
	}
	p := make([][]byte, 0, len(rel)+1)
	p = append(p, s.sc.root)
	return append(p, rel...), nil
}

// Apply applies t, whose bucket paths are relative to the tenant. Its
// appends must name the tenant's chain.
func (s Scoped) Apply(ctx context.Context, t *raftstore.Txn) (raftstore.Result, error) {
	if !s.sc.Valid() {
		return raftstore.Result{}, fmt.Errorf("%w: malformed tenant id", ErrNotFound)
	}
	out := &raftstore.Txn{
		Conds:   make([]raftstore.Cond, 0, len(t.Conds)+1),
		Ops:     make([]raftstore.Op, 0, len(t.Ops)),
		Appends: t.Appends,
	}
	for _, c := range t.Conds {
		b, err := s.abs(c.Bucket)
		if err != nil {
			return raftstore.Result{}, err
		}
		c.Bucket = b
		out.Conds = append(out.Conds, c)
	}
	for _, o := range t.Ops {
		b, err := s.abs(o.Bucket)
		if err != nil {
			return raftstore.Result{}, err
		}
		o.Bucket = b
		out.Ops = append(out.Ops, o)
	}
	chain := s.Chain()
	for _, a := range t.Appends {
		if string(a.Chain) != chain {
			return raftstore.Result{}, fmt.Errorf("%w: an append to chain %q from tenant %q", ErrOutOfScope, a.Chain, s.sc.ID())
		}
	}
	out.Conds = append(out.Conds, raftstore.Cond{Kind: raftstore.CondPresent, Bucket: RegistryPath(), Key: []byte(s.sc.ID())})
	return s.raw.Apply(ctx, out)
}

// TenantGone reports whether a transaction t that Apply did not apply
// failed because the tenant does not exist (the condition Apply adds after
// t's own).
func TenantGone(t *raftstore.Txn, res raftstore.Result) bool {
	return !res.Applied && res.Err == nil && res.FailedCond == len(t.Conds)
}

// View runs fn over a read of the tenant's data.
func (s Scoped) View(ctx context.Context, c raftstore.Consistency, fn func(Read) error) error {
	if !s.sc.Valid() {
		return fmt.Errorf("%w: malformed tenant id", ErrNotFound)
	}
	return s.raw.View(ctx, c, func(r *raftstore.ReadTx) error { return fn(Read{r: r, s: s}) })
}

// Read is a read of one tenant's data; its paths are relative to the
// tenant's bucket, like the Scoped store's.
type Read struct {
	r *raftstore.ReadTx
	s Scoped
}

// Exists reports whether the tenant exists.
func (r Read) Exists() bool {
	_, _, ok := r.r.Get(RegistryPath(), []byte(r.s.sc.ID()))
	return ok
}

// Get is raftstore.ReadTx.Get below the tenant.
func (r Read) Get(bucket [][]byte, key []byte) (value []byte, version uint64, ok bool) {
	b, err := r.s.abs(bucket)
	if err != nil {
		return nil, 0, false
	}
	return r.r.Get(b, key)
}

// Scan is raftstore.ReadTx.Scan below the tenant.
func (r Read) Scan(bucket [][]byte, after []byte, limit int, fn func(key, value []byte, version uint64) bool) {
	if b, err := r.s.abs(bucket); err == nil {
		r.r.Scan(b, after, limit, fn)
	}
}

// Count is raftstore.ReadTx.Count below the tenant.
func (r Read) Count(bucket [][]byte) int {
	b, err := r.s.abs(bucket)
	if err != nil {
		return 0
	}
	return r.r.Count(b)
}

// BucketCount is raftstore.ReadTx.BucketCount below the tenant.
func (r Read) BucketCount(bucket [][]byte) int {
	b, err := r.s.abs(bucket)
	if err != nil {
		return 0
	}
	return r.r.BucketCount(b)
}

// BucketExists is raftstore.ReadTx.BucketExists below the tenant.
func (r Read) BucketExists(bucket [][]byte) bool {
	b, err := r.s.abs(bucket)
	return err == nil && r.r.BucketExists(b)
}
