package tenants_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/raftstore"
)

// isPrefix reports whether path p is p2 or one of its ancestors, that is
// whether data under p2 is reachable from p.
func isPrefix(p, p2 [][]byte) bool {
	if len(p) == 0 || len(p) > len(p2) {
		return false
	}
	for i := range p {
		if !bytes.Equal(p[i], p2[i]) {
			return false
		}
	}
	return true
}

func scopePaths(sc tenants.Scope) [][][]byte {
	return [][][]byte{
		sc.Path(),
		sc.Path("meta"),
		sc.Path("guests"),
		sc.Path("guests", "records"),
		sc.Path(""),
		sc.Path("tenant:other"),
		sc.Path("sys", "tenants"),
		sc.Path("..", "tenant:b"),
	}
}

func TestScopesNeverOverlap(t *testing.T) {
	svc, _ := newService(t)
	ids := []string{"a1", "a-1", "a11", "ab", "a-b", "abc", "b1", "sys", "tenant", "tenants", "t-abc", "00"}
	for _, a := range ids {
		for _, b := range ids {
			if a == b {
				continue
			}
			for _, pa := range scopePaths(svc.Scope(a)) {
				for _, pb := range scopePaths(svc.Scope(b)) {
					if isPrefix(pa, pb) {
						t.Errorf("scope %q path %q reaches scope %q path %q", a, pa, b, pb)
					}
				}
			}
		}
		for _, p := range scopePaths(svc.Scope(a)) {
			if isPrefix(p, tenants.RegistryPath()) || isPrefix(tenants.RegistryPath(), p) {
				t.Errorf("scope %q path %q overlaps the registry", a, p)
			}
			if string(p[0]) != "tenant:"+a {
				t.Errorf("scope %q path %q is not below its own bucket", a, p)
			}
		}
	}
}

func FuzzScopeIsolation(f *testing.F) {
	f.Add("acme", "acme2", "guests")
	f.Add("a-b", "ab", "")
	f.Add("sys", "tenants", "sys")
	f.Fuzz(func(t *testing.T, a, b, name string) {
		sa, sb := scopeOf(a), scopeOf(b)
		if a == b || !sa.Valid() || !sb.Valid() {
			return
		}
		for _, pa := range [][][]byte{sa.Path(), sa.Path(name), sa.Path(name, name)} {
			for _, pb := range [][][]byte{sb.Path(), sb.Path(name), sb.Path(name, name)} {
				if isPrefix(pa, pb) || isPrefix(pb, pa) {
					t.Fatalf("scopes %q and %q overlap: %q, %q", a, b, pa, pb)
				}
			}
		}
	})
}

// scopeOf builds a Scope without a store: Scope needs none.
func scopeOf(id string) tenants.Scope { return (&tenants.Service{}).Scope(id) }

func TestInvalidScopeFailsClosed(t *testing.T) {
	svc, store := newService(t)
	for _, id := range []string{"", "a", "Bad", "a:b", "x/../y", "tenant:acme"} {
		sc := svc.Scope(id)
		if sc.Valid() || sc.ID() != "" || sc.Path() != nil || sc.Path("guests") != nil {
			t.Errorf("scope of invalid id %q builds paths: %q", id, sc.Path("guests"))
		}
		_, err := store.Apply(ctx(t), &raftstore.Txn{Ops: []raftstore.Op{
			{Kind: raftstore.OpPut, Bucket: sc.Path("guests"), Key: []byte("k"), Value: []byte("v")},
		}})
		if !errors.Is(err, raftstore.ErrInvalidTxn) {
			t.Errorf("write through the scope of %q: %v, want ErrInvalidTxn", id, err)
		}
	}
	var zero tenants.Scope
	if zero.Valid() || zero.Path("x") != nil {
		t.Error("the zero Scope builds paths")
	}
}

func TestScopePathsAreFresh(t *testing.T) {
	sc := scopeOf("acme")
	p := sc.Path("guests")
	p[0][0] = 'X'
	p[1][0] = 'X'
	if got := sc.Path("guests"); string(got[0]) != "tenant:acme" || string(got[1]) != "guests" {
		t.Errorf("modifying a returned path changed the scope: %q", got)
	}
}
