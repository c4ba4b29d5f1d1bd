package tenancy

import (
	"context"
	"fmt"

	"github.com/custos/custos/raftstore"
)

// System is a component's own bucket of cluster-wide records,
// ["sys", <component>]: the records it keeps for the whole cluster that
// change in the same transactions as tenant data (see the package doc). It
// is a name, not a handle on the store: its Put, Delete and Cond build what
// a scoped Txn carries as SystemOps and SystemConds (or a bootstrap
// transaction writes), and the Boundary reads and writes it
// (ViewSystem, ApplySystem).
type System struct{ path [][]byte }

// SystemOf declares component's system bucket. The name is a constant of
// the component's own ("keyring", "apikeys"); one that is not a plain name
// of a-z, 0-9, '_' and '-', or that is the registry's ("tenants"), is a
// programming mistake and panics.
func SystemOf(component string) System {
	if !validComponent(component) {
		panic(fmt.Sprintf("tenancy: %q cannot be a component's system bucket", component))
	}
	return System{path: raftstore.Path(sysBucket, component)}
}

func validComponent(name string) bool {
	if name == "" || len(name) > 63 || name == registryName {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// isSystemBucket reports whether p is exactly a component's system bucket.
func isSystemBucket(p [][]byte) bool {
	return len(p) == 2 && string(p[0]) == sysBucket && validComponent(string(p[1]))
}

// checkSystemOps checks that every op is a put or delete on a component's
// system bucket.
func checkSystemOps(ops []raftstore.Op) error {
	for _, o := range ops {
		if (o.Kind != raftstore.OpPut && o.Kind != raftstore.OpDelete) || !isSystemBucket(o.Bucket) {
			return fmt.Errorf("%w: op %d on %q is not a write of a component's system records", ErrOutOfScope, o.Kind, o.Bucket)
		}
	}
	return nil
}

// Put writes key = value in the component's bucket.
func (s System) Put(key string, value []byte) raftstore.Op {
	return raftstore.Op{Kind: raftstore.OpPut, Bucket: s.path, Key: []byte(key), Value: value}
}

// Delete deletes key from the component's bucket (absent is not an error).
func (s System) Delete(key string) raftstore.Op {
	return raftstore.Op{Kind: raftstore.OpDelete, Bucket: s.path, Key: []byte(key)}
}

// Cond is a condition on key of the component's bucket.
func (s System) Cond(kind raftstore.CondKind, key string, version uint64) raftstore.Cond {
	return raftstore.Cond{Kind: kind, Bucket: s.path, Key: []byte(key), Version: version}
}

// ViewSystem runs fn over a read of sys, in which the tenants its records
// name can be read too (SystemRead.Tenant).
func (b *Boundary) ViewSystem(ctx context.Context, c raftstore.Consistency, sys System, fn func(SystemRead) error) error {
	if sys.path == nil {
		return fmt.Errorf("%w: the zero System", ErrOutOfScope)
	}
	return b.raw.View(ctx, c, func(r *raftstore.ReadTx) error { return fn(SystemRead{r: r, sys: sys, b: b}) })
}

// ApplySystem applies conditions and writes on components' system records
// alone: no tenant's data, no chain. Result.FailedCond indexes conds.
func (b *Boundary) ApplySystem(ctx context.Context, conds []raftstore.Cond, ops []raftstore.Op) (raftstore.Result, error) {
	for _, c := range conds {
		if !isSystemBucket(c.Bucket) {
			return raftstore.Result{}, fmt.Errorf("%w: a condition on %q", ErrOutOfScope, c.Bucket)
		}
	}
	if err := checkSystemOps(ops); err != nil {
		return raftstore.Result{}, err
	}
	return b.raw.Apply(ctx, &raftstore.Txn{Conds: conds, Ops: ops})
}

// SystemRead is a read of a component's system bucket.
type SystemRead struct {
	r   *raftstore.ReadTx
	sys System
	b   *Boundary
}

// Get returns the value and version of key.
func (r SystemRead) Get(key string) (value []byte, version uint64, ok bool) {
	return r.r.Get(r.sys.path, []byte(key))
}

// Scan calls fn for the keys in order, starting after the key after (""
// from the first), until fn returns false or limit keys were visited
// (limit <= 0: no limit).
func (r SystemRead) Scan(after string, limit int, fn func(key string, value []byte, version uint64) bool) {
	var a []byte
	if after != "" {
		a = []byte(after)
	}
	r.r.Scan(r.sys.path, a, limit, func(k, v []byte, ver uint64) bool { return fn(string(k), v, ver) })
}

// Operators is a read of the operators' realm (Boundary.Operators) in the
// same snapshot, for an index whose records name the realm rather than a
// tenant (accounts' refresh-token index). Read only, like Tenant.
func (r SystemRead) Operators() Read {
	return Read{r: r.r, s: r.b.Operators()}
}

// Tenant is a read of tenant's data in the same snapshot, for a component
// whose records name tenants (authentication's token index, keyring's
// Vault-key index). It is read only: writes go through the tenant's Scope.
func (r SystemRead) Tenant(tenant string) Read {
	return Read{r: r.r, s: r.b.Scope(tenant)}
}
