package blobs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
)

// villaRecords: record r-a is villa-a's, r-b villa-b's; a caller sees a
// record only inside its scope, as records.Service answers.
type villaRecords struct{}

func (villaRecords) Attributes(_ context.Context, caller audit.Principal, _, _, id string) (map[string]string, bool, error) {
	attrs := map[string]map[string]string{"r-a": {"property": "villa-a"}, "r-b": {"property": "villa-b"}}[id]
	if attrs == nil || !caller.Restriction().Allows(attrs) {
		return nil, false, nil
	}
	return attrs, true, nil
}

// TestAttributeScopes: blobs carry attributes (given, or inherited from
// their record); a principal scoped to property=villa-a opens, reads,
// lists, looks up by subject and deletes only villa-a's blobs — villa-b's
// answer exactly as a missing blob — and cannot upload a blob outside its
// scope or link one to a record outside it. The unscoped principal sees
// all (the check is not blind).
func TestAttributeScopes(t *testing.T) {
	e := newEnv(t, "acme")
	e.svc.records = villaRecords{}
	ctx := context.Background()
	scoped := audit.Principal{Kind: audit.ActorAPIKey, ID: "k-a", Tenant: "acme", Role: "concierge", Scopes: map[string][]string{"property": {"villa-a"}}}
	put := func(who audit.Principal, in Input) (Blob, error) {
		in.Subject, in.ContentType, in.Length = "s1", "text/plain", 3
		return e.svc.Put(ctx, who, "acme", in, bytes.NewReader([]byte("abc")))
	}
	must := func(b Blob, err error) Blob {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := must(put(custos, Input{Attributes: map[string]string{"property": "villa-a"}}))
	b := must(put(custos, Input{Attributes: map[string]string{"property": "villa-b"}}))
	n := must(put(custos, Input{})) // no attributes
	ra := must(put(custos, Input{Collection: "guests", Record: "r-a"}))
	rb := must(put(custos, Input{Collection: "guests", Record: "r-b"}))
	own := must(put(custos, Input{Collection: "guests", Record: "r-b", Attributes: map[string]string{"property": "villa-a"}}))
	if ra.Attributes["property"] != "villa-a" || rb.Attributes["property"] != "villa-b" || own.Attributes["property"] != "villa-a" {
		t.Fatalf("inherited attributes: %v %v %v", ra.Attributes, rb.Attributes, own.Attributes)
	}
	visible := []string{a.ID, ra.ID, own.ID}
	for _, c := range []struct {
		who  audit.Principal
		want []string
	}{{scoped, visible}, {custos, []string{a.ID, b.ID, n.ID, ra.ID, rb.ID, own.ID}}} {
		want := slices.Sorted(slices.Values(c.want))
		list, _, err := e.svc.List(ctx, c.who, "acme", "", "", 100)
		if err != nil || !slices.Equal(ids(list), want) {
			t.Errorf("%s: list %v %v, want %v", c.who.ID, ids(list), err, want)
		}
		sub, err := e.svc.Subject(ctx, c.who, "acme", "s1")
		if err != nil || !slices.Equal(ids(sub), want) {
			t.Errorf("%s: subject %v %v, want %v", c.who.ID, ids(sub), err, want)
		}
		for _, id := range []string{a.ID, b.ID, n.ID, rb.ID} {
			in := slices.Contains(c.want, id)
			content, err := e.svc.Open(ctx, c.who, "acme", id)
			if (err == nil) != in || (!in && !errors.Is(err, ErrNotFound)) {
				t.Errorf("%s: open %s: %v (in scope %v)", c.who.ID, id, err, in)
				continue
			}
			if in {
				r, err := content.Reader(ctx, c.who, 0, content.Size, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				if err != nil || string(got) != "abc" {
					t.Errorf("%s: read %s: %q %v", c.who.ID, id, got, err)
				}
			}
		}
	}
	// A page of one, through the filter: every visible blob, page by page.
	var paged []string
	for after := ""; ; {
		page, next, err := e.svc.List(ctx, scoped, "acme", "", after, 1)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, ids(page)...)
		if next == "" {
			break
		}
		after = next
	}
	if want := slices.Sorted(slices.Values(visible)); !slices.Equal(paged, want) {
		t.Errorf("paged: %v, want %v", paged, want)
	}
	// Writes.
	if _, err := put(scoped, Input{Attributes: map[string]string{"property": "villa-a"}}); err != nil {
		t.Errorf("upload in scope: %v", err)
	}
	if _, err := put(scoped, Input{Collection: "guests", Record: "r-a"}); err != nil {
		t.Errorf("upload linked in scope: %v", err)
	}
	for name, in := range map[string]Input{
		"outside":    {Attributes: map[string]string{"property": "villa-b"}},
		"unlabelled": {},
	} {
		if _, err := put(scoped, in); !errors.Is(err, tenancy.ErrRestricted) {
			t.Errorf("upload %s: %v, want ErrRestricted", name, err)
		}
	}
	if _, err := put(scoped, Input{Collection: "guests", Record: "r-b"}); !errors.Is(err, validation.ErrInvalid) {
		t.Errorf("link to a record outside: %v, want the missing record's refusal", err)
	}
	if _, err := put(custos, Input{Attributes: map[string]string{"Bad": "x"}}); !errors.Is(err, validation.ErrInvalid) {
		t.Errorf("bad attribute name: %v", err)
	}
	if err := e.svc.Delete(ctx, scoped, "acme", b.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete outside: %v, want ErrNotFound", err)
	}
	if err := e.svc.Delete(ctx, scoped, "acme", a.ID); err != nil {
		t.Errorf("delete in scope: %v", err)
	}
	if got, err := e.readAll("acme", b.ID); err != nil || string(got) != "abc" {
		t.Errorf("villa-b's blob after the refused delete: %q %v", got, err)
	}
	if p, c := e.leftovers(t, "acme"); p != 0 || c != 7 { // 8 stored, 1 deleted; nothing of the refused uploads
		t.Errorf("leftovers: %d markers, %d chunk buckets", p, c)
	}
}

func ids(bl []Blob) []string {
	out := []string{}
	for _, b := range bl {
		out = append(out, b.ID)
	}
	return out
}
