package tenancy

import (
	"context"
	"fmt"

	"github.com/custos/custos/raftstore"
)

// Scope is one tenant's storage: the handle domain code holds. Bucket paths
// given to it are relative to the tenant's bucket (["records", "guests"]
// means ["tenant:<id>", "records", "guests"]), its transactions append only
// to the tenant's own chain, and every write also requires the tenant to
// exist. It is a value: cheap to copy, safe for concurrent use.
//
// The zero Scope, and the Scope of a malformed id, reach nothing: every
// call fails with ErrNoTenant (reads through its Read find nothing).
//
// A Scope may also be restricted to the items of an attribute scope
// (Restrict; see restrict.go): its reads then see only those items.
type Scope struct {
	b        *Boundary
	id       string
	root     []byte       // "tenant:" + id (OperatorsBucket for the operators' realm); nil for an invalid scope
	restrict *restriction // nil: unrestricted
	// operators: the operators' realm (Boundary.Operators), whose chain
	// is the system chain and whose writes need no tenant.
	operators bool
}

// Operators returns the operators' realm: the Scope of the cluster's own
// people (operator users, their sessions), which belong to no tenant. Its
// bucket is the top-level "operators" (paths relative to it, as a
// tenant's are relative to the tenant's bucket), its transactions append
// to the system chain (SystemChain) and may carry system-bucket writes
// like a tenant's — so an operator's login, its session and the entry
// recording it are one transaction — and its writes are not conditioned
// on any tenant existing. Its ID is "" and its Read.Exists is true;
// Read.Entry finds no registry entry. It is never restricted.
func (b *Boundary) Operators() Scope {
	return Scope{b: b, root: []byte(operatorsBucket), operators: true}
}

// IsOperators reports whether s is the operators' realm.
func (s Scope) IsOperators() bool { return s.operators && s.root != nil }

// chain is the name of the chain the scope's transactions append to.
func (s Scope) chain() []byte {
	if s.operators {
		return []byte(SystemChain)
	}
	return s.root
}

// Scope returns tenant's handle. It does not check that the tenant exists
// (the API resolves and authorizes the tenant first); its writes do.
func (b *Boundary) Scope(tenant string) Scope {
	if !ValidID(tenant) {
		return Scope{b: b}
	}
	return Scope{b: b, id: tenant, root: []byte(tenantPrefix + tenant)}
}

// ID is the tenant's id ("" for an invalid scope).
func (s Scope) ID() string { return s.id }

// Valid reports whether the scope belongs to a well-formed tenant id.
func (s Scope) Valid() bool { return s.root != nil && s.b != nil }

// Txn is a transaction of one tenant: all conditions hold and then every
// write and append is made, or nothing is.
type Txn struct {
	// Conds and Ops name buckets relative to the tenant's bucket; a path
	// must not be empty.
	Conds []raftstore.Cond
	Ops   []raftstore.Op
	// Audit are canonical audit entries, appended in order to the tenant's
	// own chain.
	Audit [][]byte
	// SystemConds and SystemOps are on a component's own system bucket
	// (made with System.Cond, System.Put and System.Delete): records the
	// component keeps for the whole cluster that change with this tenant's
	// data. Result.FailedCond counts them after Conds.
	SystemConds []raftstore.Cond
	SystemOps   []raftstore.Op
}

