package tenancy_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

func TestRestrictionAllows(t *testing.T) {
	r := tenancy.Restrict(map[string][]string{"property": {"villa-a", "villa-c"}, "floor": {"1"}})
	for _, c := range []struct {
		attrs map[string]string
		want  bool
	}{
		{map[string]string{"property": "villa-a", "floor": "1"}, true},
		{map[string]string{"property": "villa-c", "floor": "1", "other": "x"}, true},
		{map[string]string{"property": "villa-b", "floor": "1"}, false},
		{map[string]string{"property": "villa-a"}, false}, // lacks a scoped attribute: outside
		{map[string]string{"property": "VILLA-A", "floor": "1"}, false},
		{nil, false},
	} {
		if got := r.Allows(c.attrs); got != c.want {
			t.Errorf("Allows(%v) = %v, want %v", c.attrs, got, c.want)
		}
	}
	if tenancy.Restrict(nil).Restricted() || !tenancy.Restrict(nil).Allows(nil) {
		t.Error("nil scopes restrict")
	}
	none := tenancy.Restrict(map[string][]string{"property": nil})
	if !none.Restricted() || none.Allows(map[string]string{"property": ""}) {
		t.Error("a name without values admits an item")
	}
}

// restrictLayout: "things" holds items (JSON with attributes), "refs"
// entries whose key names a thing, "open" anything.
var restrictLayout = tenancy.NewLayout(
	tenancy.Items("things", tenancy.JSONAttributes("attributes")),
	tenancy.Refs("refs", func(_ [][]byte, key []byte) ([][]byte, []byte, bool) {
		return raftstore.Path("things"), key, true
	}),
	tenancy.Open("open"),
)

