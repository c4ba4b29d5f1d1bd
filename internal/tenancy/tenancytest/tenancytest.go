// Package tenancytest is for tests that look past the tenancy boundary:
// breach and integrity tests that read or tamper with a tenant's raw
// storage, and tests of components that need a tenant to exist without the
// registry service. It spells the on-disk names itself, on purpose: a test
// that goes through it also checks that the boundary still writes where
// existing data lives. Only test files may import it (the boundary's tests
// fail otherwise).
package tenancytest

import (
	"context"
	"testing"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// Path is the raw bucket path ["tenant:<id>", names...].
func Path(tenant string, names ...string) [][]byte {
	return raftstore.Path(append([]string{"tenant:" + tenant}, names...)...)
}

// Registry is the raw path of the tenant registry.
func Registry() [][]byte { return raftstore.Path("sys", "tenants") }

// Chain is the raw name of tenant's audit chain.
func Chain(tenant string) []byte { return []byte("tenant:" + tenant) }

// Register creates tenants through the boundary's registry, with a minimal
// registry value, for tests of components below the registry service.
func Register(tb testing.TB, store tenancy.Store, ids ...string) {
	tb.Helper()
	reg := tenancy.New(store).Registry()
	for _, id := range ids {
		res, err := reg.Create(context.Background(), id, []byte(`{"id":"`+id+`"}`), []byte(`{"test":"register `+id+`"}`), nil)
		if err != nil || !res.Applied {
			tb.Fatalf("register tenant %s: %+v %v", id, res, err)
		}
	}
}
