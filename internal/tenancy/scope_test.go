package tenancy

import (
	"bytes"
	"testing"

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

// scopePaths are the absolute paths a scope builds from relative ones
// (including hostile names), and its own bucket (what its chain and its
// deletion name).
func scopePaths(t *testing.T, sc Scope) [][][]byte {
	t.Helper()
	out := [][][]byte{{sc.root}}
	for _, rel := range [][]string{{"meta"}, {"guests"}, {"guests", "records"}, {""}, {"tenant:other"}, {"sys", "tenants"}, {"..", "tenant:b"}} {
		p, err := sc.abs(raftstore.Path(rel...))
		if err != nil {
			t.Fatalf("scope %q: path %q: %v", sc.id, rel, err)
		}
		out = append(out, p)
	}
	return out
}

// scopeOf builds a Scope without a store: building paths needs none.
func scopeOf(id string) Scope { return (&Boundary{}).Scope(id) }

func TestScopesNeverOverlap(t *testing.T) {
	ids := []string{"a1", "a-1", "a11", "ab", "a-b", "abc", "b1", "sys", "tenant", "tenants", "t-abc", "00"}
	for _, a := range ids {
		for _, b := range ids {
			if a == b {
				continue
			}
			for _, pa := range scopePaths(t, scopeOf(a)) {
				for _, pb := range scopePaths(t, scopeOf(b)) {
					if isPrefix(pa, pb) {
						t.Errorf("scope %q path %q reaches scope %q path %q", a, pa, b, pb)
					}
				}
			}
		}
		for _, p := range scopePaths(t, scopeOf(a)) {
			if isPrefix(p, registryPath) || isPrefix(registryPath, p) {
				t.Errorf("scope %q path %q overlaps the registry", a, p)
			}
			if isPrefix(p, SystemOf("keyring").path) || string(p[0]) == sysBucket {
				t.Errorf("scope %q path %q reaches a system bucket", a, p)
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
		if a == b || sa.root == nil || sb.root == nil {
			return
		}
		paths := func(sc Scope) [][][]byte {
			out := [][][]byte{{sc.root}}
			for _, rel := range [][][]byte{raftstore.Path(name), raftstore.Path(name, name)} {
				p, err := sc.abs(rel)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, p)
			}
			return out
		}
		for _, pa := range paths(sa) {
			for _, pb := range paths(sb) {
				if isPrefix(pa, pb) || isPrefix(pb, pa) {
					t.Fatalf("scopes %q and %q overlap: %q, %q", a, b, pa, pb)
				}
			}
		}
		if ChainOf(a) == ChainOf(b) || ChainOf(a) == SystemChain {
			t.Fatalf("scopes %q and %q share a chain", a, b)
		}
	})
}

func TestInvalidScopeBuildsNoPath(t *testing.T) {
	for _, id := range []string{"", "a", "Bad", "a:b", "x/../y", "tenant:acme", "sys/tenants"} {
		sc := scopeOf(id)
		if sc.Valid() || sc.ID() != "" || sc.root != nil {
			t.Errorf("scope of invalid id %q is valid", id)
		}
		if p, err := sc.abs(raftstore.Path("guests")); err == nil || p != nil {
			t.Errorf("scope of invalid id %q builds path %q", id, p)
		}
		if ChainOf(id) != "" {
			t.Errorf("invalid id %q has chain %q", id, ChainOf(id))
		}
	}
	var zero Scope
	if zero.Valid() {
		t.Error("the zero Scope is valid")
	}
	if p, err := zero.abs(raftstore.Path("x")); err == nil || p != nil {
		t.Error("the zero Scope builds paths")
	}
}

func TestScopePathsAreFresh(t *testing.T) {
	sc := scopeOf("acme")
	p, _ := sc.abs(raftstore.Path("guests"))
	p[0][0] = 'X'
	if got, _ := sc.abs(raftstore.Path("guests")); string(got[0]) != "tenant:acme" || string(got[1]) != "guests" {
		t.Errorf("modifying a returned path changed the scope: %q", got)
	}
}

// The names the boundary hands out are the on-disk names existing data
// lives under.
func TestNames(t *testing.T) {
	if c := ChainOf("acme"); c != "tenant:acme" {
		t.Errorf("chain %q", c)
	}
	if id, ok := TenantOfChain("tenant:acme"); !ok || id != "acme" {
		t.Errorf("tenant of chain: %q %v", id, ok)
	}
	for _, c := range []string{SystemChain, "tenant:", "tenant:Bad", "tenants:acme", "cp:tenant:acme"} {
		if id, ok := TenantOfChain(c); ok {
			t.Errorf("chain %q names tenant %q", c, id)
		}
	}
	if SystemChain != "system" || AuditTarget("acme") != "tenant:acme" {
		t.Error("system chain or audit target renamed")
	}
	if string(registryPath[0]) != "sys" || string(registryPath[1]) != "tenants" || len(registryPath) != 2 {
		t.Errorf("registry at %q", registryPath)
	}
	if p := SystemOf("keyring").Put("k", nil).Bucket; len(p) != 2 || string(p[0]) != "sys" || string(p[1]) != "keyring" {
		t.Errorf("keyring's system bucket at %q", p)
	}
	for _, bad := range []string{"tenants", "", "a/b", "tenant:acme", "Keys"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SystemOf(%q) did not panic", bad)
				}
			}()
			SystemOf(bad)
		}()
	}
}

// TestOperatorsRealmOverlapsNoTenant: the operators' realm builds paths
// only below its own top-level bucket, which no tenant's scope, the
// registry or a component's system bucket reaches, and no tenant's path
// reaches it.
func TestOperatorsRealmOverlapsNoTenant(t *testing.T) {
	ops := (&Boundary{}).Operators()
	if !ops.Valid() || !ops.IsOperators() || ops.ID() != "" || string(ops.chain()) != SystemChain {
		t.Fatalf("operators realm: valid %v, operators %v, id %q, chain %q", ops.Valid(), ops.IsOperators(), ops.ID(), ops.chain())
	}
	if scopeOf("acme").IsOperators() || (Scope{}).IsOperators() {
		t.Fatal("a tenant's or the zero scope says it is the operators' realm")
	}
	for _, p := range scopePaths(t, ops) {
		if string(p[0]) != operatorsBucket {
			t.Errorf("operators path %q is not below its bucket", p)
		}
		if isPrefix(p, registryPath) || isPrefix(registryPath, p) || isPrefix(p, SystemOf("identity").path) {
			t.Errorf("operators path %q overlaps the registry or a system bucket", p)
		}
		for _, id := range []string{"operators", "op", "sys", "tenant"} {
			for _, pt := range scopePaths(t, scopeOf(id)) {
				if isPrefix(p, pt) || isPrefix(pt, p) {
					t.Errorf("operators path %q and tenant %q path %q overlap", p, id, pt)
				}
			}
		}
	}
}