// Apply applies t below the tenant, on the condition that the tenant exists
// (ErrNoTenant otherwise, and nothing is applied; the operators' realm has
// no such condition). Result.FailedCond indexes
// t.Conds followed by t.SystemConds. A restricted scope refuses writes
// outside its restriction (ErrRestricted, nothing applied).
func (s Scope) Apply(ctx context.Context, t *Txn) (raftstore.Result, error) {
	if !s.Valid() {
		return raftstore.Result{}, fmt.Errorf("%w: malformed tenant id", ErrNoTenant)
	}
	if s.restrict != nil {
		if err := s.checkWrites(ctx, t); err != nil {
			return raftstore.Result{}, err
		}
	}
	out, err := s.txn(t)
	if err != nil {
		return raftstore.Result{}, err
	}
	if s.operators {
		return s.b.raw.Apply(ctx, out)
	}
	exists := len(out.Conds)
	out.Conds = append(out.Conds, raftstore.Cond{Kind: raftstore.CondPresent, Bucket: registryPath, Key: []byte(s.id)})
	res, err := s.b.raw.Apply(ctx, out)
	if err != nil {
		return res, err
	}
	if !res.Applied && res.Err == nil && res.FailedCond == exists {
		return res, fmt.Errorf("%w: %s", ErrNoTenant, s.id)
	}
	return res, nil
}

// txn is t with absolute paths and the tenant's chain: conditions first
// (t.Conds, then t.SystemConds), then ops, then appends.
func (s Scope) txn(t *Txn) (*raftstore.Txn, error) {
	out := &raftstore.Txn{
		Conds:   make([]raftstore.Cond, 0, len(t.Conds)+len(t.SystemConds)+1),
		Ops:     make([]raftstore.Op, 0, len(t.Ops)+len(t.SystemOps)),
		Appends: make([]raftstore.Append, 0, len(t.Audit)),
	}
	for _, c := range t.Conds {
		b, err := s.abs(c.Bucket)
		if err != nil {
			return nil, err
		}
		c.Bucket = b
		out.Conds = append(out.Conds, c)
	}
	for _, c := range t.SystemConds {
		if !isSystemBucket(c.Bucket) {
			return nil, fmt.Errorf("%w: a condition on %q from tenant %s", ErrOutOfScope, c.Bucket, s.id)
		}
		out.Conds = append(out.Conds, c)
	}
	for _, o := range t.Ops {
		if o.Kind == raftstore.OpPruneChain {
			return nil, fmt.Errorf("%w: a chain prune from tenant %s", ErrOutOfScope, s.id)
		}
		b, err := s.abs(o.Bucket)
		if err != nil {
			return nil, err
		}
		o.Bucket = b
		out.Ops = append(out.Ops, o)
	}
	if err := checkSystemOps(t.SystemOps); err != nil {
		return nil, fmt.Errorf("%w (from tenant %s)", err, s.id)
	}
	out.Ops = append(out.Ops, t.SystemOps...)
	for _, e := range t.Audit {
		out.Appends = append(out.Appends, raftstore.Append{Chain: s.chain(), Data: e})
	}
	return out, nil
}

// abs is the absolute path of rel, a path below the tenant's bucket. Its
// first name is a fresh copy of the tenant's bucket name, so nothing that
// holds a path can change the scope.
func (s Scope) abs(rel [][]byte) ([][]byte, error) {
	if s.root == nil {
		return nil, fmt.Errorf("%w: malformed tenant id", ErrNoTenant)
	}
	if len(rel) == 0 {
		return nil, fmt.Errorf("%w: an empty bucket path", ErrOutOfScope)
	}
	p := make([][]byte, 0, len(rel)+1)
	p = append(p, append([]byte(nil), s.root...))
	return append(p, rel...), nil
}

// View runs fn over a read of the tenant's data.
func (s Scope) View(ctx context.Context, c raftstore.Consistency, fn func(Read) error) error {
	if !s.Valid() {
		return fmt.Errorf("%w: malformed tenant id", ErrNoTenant)
	}
	return s.b.raw.View(ctx, c, func(r *raftstore.ReadTx) error { return fn(Read{r: r, s: s}) })
}

// Read is a read of one tenant's data; its paths are relative to the
// tenant's bucket, like the Scope's. The reads of an invalid scope find
// nothing; those of a restricted scope find only what its restriction
// lets it see (restrict.go): what it hides reads as absent.
type Read struct {
	r *raftstore.ReadTx
	s Scope
}

