package tenancy_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

// chainLen is the number of entries of a raw chain.
func chainLen(t *testing.T, store tenancy.Store, chain []byte) uint64 {
	t.Helper()
	var n uint64
	if err := store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		n, _ = r.ChainHead(chain)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestScopedStore: a tenant's store writes and reads only below the
// tenant's bucket, appends only to its chain, writes nothing for a tenant
// that does not exist, and a malformed id reaches nothing at all.
func TestScopedStore(t *testing.T) {
	store := storetest.Start(t)
	ctx := context.Background()
	tenancytest.Register(t, store, "acme", "globex")
	b := tenancy.New(store)
	acme, globex := b.Scope("acme"), b.Scope("globex")
	rel := raftstore.Path("things")
	put := func(s tenancy.Scope, v string) error {
		res, err := s.Apply(ctx, &tenancy.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: rel, Key: []byte("k"), Value: []byte(v)}}})
		if err == nil && !res.Applied {
			err = errors.New("not applied")
		}
		return err
	}
	if err := put(acme, "acme's"); err != nil {
		t.Fatal(err)
	}
	if err := put(globex, "globex's"); err != nil {
		t.Fatal(err)
	}
	// Each sees its own value at the same relative path; the raw store
	// has them below each tenant's bucket.
	for _, c := range []struct {
		s    tenancy.Scope
		want string
	}{{acme, "acme's"}, {globex, "globex's"}} {
		var got []byte
		if err := c.s.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
			got, _, _ = r.Get(rel, []byte("k"))
			if !r.Exists() || r.Count(rel) != 1 {
				t.Errorf("%s: exists %v, count %d", c.s.ID(), r.Exists(), r.Count(rel))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Fatalf("%s reads %q, want %q", c.s.ID(), got, c.want)
		}
		var raw []byte
		_ = store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
			raw, _, _ = r.Get(tenancytest.Path(c.s.ID(), "things"), []byte("k"))
			return nil
		})
		if string(raw) != c.want {
			t.Fatalf("raw %s: %q", c.s.ID(), raw)
		}
	}
	// Entries go to the tenant's own chain: a caller cannot name a chain,
	// so nothing reaches another tenant's chain or the system chain.
	before := map[string]uint64{}
	chains := [][]byte{tenancytest.Chain("acme"), tenancytest.Chain("globex"), []byte(tenancy.SystemChain)}
	for _, c := range chains {
		before[string(c)] = chainLen(t, store, c)
	}
	if res, err := acme.Apply(ctx, &tenancy.Txn{Audit: [][]byte{[]byte("entry")}}); err != nil || !res.Applied {
		t.Fatalf("append: %+v %v", res, err)
	}
	for _, c := range chains {
		want := before[string(c)]
		if bytes.Equal(c, tenancytest.Chain("acme")) {
			want++
		}
		if got := chainLen(t, store, c); got != want {
			t.Fatalf("chain %s has %d entries, want %d", c, got, want)
		}
	}
	// Writes outside the tenant through its system-record fields are
	// refused, and nothing of the transaction is applied: the registry,
	// another tenant's bucket, a nested system bucket, a bucket deletion
	// of a system bucket, a chain prune.
	evil := []raftstore.Op{{Kind: raftstore.OpPut, Bucket: rel, Key: []byte("k"), Value: []byte("evil")}}
	for name, txn := range map[string]*tenancy.Txn{
		"registry":         {Ops: evil, SystemOps: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("sys", "tenants"), Key: []byte("x"), Value: []byte("{}")}}},
		"other tenant":     {Ops: evil, SystemOps: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: tenancytest.Path("globex", "things"), Key: []byte("k"), Value: []byte("evil")}}},
		"nested sys":       {Ops: evil, SystemOps: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("sys", "keyring", "x"), Key: []byte("k"), Value: []byte("v")}}},
		"sys bucket gone":  {Ops: evil, SystemOps: []raftstore.Op{{Kind: raftstore.OpDeleteBucket, Bucket: raftstore.Path("sys", "keyring"), Key: []byte("x")}}},
		"registry cond":    {Ops: evil, SystemConds: []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: raftstore.Path("sys", "tenants"), Key: []byte("acme")}}},
		"other tenant pfx": {Ops: evil, SystemConds: []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: tenancytest.Path("globex"), Key: []byte("meta")}}},
		"prune":            {Ops: append(evil, raftstore.PruneChain(tenancytest.Chain("globex"), 2))},
	} {
		if _, err := acme.Apply(ctx, txn); !errors.Is(err, tenancy.ErrOutOfScope) {
			t.Fatalf("%s through acme's store: %v", name, err)
		}
	}
	// A component's own system records go with the tenant's data.
	sys := tenancy.SystemOf("testing")
	if res, err := acme.Apply(ctx, &tenancy.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("other"), Key: []byte("k"), Value: []byte("v")}}, SystemOps: []raftstore.Op{sys.Put("acme", []byte("v"))}}); err != nil || !res.Applied {
		t.Fatalf("system record: %+v %v", res, err)
	}
	// A tenant that does not exist gets nothing written; a malformed id
	// reaches nothing; an empty path is refused.
	res, err := b.Scope("nobody").Apply(ctx, &tenancy.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: rel, Key: []byte("k"), Value: []byte("v")}}, SystemOps: []raftstore.Op{sys.Put("nobody", []byte("v"))}})
	if !errors.Is(err, tenancy.ErrNoTenant) || res.Applied {
		t.Fatalf("write for a missing tenant: %+v %v", res, err)
	}
	if err := b.ViewSystem(ctx, raftstore.Linearizable, sys, func(r tenancy.SystemRead) error {
		if _, _, ok := r.Get("nobody"); ok {
			t.Error("a missing tenant's transaction wrote its system record")
		}
		if v, _, _ := r.Get("acme"); string(v) != "v" {
			t.Errorf("system record %q", v)
		}
		if v, _, _ := r.Tenant("acme").Get(rel, []byte("k")); string(v) != "acme's" {
			t.Errorf("acme read through the system read: %q", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "../acme", "tenant:acme", "sys/tenants"} {
		if err := put(b.Scope(bad), "v"); !errors.Is(err, tenancy.ErrNoTenant) {
			t.Fatalf("write through the store of %q: %v", bad, err)
		}
		if err := b.Scope(bad).View(ctx, raftstore.Stale, func(tenancy.Read) error { return nil }); err == nil {
			t.Fatalf("read through the store of %q", bad)
		}
	}
	if _, err := acme.Apply(ctx, &tenancy.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Key: []byte("k"), Value: []byte("v")}}}); !errors.Is(err, tenancy.ErrOutOfScope) {
		t.Fatalf("empty bucket path: %v", err)
	}
	var got []byte
	_ = acme.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		got, _, _ = r.Get(rel, []byte("k"))
		return nil
	})
	if string(got) != "acme's" {
		t.Fatalf("acme's value after refused writes: %q", got)
	}
}

