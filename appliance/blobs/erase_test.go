package blobs

import (
	"context"
	"errors"
	"testing"

	"github.com/custos/custos/internal/tenancy"
)

func TestRemoveOps(t *testing.T) {
	e := newEnv(t, "acme")
	ctx := context.Background()
	a := e.put(t, "acme", "s1", data(1, 200<<10))
	b := e.put(t, "acme", "s1", data(2, 10))
	other := e.put(t, "acme", "s2", data(3, 10))
	ids, err := e.svc.SubjectBlobs(ctx, "acme", "s1")
	if err != nil || len(ids) != 2 {
		t.Fatalf("subject blobs %v %v", ids, err)
	}
	ops, conds, n, err := e.svc.RemoveOps(ctx, "acme", append(ids, "nope", a.ID))
	if err != nil || n != 2 || len(conds) != 2 || len(ops) != 6 {
		t.Fatalf("ops %d conds %d n %d %v", len(ops), len(conds), n, err)
	}
	res, err := e.b.Scope("acme").Apply(ctx, &tenancy.Txn{Ops: ops, Conds: conds})
	if err != nil || !res.Applied {
		t.Fatalf("%+v %v", res, err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if _, err := e.readAll("acme", id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after removal: %v", id, err)
		}
	}
	if _, chunks := e.leftovers(t, "acme"); chunks != 1 {
		t.Errorf("chunk buckets left %d, want the other subject's", chunks)
	}
	if got, _ := e.readAll("acme", other.ID); len(got) != 10 {
		t.Errorf("other subject's blob: %d bytes", len(got))
	}
	if ids, _ := e.svc.SubjectBlobs(ctx, "acme", "s1"); len(ids) != 0 {
		t.Errorf("subject blobs left %v", ids)
	}
	if _, _, n, _ := e.svc.RemoveOps(ctx, "acme", []string{a.ID}); n != 0 {
		t.Errorf("second removal found %d", n)
	}
}
