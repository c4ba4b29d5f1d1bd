package tenancy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/custos/custos/raftstore"
)

// Registry is the storage of the tenant registry (appliance/tenants, its
// only user): the entries below ["sys", "tenants"], and the creation and
// deletion of tenant buckets with them. Every change carries its audit
// entry, appended to the system chain in the same transaction.
type Registry struct{ b *Boundary }

// Registry is the registry's storage.
func (b *Boundary) Registry() Registry { return Registry{b: b} }

// View runs fn over a read of the registry.
func (r Registry) View(ctx context.Context, c raftstore.Consistency, fn func(RegistryRead) error) error {
	return r.b.raw.View(ctx, c, func(tx *raftstore.ReadTx) error { return fn(RegistryRead{r: tx}) })
}

// RegistryRead is a read of the registry.
type RegistryRead struct{ r *raftstore.ReadTx }

// Get returns tenant id's entry and its version.
func (r RegistryRead) Get(id string) (value []byte, version uint64, ok bool) {
	if !ValidID(id) {
		return nil, 0, false
	}
	return r.r.Get(registryPath, []byte(id))
}

// Scan calls fn for the entries in id order, starting after the id after
// ("" from the first), until fn returns false or limit entries were visited
// (limit <= 0: no limit).
func (r RegistryRead) Scan(after string, limit int, fn func(id string, value []byte, version uint64) bool) {
	var a []byte
	if after != "" {
		a = []byte(after)
	}
	r.r.Scan(registryPath, a, limit, func(k, v []byte, ver uint64) bool { return fn(string(k), v, ver) })
}

// Create registers tenant id with its registry value and creates its bucket
// (the marker), on the conditions that neither exists, with entry appended
// to the system chain. with, if not nil, is the rest of the creation — the
// tenant's keys: its paths are relative to the new tenant's bucket and its
// Audit goes to the tenant's chain, as in Scope.Apply, but it is not
// conditioned on the tenant existing (it comes to exist in this
// transaction). Result.FailedCond is 0 when the registry entry exists, 1
// when the bucket exists without one, and 2 on for with's conditions.
func (r Registry) Create(ctx context.Context, id string, value, entry []byte, with *Txn) (raftstore.Result, error) {
	sc := r.b.Scope(id)
	if !sc.Valid() {
		return raftstore.Result{}, fmt.Errorf("%w: create a tenant of malformed id %q", ErrOutOfScope, id)
	}
	if len(entry) == 0 {
		return raftstore.Result{}, fmt.Errorf("%w: a registry change without its audit entry", ErrOutOfScope)
	}
	marker, err := json.Marshal(struct {
		Tenant string `json:"tenant"`
	}{id})
	if err != nil {
		return raftstore.Result{}, fmt.Errorf("tenancy: marker of %q: %w", id, err)
	}
	rest := &raftstore.Txn{}
	if with != nil {
		if rest, err = sc.txn(with); err != nil {
			return raftstore.Result{}, err
		}
	}
	root := [][]byte{sc.root}
	t := &raftstore.Txn{
		Conds: append([]raftstore.Cond{
			{Kind: raftstore.CondAbsent, Bucket: registryPath, Key: []byte(id)},
			// The bucket can only outlive its registry entry through a bug;
			// refusing keeps a new tenant from inheriting old data.
			{Kind: raftstore.CondAbsent, Bucket: root, Key: []byte(metaKey)},
		}, rest.Conds...),
		Ops: append([]raftstore.Op{
			{Kind: raftstore.OpPut, Bucket: registryPath, Key: []byte(id), Value: value},
			{Kind: raftstore.OpPut, Bucket: root, Key: []byte(metaKey), Value: marker},
		}, rest.Ops...),
		Appends: append([]raftstore.Append{{Chain: []byte(SystemChain), Data: entry}}, rest.Appends...),
	}
	return r.b.raw.Apply(ctx, t)
}

// Update replaces tenant id's registry value, on the condition that its
// entry is still at version, with entry appended to the system chain.
func (r Registry) Update(ctx context.Context, id string, version uint64, value, entry []byte) (raftstore.Result, error) {
	if !ValidID(id) || len(entry) == 0 {
		return raftstore.Result{}, fmt.Errorf("%w: update of %q", ErrOutOfScope, id)
	}
	return r.b.raw.Apply(ctx, &raftstore.Txn{
		Conds:   []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: registryPath, Key: []byte(id), Version: version}},
		Ops:     []raftstore.Op{{Kind: raftstore.OpPut, Bucket: registryPath, Key: []byte(id), Value: value}},
		Appends: []raftstore.Append{{Chain: []byte(SystemChain), Data: entry}},
	})
}

// Delete removes tenant id's registry entry and its whole bucket, on the
// condition that its entry is still at version, with entry appended to the
// system chain and the components' system writes that go with a deletion
// (keyring: drop the tenant's cached keys everywhere and compact). The
// tenant's chain stays, for its retention.
func (r Registry) Delete(ctx context.Context, id string, version uint64, entry []byte, system []raftstore.Op) (raftstore.Result, error) {
	sc := r.b.Scope(id)
	if !sc.Valid() || len(entry) == 0 {
		return raftstore.Result{}, fmt.Errorf("%w: delete of %q", ErrOutOfScope, id)
	}
	if err := checkSystemOps(system); err != nil {
		return raftstore.Result{}, err
	}
	return r.b.raw.Apply(ctx, &raftstore.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: registryPath, Key: []byte(id), Version: version}},
		Ops: append([]raftstore.Op{
			{Kind: raftstore.OpDelete, Bucket: registryPath, Key: []byte(id)},
			{Kind: raftstore.OpDeleteBucket, Key: sc.root},
		}, system...),
		Appends: []raftstore.Append{{Chain: []byte(SystemChain), Data: entry}},
	})
}