// TestAppendBatch: a batch appends each entry to its own tenant's chain in
// one transaction, names the entry whose condition failed, and refuses
// invalid scopes.
func TestAppendBatch(t *testing.T) {
	store := storetest.Start(t)
	ctx := context.Background()
	tenancytest.Register(t, store, "acme", "globex")
	b := tenancy.New(store)
	acme, globex := b.Scope("acme"), b.Scope("globex")
	if _, err := acme.Apply(ctx, &tenancy.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("r"), Key: []byte("k"), Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	a0, g0 := chainLen(t, store, tenancytest.Chain("acme")), chainLen(t, store, tenancytest.Chain("globex"))
	present := []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: raftstore.Path("r"), Key: []byte("k")}}
	failed, res, err := b.AppendBatch(ctx, []tenancy.BatchEntry{
		{Scope: acme, Data: []byte("a1"), Conds: present},
		{Scope: globex, Data: []byte("g1")},
		{Scope: acme, Data: []byte("a2")},
	})
	if err != nil || failed != -1 || !res.Applied || len(res.Chains) != 3 {
		t.Fatalf("batch: %d %+v %v", failed, res, err)
	}
	if a, g := chainLen(t, store, tenancytest.Chain("acme")), chainLen(t, store, tenancytest.Chain("globex")); a != a0+2 || g != g0+1 {
		t.Fatalf("chains grew by %d and %d", a-a0, g-g0)
	}
	// globex has no "r"/"k": its entry's condition (relative to globex)
	// fails, and it is the one named.
	failed, res, err = b.AppendBatch(ctx, []tenancy.BatchEntry{
		{Scope: acme, Data: []byte("a3"), Conds: present},
		{Scope: globex, Data: []byte("g2"), Conds: present},
	})
	if err != nil || failed != 1 || res.Applied {
		t.Fatalf("failed condition: %d %+v %v", failed, res, err)
	}
	for _, sc := range []tenancy.Scope{b.Scope("Bad"), {}} {
		if _, _, err := b.AppendBatch(ctx, []tenancy.BatchEntry{{Scope: acme, Data: []byte("ok")}, {Scope: sc, Data: []byte("x")}}); !errors.Is(err, tenancy.ErrOutOfScope) {
			t.Fatalf("invalid scope: %v", err)
		}
	}
	if a := chainLen(t, store, tenancytest.Chain("acme")); a != a0+2 {
		t.Fatalf("a refused batch wrote: acme's chain grew by %d", a-a0)
	}
}

