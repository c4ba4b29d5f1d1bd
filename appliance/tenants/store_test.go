package tenants_test

import (
	"context"
	"errors"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/raftstore"
)

// TestScopedStore: a tenant's store writes and reads only below the
// tenant's bucket, appends only to its chain, writes nothing for a tenant
// that does not exist, and a malformed id reaches nothing at all.
func TestScopedStore(t *testing.T) {
	svc, store := newService(t)
	ctx := context.Background()
	for _, id := range []string{"acme", "globex"} {
		if _, err := svc.Create(ctx, tenants.Actor{Name: "operator"}, tenants.CreateInput{ID: id, DisplayName: id}); err != nil {
			t.Fatal(err)
		}
	}
	stores := tenants.NewStores(store)
	acme, globex := stores.Of("acme"), stores.Of("globex")
	rel := raftstore.Path("things")
	put := func(s tenants.Scoped, v string) error {
		res, err := s.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: rel, Key: []byte("k"), Value: []byte(v)}}})
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
		s    tenants.Scoped
		want string
	}{{acme, "acme's"}, {globex, "globex's"}} {
		var got []byte
		if err := c.s.View(ctx, raftstore.Linearizable, func(r tenants.Read) error {
			got, _, _ = r.Get(rel, []byte("k"))
			if !r.Exists() || r.Count(rel) != 1 {
				t.Errorf("%s: exists %v, count %d", c.s.Tenant(), r.Exists(), r.Count(rel))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Fatalf("%s reads %q, want %q", c.s.Tenant(), got, c.want)
		}
		var raw []byte
		_ = store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
			raw, _, _ = r.Get(tenants.ScopeOf(c.s.Tenant()).Path("things"), []byte("k"))
			return nil
		})
		if string(raw) != c.want {
			t.Fatalf("raw %s: %q", c.s.Tenant(), raw)
		}
	}
	// An append to another tenant's chain, or the system chain, is refused
	// and nothing of the transaction is applied.
	for _, chain := range []string{audit.TenantChain("globex"), tenants.AuditChain} {
		e, err := audit.Record(chain, audit.System().Entry(fixedTime, "x", "y", audit.OutcomeSuccess, nil))
		if err != nil {
			t.Fatal(err)
		}
		_, err = acme.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: rel, Key: []byte("k"), Value: []byte("evil")}}, Appends: []raftstore.Append{e}})
		if !errors.Is(err, tenants.ErrOutOfScope) {
			t.Fatalf("append to %s through acme's store: %v", chain, err)
		}
	}
	// A tenant that does not exist gets nothing written; a malformed id
	// reaches nothing; an empty path is refused.
	if res, err := stores.Of("nobody").Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: rel, Key: []byte("k"), Value: []byte("v")}}}); err != nil || res.Applied {
		t.Fatalf("write for a missing tenant: %+v %v", res, err)
	}
	for _, bad := range []string{"", "../acme", "tenant:acme", "sys/tenants"} {
		if err := put(stores.Of(bad), "v"); err == nil {
			t.Fatalf("write through the store of %q", bad)
		}
		if err := stores.Of(bad).View(ctx, raftstore.Stale, func(tenants.Read) error { return nil }); err == nil {
			t.Fatalf("read through the store of %q", bad)
		}
	}
	if _, err := acme.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Key: []byte("k"), Value: []byte("v")}}}); !errors.Is(err, tenants.ErrOutOfScope) {
		t.Fatalf("empty bucket path: %v", err)
	}
	var got []byte
	_ = acme.View(ctx, raftstore.Linearizable, func(r tenants.Read) error {
		got, _, _ = r.Get(rel, []byte("k"))
		return nil
	})
	if string(got) != "acme's" {
		t.Fatalf("acme's value after refused writes: %q", got)
	}
}