// TestRestrictedScope: a restricted handle reads items outside its
// restriction, and references to them, as absent — Get, Scan, Count — and
// refuses writes that would put an item outside it or touch one outside
// it; the unrestricted handle sees everything (the check is not blind).
func TestRestrictedScope(t *testing.T) {
	store := storetest.Start(t)
	ctx := context.Background()
	tenancytest.Register(t, store, "acme")
	full := tenancy.New(store).Scope("acme")
	things, refs, open, other := raftstore.Path("things"), raftstore.Path("refs"), raftstore.Path("open"), raftstore.Path("other")
	item := func(prop string) []byte { return []byte(`{"attributes":{"property":"` + prop + `"}}`) }
	var ops []raftstore.Op
	for k, v := range map[string][]byte{"a1": item("villa-a"), "b1": item("villa-b"), "a2": item("villa-a"), "n1": []byte(`{}`), "x1": []byte(`not json`)} {
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: things, Key: []byte(k), Value: v},
			raftstore.Op{Kind: raftstore.OpPut, Bucket: refs, Key: []byte(k), Value: []byte{}})
	}
	ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: refs, Key: []byte("gone"), Value: []byte{}},
		raftstore.Op{Kind: raftstore.OpPut, Bucket: open, Key: []byte("o"), Value: []byte("x")},
		raftstore.Op{Kind: raftstore.OpPut, Bucket: other, Key: []byte("o"), Value: []byte("x")})
	if res, err := full.Apply(ctx, &tenancy.Txn{Ops: ops}); err != nil || !res.Applied {
		t.Fatal(res, err)
	}
	villaA := full.Restrict(tenancy.Restrict(map[string][]string{"property": {"villa-a"}}), restrictLayout)
	if !villaA.Restricted() || full.Restricted() || full.Restrict(tenancy.Restriction{}, restrictLayout).Restricted() {
		t.Fatal("Restricted")
	}
	keys := func(sc tenancy.Scope, bucket [][]byte, limit int) (got []string, count int) {
		_ = sc.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
			r.Scan(bucket, nil, limit, func(k, _ []byte, _ uint64) bool { got = append(got, string(k)); return true })
			count = r.Count(bucket)
			return nil
		})
		return got, count
	}
	check := func(sc tenancy.Scope, bucket [][]byte, limit int, want []string, wantCount int) {
		t.Helper()
		got, n := keys(sc, bucket, limit)
		if !equal(got, want) || n != wantCount {
			t.Errorf("%q limit %d: %v (count %d), want %v (count %d)", bucket, limit, got, n, want, wantCount)
		}
	}
	check(villaA, things, 0, []string{"a1", "a2"}, 2)
	check(villaA, things, 1, []string{"a1"}, 2)
	check(villaA, refs, 0, []string{"a1", "a2"}, 2)
	check(villaA, open, 0, []string{"o"}, 1)
	check(villaA, other, 0, nil, 0) // undeclared: nothing
	check(full, things, 0, []string{"a1", "a2", "b1", "n1", "x1"}, 5)
	check(full, refs, 0, []string{"a1", "a2", "b1", "gone", "n1", "x1"}, 6)
	_ = villaA.View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		for _, c := range []struct {
			bucket [][]byte
			key    string
			want   bool
		}{{things, "a1", true}, {things, "b1", false}, {things, "n1", false}, {things, "x1", false},
			{refs, "a2", true}, {refs, "b1", false}, {refs, "gone", false}, {open, "o", true}, {other, "o", false}} {
			if _, _, ok := r.Get(c.bucket, []byte(c.key)); ok != c.want {
				t.Errorf("Get %q %s: %v, want %v", c.bucket, c.key, ok, c.want)
			}
		}
		if r.BucketExists(things) || r.BucketCount(raftstore.Path("things")) != 0 {
			t.Error("a restricted read sees an item bucket's buckets")
		}
		return nil
	})
	// Writes.
	put := func(sc tenancy.Scope, bucket [][]byte, key string, v []byte, conds ...raftstore.Cond) error {
		res, err := sc.Apply(ctx, &tenancy.Txn{Conds: conds, Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: bucket, Key: []byte(key), Value: v}}})
		if err == nil && !res.Applied {
			err = errors.New("not applied")
		}
		return err
	}
	del := func(sc tenancy.Scope, bucket [][]byte, key string) error {
		_, err := sc.Apply(ctx, &tenancy.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpDelete, Bucket: bucket, Key: []byte(key)}}})
		return err
	}
	for name, err := range map[string]error{
		"create in scope":         put(villaA, things, "a3", item("villa-a")),
		"update in scope":         put(villaA, things, "a1", item("villa-a")),
		"reference":               put(villaA, refs, "a3", nil),
		"open":                    put(villaA, open, "p", nil),
		"create absent elsewhere": put(villaA, things, "b1", item("villa-a"), raftstore.Cond{Kind: raftstore.CondAbsent, Bucket: things, Key: []byte("b1")}),
	} {
		if name == "create absent elsewhere" {
			// It exists: the condition fails, as for an item in scope.
			if err == nil || errors.Is(err, tenancy.ErrRestricted) {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, err := range map[string]error{
		"create outside":    put(villaA, things, "b2", item("villa-b")),
		"create unlabelled": put(villaA, things, "n2", []byte(`{}`)),
		"move out of scope": put(villaA, things, "a2", item("villa-b")),
		"overwrite outside": put(villaA, things, "b1", item("villa-a")),
		"delete outside":    del(villaA, things, "b1"),
		"undeclared bucket": put(villaA, other, "p", nil),
		"delete item bucket": func() error {
			_, err := villaA.Apply(ctx, &tenancy.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpDeleteBucket, Bucket: things, Key: []byte("below")}}})
			return err
		}(),
	} {
		if !errors.Is(err, tenancy.ErrRestricted) {
			t.Errorf("%s: %v, want ErrRestricted", name, err)
		}
	}
	check(full, things, 0, []string{"a1", "a2", "a3", "b1", "n1", "x1"}, 6)
	// A bucket of references may go (a blob's chunks with the blob).
	if _, err := villaA.Apply(ctx, &tenancy.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpDeleteBucket, Bucket: refs, Key: []byte("below")}}}); err != nil {
		t.Errorf("delete a bucket of references: %v", err)
	}
	if err := del(villaA, things, "a3"); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkRestrictedGet: what a restriction adds to a read by key — the