// TestRegistry: creation writes the entry, the marker and the creation's
// extra parts at once; an existing entry or an orphan bucket refuses it;
// deletion removes the bucket and leaves the tenant's chain.
func TestRegistry(t *testing.T) {
	store := storetest.Start(t)
	ctx := context.Background()
	reg := tenancy.New(store).Registry()
	keys := &tenancy.Txn{
		Ops:       []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("keys"), Key: []byte("k"), Value: []byte("key")}},
		Audit:     [][]byte{[]byte("key.provision")},
		SystemOps: []raftstore.Op{tenancy.SystemOf("testing").Put("acme", []byte("v"))},
	}
	res, err := reg.Create(ctx, "acme", []byte(`{"id":"acme"}`), []byte("tenant.create"), keys)
	if err != nil || !res.Applied {
		t.Fatalf("create: %+v %v", res, err)
	}
	if res, err = reg.Create(ctx, "acme", []byte(`{}`), []byte("again"), nil); err != nil || res.Applied || res.FailedCond != 0 {
		t.Fatalf("create again: %+v %v", res, err)
	}
	var version uint64
	_ = store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		if v, _, _ := r.Get(tenancytest.Path("acme", "keys"), []byte("k")); string(v) != "key" {
			t.Errorf("key %q", v)
		}
		if _, _, ok := r.Get(tenancytest.Path("acme"), []byte("meta")); !ok {
			t.Error("no marker")
		}
		_, version, _ = r.Get(raftstore.Path("sys", "tenants"), []byte("acme"))
		return nil
	})
	if n := chainLen(t, store, tenancytest.Chain("acme")); n != 1 {
		t.Fatalf("tenant chain: %d entries", n)
	}
	if n := chainLen(t, store, []byte(tenancy.SystemChain)); n != 1 {
		t.Fatalf("system chain: %d entries", n)
	}
	if _, err := reg.Create(ctx, "globex", []byte(`{}`), nil, nil); !errors.Is(err, tenancy.ErrOutOfScope) {
		t.Fatalf("create without an audit entry: %v", err)
	}
	if res, err := reg.Delete(ctx, "acme", version, []byte("tenant.delete"), []raftstore.Op{{Kind: raftstore.OpPut, Bucket: tenancytest.Path("globex"), Key: []byte("x")}}); !errors.Is(err, tenancy.ErrOutOfScope) || res.Applied {
		t.Fatalf("delete with a write outside the system records: %+v %v", res, err)
	}
	if res, err := reg.Delete(ctx, "acme", version, []byte("tenant.delete"), nil); err != nil || !res.Applied {
		t.Fatalf("delete: %+v %v", res, err)
	}
	_ = store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		if r.BucketExists(tenancytest.Path("acme")) {
			t.Error("the bucket outlived the tenant")
		}
		return nil
	})
	if n := chainLen(t, store, tenancytest.Chain("acme")); n != 1 {
		t.Fatalf("tenant chain after deletion: %d entries", n)
	}
	// An orphan bucket (only through a bug) refuses a new tenant of its id.
	if _, err := store.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: tenancytest.Path("orphan"), Key: []byte("meta"), Value: []byte("{}")}}}); err != nil {
		t.Fatal(err)
	}
	if res, err := reg.Create(ctx, "orphan", []byte(`{}`), []byte("tenant.create"), nil); err != nil || res.Applied || res.FailedCond != 1 {
		t.Fatalf("create over an orphan bucket: %+v %v", res, err)
	}
}

