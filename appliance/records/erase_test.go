package records_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// refTenant makes tenant t with guests (from e.tenant), notes (a ref to a
// guest that is erased with it) and bookings (a ref detached).
func (e *env) refTenant(svc *records.Service, t string) {
	e.t.Helper()
	e.tenant(svc, t)
	ctx := context.Background()
	for name, onErase := range map[string]string{"notes": collections.OnEraseErase, "bookings": ""} {
		def := collections.Definition{Fields: []collections.Field{
			{Name: "guest", Type: collections.TypeRef, Collection: "guests", OnErase: onErase, Classification: collections.ClassInternal, Index: true},
			{Name: "text", Type: collections.TypeString, Classification: collections.ClassPII, Index: true},
		}}
		if _, _, err := e.colls.Put(ctx, custos, t, name, def, 0); err != nil {
			e.t.Fatal(err)
		}
	}
}

// apply applies a piece through the tenant's scope.
func (e *env) apply(t string, p records.Piece) {
	e.t.Helper()
	res, err := e.b.Scope(t).Apply(context.Background(), &tenancy.Txn{Ops: p.Ops, Conds: p.Conds})
	if err != nil || !res.Applied {
		e.t.Fatalf("apply: %+v %v", res, err)
	}
}

func TestRefFieldsValidateAndIndex(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	svc := e.service()
	e.refTenant(svc, "acme")
	ctx := context.Background()
	for _, bad := range []string{`12`, `"has space"`, `""`, `"a/b"`} {
		_, err := svc.Create(ctx, custos, "acme", "notes", records.Input{Fields: map[string]json.RawMessage{"guest": json.RawMessage(bad)}})
		if !errors.Is(err, validation.ErrInvalid) {
			t.Errorf("ref %s: %v, want invalid", bad, err)
		}
	}
	for i := range 3 {
		in := records.Input{ID: fmt.Sprintf("n%d", i), Fields: map[string]json.RawMessage{"guest": json.RawMessage(`"g1"`), "text": json.RawMessage(`"hello"`)}}
		if _, err := svc.Create(ctx, custos, "acme", "notes", in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Create(ctx, custos, "acme", "bookings", records.Input{ID: "b1", Fields: map[string]json.RawMessage{"guest": json.RawMessage(`"g1"`)}}); err != nil {
		t.Fatal(err)
	}
	refs, err := svc.Referrers(ctx, "acme", []records.Held{{Collection: "guests", ID: "g1"}})
	if err != nil || len(refs) != 4 {
		t.Fatalf("referrers %+v %v", refs, err)
	}
	if refs[0] != (records.Referrer{Collection: "bookings", ID: "b1", Field: "guest", OnErase: collections.OnEraseDetach, Target: records.Held{Collection: "guests", ID: "g1"}}) || refs[1].OnErase != collections.OnEraseErase {
		t.Fatalf("referrers %+v", refs)
	}
	// A patch moving the ref moves its entry; a delete removes it.
	if _, err := svc.Patch(ctx, custos, "acme", "notes", "n0", records.Input{Fields: map[string]json.RawMessage{"guest": json.RawMessage(`"g2"`)}}, false, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, custos, "acme", "notes", "n1"); err != nil {
		t.Fatal(err)
	}
	refs, _ = svc.Referrers(ctx, "acme", []records.Held{{Collection: "guests", ID: "g1"}})
	if len(refs) != 2 {
		t.Fatalf("after patch and delete: %+v", refs)
	}
	if refs2, _ := svc.Referrers(ctx, "acme", []records.Held{{Collection: "guests", ID: "g2"}}); len(refs2) != 1 || refs2[0].ID != "n0" {
		t.Fatalf("g2 referrers %+v", refs2)
	}
}

func TestRemovePiecesAndDetach(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	svc := e.service()
	e.refTenant(svc, "acme")
	ctx := context.Background()
	var items []records.Held
	for i := range 50 {
		id := fmt.Sprintf("n%02d", i)
		in := records.Input{ID: id, Subject: "s1", Fields: map[string]json.RawMessage{"guest": json.RawMessage(`"g1"`), "text": json.RawMessage(`"t` + id + `"`)}}
		if _, err := svc.Create(ctx, custos, "acme", "notes", in); err != nil {
			t.Fatal(err)
		}
		items = append(items, records.Held{Collection: "notes", ID: id})
	}
	if _, err := svc.Create(ctx, custos, "acme", "bookings", records.Input{ID: "b1", Fields: map[string]json.RawMessage{"guest": json.RawMessage(`"g1"`), "text": json.RawMessage(`"keep"`)}}); err != nil {
		t.Fatal(err)
	}
	items = append(items, records.Held{Collection: "notes", ID: "missing"}, records.Held{Collection: "notes", ID: "n00"})
	pieces, err := svc.RemovePieces(ctx, "acme", items, 40)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range pieces {
		if p.Items() > 40 {
			t.Fatalf("piece of %d items", p.Items())
		}
		n += p.N
		e.apply("acme", p)
	}
	if n != 50 || len(pieces) < 2 {
		t.Fatalf("removed %d in %d pieces", n, len(pieces))
	}
	if _, err := svc.Subject(ctx, custos, "acme", "s1"); !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("subject after removal: %v", err)
	}
	ids, _, err := svc.Find(ctx, custos, "acme", "notes", "text", json.RawMessage(`"tn07"`), "", 10)
	if err != nil || len(ids) != 0 {
		t.Fatalf("find after removal: %v %v", ids, err)
	}
	// Run again: nothing left to remove.
	if ops, conds, n, err := svc.RemoveOps(ctx, "acme", items); err != nil || n != 0 || len(ops)+len(conds) != 0 {
		t.Fatalf("second removal: %d %d %d %v", len(ops), len(conds), n, err)
	}
	refs, err := svc.Referrers(ctx, "acme", []records.Held{{Collection: "guests", ID: "g1"}})
	if err != nil || len(refs) != 1 || refs[0].ID != "b1" {
		t.Fatalf("referrers left %+v %v", refs, err)
	}
	dp, err := svc.DetachPieces(ctx, "acme", refs, 100)
	if err != nil || len(dp) != 1 || dp[0].N != 1 {
		t.Fatalf("detach %+v %v", dp, err)
	}
	e.apply("acme", dp[0])
	rec, err := svc.Get(ctx, custos, "acme", "bookings", "b1", false)
	if err != nil || rec.Version != 2 || rec.Fields["guest"] != nil || string(rec.Fields["text"]) != `"keep"` {
		t.Fatalf("detached %+v %v", rec, err)
	}
	if ids, _, err := svc.Find(ctx, custos, "acme", "bookings", "text", json.RawMessage(`"keep"`), "", 10); err != nil || len(ids) != 1 {
		t.Fatalf("index of the detached record: %v %v", ids, err)
	}
	if refs, _ := svc.Referrers(ctx, "acme", []records.Held{{Collection: "guests", ID: "g1"}}); len(refs) != 0 {
		t.Fatalf("referrers after detach %+v", refs)
	}
}

// TestRemoveWithoutKey removes records whose values do not open (their
// subject's key was shredded): the envelope names the index entries.
func TestRemoveWithoutKey(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	svc := e.service()
	e.refTenant(svc, "acme")
	ctx := context.Background()
	in := records.Input{ID: "x", Subject: "s9", Fields: map[string]json.RawMessage{"guest": json.RawMessage(`"g1"`), "text": json.RawMessage(`"secret"`)}}
	if _, err := svc.Create(ctx, custos, "acme", "notes", in); err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Shred(ctx, custos, "acme", "s9"); err != nil {
		t.Fatal(err)
	}
	pieces, err := svc.RemovePieces(ctx, "acme", []records.Held{{Collection: "notes", ID: "x"}}, raftstore.MaxTxnItems)
	if err != nil || len(pieces) != 1 {
		t.Fatalf("%+v %v", pieces, err)
	}
	// envelope, subject entry, ref entry, two index entries; one condition.
	if len(pieces[0].Ops) != 5 {
		t.Fatalf("ops %+v", pieces[0].Ops)
	}
	e.apply("acme", pieces[0])
	err = e.b.Scope("acme").View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		for _, f := range []string{"guest", "text"} {
			if n := r.Count(raftstore.Path("index", "notes", f)); n != 0 {
				t.Errorf("index %s holds %d", f, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
