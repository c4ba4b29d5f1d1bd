package audit_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

// ListBefore pages newest first through the same entries List gives
// oldest first, with and without a filter, from the end or a cursor.
func TestListBefore(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.fill("tenant:acme", 0, 40, "")
	for _, f := range []audit.Filter{{}, {Action: "record.write"}, {Target: "guests/r7"}, {Actor: "nobody"}} {
		all, _, err := e.svc.List(ctx, raftstore.Linearizable, "tenant:acme", f, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		before := uint64(0)
		for pages := 0; ; pages++ {
			items, next, err := e.svc.ListBefore(ctx, raftstore.Linearizable, "tenant:acme", f, before, 6)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				got = append(got, it.Seq)
			}
			if next == 0 {
				break
			}
			if next >= before && before != 0 || pages > 40 {
				t.Fatalf("cursor %d after %d", next, before)
			}
			before = next
		}
		var want []uint64
		for _, it := range all {
			want = append(want, it.Seq)
		}
		slices.Reverse(want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%+v: newest first %v, want %v", f, got, want)
		}
	}
}