// TestOperatorsRealm: the operators' realm writes below its own bucket
// with no tenant in the registry, appends to the system chain (and to no
// tenant's) in the transaction of its writes, carries system-bucket
// writes like a tenant's transaction, and refuses anything else outside
// its bucket.
func TestOperatorsRealm(t *testing.T) {
	store := storetest.Start(t)
	ctx := context.Background()
	tenancytest.Register(t, store, "acme")
	b := tenancy.New(store)
	ops := b.Operators()
	sys := tenancy.SystemOf("identity")
	rel := raftstore.Path("users")
	sysBefore, acmeBefore := chainLen(t, store, []byte(tenancy.SystemChain)), chainLen(t, store, []byte("tenant:acme"))
	res, err := ops.Apply(ctx, &tenancy.Txn{
		Ops:       []raftstore.Op{{Kind: raftstore.OpPut, Bucket: rel, Key: []byte("op_1"), Value: []byte("v")}},
		SystemOps: []raftstore.Op{sys.Put("refresh/x", nil)},
		Audit:     [][]byte{[]byte(`{"action":"user.create"}`)},
	})
	if err != nil || !res.Applied {
		t.Fatalf("apply: %v %+v", err, res)
	}
	if got := chainLen(t, store, []byte(tenancy.SystemChain)); got != sysBefore+1 {
		t.Fatalf("system chain %d entries, want %d", got, sysBefore+1)
	}
	if got := chainLen(t, store, []byte("tenant:acme")); got != acmeBefore {
		t.Fatalf("a tenant's chain grew: %d", got)
	}
	var got []byte
	var exists, entry bool
	if err := ops.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		got, _, _ = r.Get(rel, []byte("op_1"))
		exists = r.Exists()
		_, entry = r.Entry()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if string(got) != "v" || !exists || entry {
		t.Fatalf("read %q, exists %v, registry entry %v", got, exists, entry)
	}
	// A tenant's scope does not see it at the same relative path.
	_ = b.Scope("acme").View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		if _, _, ok := r.Get(rel, []byte("op_1")); ok {
			t.Error("a tenant reads the operators' realm")
		}
		return nil
	})
	// A write of another system bucket than a component's, or a prune,
	// is refused and nothing is applied.
	for _, bad := range []*tenancy.Txn{
		{SystemOps: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("sys", "tenants"), Key: []byte("acme"), Value: nil}}},
		{Ops: []raftstore.Op{{Kind: raftstore.OpPruneChain, Bucket: rel}}},
		{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Key: []byte("k")}}},
	} {
		if _, err := ops.Apply(ctx, bad); !errors.Is(err, tenancy.ErrOutOfScope) {
			t.Errorf("%+v: %v, want ErrOutOfScope", bad, err)
		}
	}
	if got := chainLen(t, store, []byte(tenancy.SystemChain)); got != sysBefore+1 {
		t.Fatalf("a refused transaction appended: %d", got)
	}
}
