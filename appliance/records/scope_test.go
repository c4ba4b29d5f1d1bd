package records_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
)

// TestAttributeScopes: a principal scoped to property=villa-a reads,
// finds, lists and looks up by subject only villa-a's records; villa-b's
// (and one without the attribute) answer exactly as a missing record
// does; it cannot create a record outside its scope, move one out of it,
// or change or delete one outside it. The unscoped principal sees all
// (the check is not blind).
func TestAttributeScopes(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	svc := e.service()
	ctx := context.Background()
	e.tenant(svc, "acme")
	put := func(id, prop string) {
		t.Helper()
		in := records.Input{ID: id, Subject: "s1", Fields: map[string]json.RawMessage{"email": json.RawMessage(`"same@x.example"`)}}
		if prop != "" {
			in.Attributes = map[string]string{"property": prop}
		}
		if _, err := svc.Create(ctx, custos, "acme", "guests", in); err != nil {
			t.Fatal(err)
		}
	}
	put("a1", "villa-a")
	put("a2", "villa-a")
	put("b1", "villa-b")
	// g1 (from e.tenant) has no attributes.
	scoped := audit.Principal{Kind: audit.ActorAPIKey, ID: "k-a", Tenant: "acme", Scopes: map[string][]string{"property": {"villa-a"}}}
	both := audit.Principal{Kind: audit.ActorAPIKey, ID: "k-ab", Tenant: "acme", Scopes: map[string][]string{"property": {"villa-a", "villa-b"}}}
	unscoped := audit.Principal{Kind: audit.ActorAPIKey, ID: "k", Tenant: "acme"}

	for _, c := range []struct {
		who  audit.Principal
		want []string
	}{{scoped, []string{"a1", "a2"}}, {both, []string{"a1", "a2", "b1"}}, {unscoped, []string{"a1", "a2", "b1", "g1"}}} {
		ids, _, err := svc.List(ctx, c.who, "acme", "guests", "", "", "", 100)
		if err != nil || !slices.Equal(ids, c.want) {
			t.Errorf("%s: list %v %v, want %v", c.who.ID, ids, err, c.want)
		}
		ids, _, err = svc.Find(ctx, c.who, "acme", "guests", "email", json.RawMessage(`"same@x.example"`), "", 100)
		if want := slices.DeleteFunc(slices.Clone(c.want), func(s string) bool { return s == "g1" }); err != nil || !slices.Equal(ids, want) {
			t.Errorf("%s: find %v %v, want %v", c.who.ID, ids, err, want)
		}
		held, err := svc.Subject(ctx, c.who, "acme", "s1")
		var got []string
		for _, h := range held {
			got = append(got, h.ID)
		}
		if want := slices.DeleteFunc(slices.Clone(c.want), func(s string) bool { return s == "g1" }); err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: subject %v %v, want %v", c.who.ID, got, err, want)
		}
		for _, id := range []string{"a1", "b1", "g1"} {
			_, err := svc.Get(ctx, c.who, "acme", "guests", id, false)
			if visible := slices.Contains(c.want, id); (err == nil) != visible || (!visible && !errors.Is(err, records.ErrNotFound)) {
				t.Errorf("%s: get %s: %v (visible %v)", c.who.ID, id, err, visible)
			}
			_, ok, err := svc.Attributes(ctx, c.who, "acme", "guests", id)
			if err != nil || ok != slices.Contains(c.want, id) {
				t.Errorf("%s: attributes of %s: %v %v", c.who.ID, id, ok, err)
			}
		}
	}
	// By attribute: villa-b's list is empty for the scoped principal.
	if ids, _, err := svc.List(ctx, scoped, "acme", "guests", "property", "villa-b", "", 100); err != nil || len(ids) != 0 {
		t.Errorf("list by villa-b: %v %v", ids, err)
	}
	// A subject with only out-of-scope records answers as an unknown one.
	put("b2", "villa-b")
	if _, err := svc.Create(ctx, custos, "acme", "guests", records.Input{ID: "b3", Subject: "s2", Attributes: map[string]string{"property": "villa-b"},
		Fields: map[string]json.RawMessage{"email": json.RawMessage(`"b@x.example"`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Subject(ctx, scoped, "acme", "s2"); !errors.Is(err, records.ErrNotFound) {
		t.Errorf("subject of villa-b only: %v", err)
	}

	// Writes.
	fields := map[string]json.RawMessage{"email": json.RawMessage(`"new@x.example"`)}
	if _, err := svc.Create(ctx, scoped, "acme", "guests", records.Input{ID: "a3", Attributes: map[string]string{"property": "villa-a"}, Fields: fields}); err != nil {
		t.Errorf("create in scope: %v", err)
	}
	for name, in := range map[string]records.Input{
		"outside":    {ID: "x1", Attributes: map[string]string{"property": "villa-b"}, Fields: fields},
		"unlabelled": {ID: "x2", Fields: fields},
	} {
		if _, err := svc.Create(ctx, scoped, "acme", "guests", in); !errors.Is(err, tenancy.ErrRestricted) {
			t.Errorf("create %s: %v, want ErrRestricted", name, err)
		}
	}
	if _, err := svc.Patch(ctx, scoped, "acme", "guests", "a3", records.Input{Attributes: map[string]string{"property": "villa-b"}}, false, true, 0); !errors.Is(err, tenancy.ErrRestricted) {
		t.Errorf("move out of scope: %v, want ErrRestricted", err)
	}
	if _, err := svc.Patch(ctx, scoped, "acme", "guests", "a3", records.Input{Fields: map[string]json.RawMessage{"email": json.RawMessage(`"z@x.example"`)}}, false, false, 0); err != nil {
		t.Errorf("patch in scope: %v", err)
	}
	if _, err := svc.Patch(ctx, scoped, "acme", "guests", "b1", records.Input{Attributes: map[string]string{"property": "villa-a"}}, false, true, 0); !errors.Is(err, records.ErrNotFound) {
		t.Errorf("patch outside: %v, want ErrNotFound", err)
	}
	if _, err := svc.Replace(ctx, scoped, "acme", "guests", "b1", records.Input{Attributes: map[string]string{"property": "villa-a"}, Fields: fields}, 0); !errors.Is(err, records.ErrNotFound) {
		t.Errorf("replace outside: %v, want ErrNotFound", err)
	}
	if err := svc.Delete(ctx, scoped, "acme", "guests", "b1"); !errors.Is(err, records.ErrNotFound) {
		t.Errorf("delete outside: %v, want ErrNotFound", err)
	}
	if rec, err := svc.Get(ctx, custos, "acme", "guests", "b1", false); err != nil || rec.Attributes["property"] != "villa-b" || rec.Version != 1 {
		t.Errorf("b1 after the refused writes: %+v %v", rec, err)
	}
	if err := svc.Delete(ctx, scoped, "acme", "guests", "a3"); err != nil {
		t.Errorf("delete in scope: %v", err)
	}
}