// Exists reports whether the tenant exists (is in the registry); the
// operators' realm always does.
func (r Read) Exists() bool {
	if r.s.operators {
		return r.s.root != nil
	}
	_, ok := r.Entry()
	return ok
}

// Entry is the tenant's registry entry (the registry's JSON, which
// appliance/tenants decodes) in this read's snapshot: a component that
// reads the tenant's data sees the tenant's state as of the same moment
// (authentication refuses a suspended tenant's credentials without a
// second read).
func (r Read) Entry() (value []byte, ok bool) {
	if r.s.root == nil || r.s.operators {
		return nil, false
	}
	v, _, ok := r.r.Get(registryPath, []byte(r.s.id))
	return v, ok
}

// Get is raftstore.ReadTx.Get below the tenant.
func (r Read) Get(bucket [][]byte, key []byte) (value []byte, version uint64, ok bool) {
	b, err := r.s.abs(bucket)
	if err != nil {
		return nil, 0, false
	}
	value, version, ok = r.r.Get(b, key)
	if ok && r.s.restrict != nil && !r.s.restrict.visible(r, bucket, key, value) {
		return nil, 0, false
	}
	return value, version, ok
}

// Scan is raftstore.ReadTx.Scan below the tenant. Through a restricted
// scope it skips what the restriction hides, and limit counts the entries
// fn is called with.
func (r Read) Scan(bucket [][]byte, after []byte, limit int, fn func(key, value []byte, version uint64) bool) {
	b, err := r.s.abs(bucket)
	if err != nil {
		return
	}
	x := r.s.restrict
	if x == nil || x.open(bucket) {
		r.r.Scan(b, after, limit, fn)
		return
	}
	seen := 0
	r.r.Scan(b, after, 0, func(k, v []byte, ver uint64) bool {
		if !x.visible(r, bucket, k, v) {
			return true
		}
		seen++
		return fn(k, v, ver) && (limit <= 0 || seen < limit)
	})
}

// Any reports whether bucket holds an entry the scope sees (through a
// restricted scope, one the restriction does not hide).
func (r Read) Any(bucket [][]byte) bool {
	found := false
	r.Scan(bucket, nil, 1, func(_, _ []byte, _ uint64) bool {
		found = true
		return false
	})
	return found
}

// Count is raftstore.ReadTx.Count below the tenant; through a restricted
// scope, the entries it sees.
func (r Read) Count(bucket [][]byte) int {
	b, err := r.s.abs(bucket)
	if err != nil {
		return 0
	}
	if x := r.s.restrict; x != nil && !x.open(bucket) {
		n := 0
		r.Scan(bucket, nil, 0, func(_, _ []byte, _ uint64) bool { n++; return true })
		return n
	}
	return r.r.Count(b)
}

// BucketCount is raftstore.ReadTx.BucketCount below the tenant. Through a
// restricted scope it counts only below an open bucket (0 elsewhere: the
// buckets below items or references would count hidden ones).
func (r Read) BucketCount(bucket [][]byte) int {
	b, err := r.s.abs(bucket)
	if err != nil || (r.s.restrict != nil && !r.s.restrict.open(bucket)) {
		return 0
	}
	return r.r.BucketCount(b)
}

// Buckets is raftstore.ReadTx.Buckets below the tenant; through a
// restricted scope, below an open bucket only (nothing elsewhere, as
// BucketCount).
func (r Read) Buckets(bucket [][]byte, fn func(name []byte) bool) {
	b, err := r.s.abs(bucket)
	if err != nil || (r.s.restrict != nil && !r.s.restrict.open(bucket)) {
		return
	}
	r.r.Buckets(b, fn)
}

// BucketExists is raftstore.ReadTx.BucketExists below the tenant; through
// a restricted scope, of an open bucket only (false elsewhere, as
// BucketCount).
func (r Read) BucketExists(bucket [][]byte) bool {
	b, err := r.s.abs(bucket)
	return err == nil && (r.s.restrict == nil || r.s.restrict.open(bucket)) && r.r.BucketExists(b)
}
