package audit_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

// TestListFilterBytes: List skips decoding entries whose bytes cannot
// match an action or target filter, and still returns exactly the
// entries the filter matches — with actions that are prefixes of one
// another, and targets and details that spell another entry's action
// or target inside a string value (where the encoding escapes quotes).
func TestListFilterBytes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	entries := []audit.Entry{
		{Action: "record.read", Target: "record:guests/r1"},
		{Action: "record.readx", Target: "record:guests/r1x"},
		{Action: "record.read.bulk", Target: "record:guests/r2"},
		{Action: "cluster.join", Target: "node:n2"},
		{Action: "tenant.create", Target: `x","action":"cluster.join"`},
		{Action: "tenant.create", Target: "tenant:acme", Details: map[string]string{"note": `"action":"record.read","target":"record:guests/r1"`}},
		{Action: "backup.taken", Target: "backup:b1"},
		{Action: "record.read", Target: "record:guests/r1\"quoted"},
	}
	txn := &raftstore.Txn{}
	for i, en := range entries {
		en.Time = base.Add(time.Duration(i) * time.Second)
		en.Actor = audit.Actor{Type: audit.ActorUser, ID: "u-1"}
		en.Outcome = audit.OutcomeSuccess
		entries[i] = en
		a, err := audit.Record("tenant:acme", en)
		if err != nil {
			t.Fatal(err)
		}
		txn.Appends = append(txn.Appends, a)
	}
	if res, err := e.store.Apply(ctx, txn); err != nil || !res.Applied {
		t.Fatalf("append: %+v %v", res, err)
	}
	for _, f := range []audit.Filter{
		{Action: "record.read"}, {Action: "record.readx"}, {Action: "record."}, {Action: "record.read."},
		{Action: "cluster."}, {Action: "cluster.join"}, {Action: "backup.taken"}, {Action: "nothing."},
		{Target: "record:guests/r1"}, {Action: "record.read", Target: "record:guests/r1"},
		{Action: "tenant.create", Target: "tenant:acme"}, {Target: "record:guests/r1\"quoted"},
	} {
		items, _, err := e.svc.List(ctx, raftstore.Linearizable, "tenant:acme", f, 0, 100)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		var got, want []uint64
		for _, it := range items {
			got = append(got, it.Seq)
		}
		for i, en := range entries {
			action := f.Action == "" || en.Action == f.Action || strings.HasSuffix(f.Action, ".") && strings.HasPrefix(en.Action, f.Action)
			if action && (f.Target == "" || en.Target == f.Target) {
				want = append(want, uint64(i+1))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%+v: entries %v, want %v", f, got, want)
		}
	}
}