// decoding of the item's attributes — for an item of about 2 KiB (a
// record's envelope with five sealed fields), against the same read
// unrestricted. The whole audited read by id, with and without a scope,
// is BenchmarkAuditedRead in appliance/api.
func BenchmarkRestrictedGet(b *testing.B) {
	store := storetest.Start(b)
	ctx := context.Background()
	tenancytest.Register(b, store, "acme")
	full := tenancy.New(store).Scope("acme")
	v := []byte(`{"subject":"s1","attributes":{"property":"villa-a","floor":"2"},"version":3,"schema_version":1,"created_at":"2026-12-03T12:00:00Z","updated_at":"2026-12-03T12:00:00Z","sealed":{` +
		`"email":"` + strings.Repeat("QUJD", 60) + `","phone":"` + strings.Repeat("QUJD", 60) + `","name":"` + strings.Repeat("QUJD", 60) +
		`","notes":"` + strings.Repeat("QUJD", 200) + `","visits":"` + strings.Repeat("QUJD", 30) + `"}}`)
	things := raftstore.Path("things")
	if res, err := full.Apply(ctx, &tenancy.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: things, Key: []byte("k"), Value: v}}}); err != nil || !res.Applied {
		b.Fatal(res, err)
	}
	scoped := full.Restrict(tenancy.Restrict(map[string][]string{"property": {"villa-a", "villa-b"}}), restrictLayout)
	// A linearizable read has the local state catch up with the write.
	if err := full.View(ctx, raftstore.Linearizable, func(tenancy.Read) error { return nil }); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		sc   tenancy.Scope
	}{{"unrestricted", full}, {"restricted", scoped}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				_ = c.sc.View(ctx, raftstore.Stale, func(r tenancy.Read) error {
					if _, _, ok := r.Get(things, []byte("k")); !ok {
						b.Fatal("not found")
					}
					return nil
				})
			}
		})
	}
}

func TestJSONAttributes(t *testing.T) {
	read := tenancy.JSONAttributes("attributes")
	for _, c := range []struct {
		v     string
		attrs map[string]string
		ok    bool
	}{
		{`{"subject":"s","attributes":{"property":"villa-a"},"sealed":{"x":"AAAA"}}`, map[string]string{"property": "villa-a"}, true},
		{`{"attributes":{"property":"villa-a"},"rest":not json`, nil, false},
		{`{"attributes":{"property":"villa-b"},"attributes":{"property":"villa-a"}}`, map[string]string{"property": "villa-a"}, true}, // the last, as encoding/json
		{`{"attr\u0069butes":{"property":"villa-a"}}`, map[string]string{"property": "villa-a"}, true},
		{` { "s" : [1, {"a":"}"}, "]"] , "attributes" : { "property" : "villa-a" } } `, map[string]string{"property": "villa-a"}, true},
		{`{"attributes":null}`, nil, true},
		{`{}`, nil, true},
		{`{"subject":"s","sealed":{}}`, nil, true},
		{`{"attributes":{"n":1}}`, nil, false},
		{`{"attributes":["x"]}`, nil, false},
		{`["attributes"]`, nil, false},
		{`not json`, nil, false},
		{`{"subject":`, nil, false},
	} {
		attrs, ok := read([]byte(c.v))
		if ok != c.ok || len(attrs) != len(c.attrs) || attrs["property"] != c.attrs["property"] {
			t.Errorf("%s: %v %v, want %v %v", c.v, attrs, ok, c.attrs, c.ok)
		}
	}
}

// FuzzJSONAttributes: for any JSON object, JSONAttributes reads what
// encoding/json decodes of the member (the last of its name), or refuses
// what it refuses; for anything else, it does not panic.
func FuzzJSONAttributes(f *testing.F) {
	for _, s := range []string{
		`{"subject":"s","attributes":{"property":"villa-a"},"sealed":{"x":"AAAA"}}`, `{"attributes":{"a":"b"},"attributes":{}}`,
		`{"x":[{"attributes":{"a":"b"}}],"attributes":{"p":"\"q\\"}}`, `{"attributes":{"a":1}}`, `[]`, `{"a":tru}`, `{"attributes":{"a":"b"}`,
	} {
		f.Add([]byte(s))
	}
	read := tenancy.JSONAttributes("attributes")
	f.Fuzz(func(t *testing.T, v []byte) {
		attrs, ok := read(v)
		var members map[string]json.RawMessage
		if !json.Valid(v) || json.Unmarshal(v, &members) != nil {
			return
		}
		var want map[string]string
		wantOK := true
		if raw, found := members["attributes"]; found {
			wantOK = json.Unmarshal(raw, &want) == nil
		}
		if ok != wantOK || (ok && !maps.Equal(attrs, want)) {
			t.Fatalf("%s: %v %v, want %v %v", v, attrs, ok, want, wantOK)
		}
	})
}
