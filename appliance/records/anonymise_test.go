package records_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
)

// TestAnonymiseOps: a subject's record loses its subject and every value
// not classified internal, its blind-index and subject entries with them,
// and keeps its internal values (sealed again under the tenant's key); a
// record its schema would not admit so (subject required, or a required
// pii field) is left to the caller, unchanged.
func TestAnonymiseOps(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	svc := e.service()
	e.tenant(svc, "acme") // guests: email (pii, indexed, required), n (internal)
	ctx := context.Background()
	def := collections.Definition{Fields: []collections.Field{
		{Name: "email", Type: collections.TypeString, Classification: collections.ClassPII, Index: true},
		{Name: "diagnosis", Type: collections.TypeString, Classification: collections.ClassSensitive},
		{Name: "nights", Type: collections.TypeNumber, Classification: collections.ClassInternal, Index: true},
		{Name: "room", Type: collections.TypeString, Classification: collections.ClassInternal},
	}}
	if _, _, err := e.colls.Put(ctx, custos, "acme", "stays", def, 0); err != nil {
		t.Fatal(err)
	}
	in := records.Input{ID: "s1", Subject: "guest-1", Attributes: map[string]string{"property": "villa-a"}, Fields: map[string]json.RawMessage{
		"email": json.RawMessage(`"jane@acme.example"`), "diagnosis": json.RawMessage(`"flu"`),
		"nights": json.RawMessage(`3`), "room": json.RawMessage(`"12b"`)}}
	if _, err := svc.Create(ctx, custos, "acme", "stays", in); err != nil {
		t.Fatal(err)
	}
	g := records.Input{ID: "g2", Subject: "guest-1", Fields: map[string]json.RawMessage{"email": json.RawMessage(`"jane@acme.example"`), "n": json.RawMessage(`1`)}}
	if _, err := svc.Create(ctx, custos, "acme", "guests", g); err != nil {
		t.Fatal(err)
	}

	items := []records.Held{{Collection: "stays", ID: "s1"}, {Collection: "guests", ID: "g2"}, {Collection: "stays", ID: "gone"}}
	ops, conds, n, unable, err := svc.AnonymiseOps(ctx, "acme", items)
	if err != nil || n != 1 || !slices.Equal(unable, []records.Held{{Collection: "guests", ID: "g2"}}) {
		t.Fatalf("AnonymiseOps: n %d, unable %v, %v; want 1 and guests/g2 (its email is required)", n, unable, err)
	}
	if res, err := e.b.Scope("acme").Apply(ctx, &tenancy.Txn{Ops: ops, Conds: conds}); err != nil || !res.Applied {
		t.Fatalf("apply: %+v %v", res, err)
	}

	got, err := svc.Get(ctx, custos, "acme", "stays", "s1", false)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "" || got.Version != 2 || got.Attributes["property"] != "villa-a" ||
		len(got.Fields) != 2 || string(got.Fields["nights"]) != `3` || string(got.Fields["room"]) != `"12b"` {
		t.Fatalf("anonymised record: %+v", got)
	}
	if ids, _, err := svc.Find(ctx, custos, "acme", "stays", "email", json.RawMessage(`"jane@acme.example"`), "", 10); err != nil || len(ids) != 0 {
		t.Errorf("find by the dropped email: %v, %v", ids, err)
	}
	if ids, _, err := svc.Find(ctx, custos, "acme", "stays", "nights", json.RawMessage(`3`), "", 10); err != nil || !slices.Equal(ids, []string{"s1"}) {
		t.Errorf("find by the kept nights: %v, %v", ids, err)
	}
	if held, err := svc.Holdings(ctx, "acme", "guest-1"); err != nil || !slices.Equal(held, []records.Held{{Collection: "guests", ID: "g2"}}) {
		t.Errorf("guest-1 holds %v, %v; want only guests/g2", held, err)
	}
	// The tenant's key opens what is left: shredding guest-1's key
	// leaves it readable.
	if err := e.keys.Shred(ctx, custos, "acme", "guest-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, custos, "acme", "stays", "s1", false); err != nil {
		t.Errorf("after guest-1's key is shredded: %v", err)
	}
	if _, err := svc.Get(ctx, custos, "acme", "guests", "g2", false); !errors.Is(err, records.ErrIntegrity) {
		t.Errorf("guests/g2 after the shred: %v, want an integrity error", err)
	}
}
