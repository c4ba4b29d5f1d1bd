package tenants_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

var operator = audit.Principal{Kind: audit.ActorOperator, ID: "operator", RequestID: "req-1"}

// fixedTime is the test clock: a fixed instant with nanoseconds, so that
// the RFC 3339 encoding is exercised in full.
var fixedTime = time.Date(2026, 1, 2, 3, 4, 5, 600700800, time.UTC)

func newService(t *testing.T) (*tenants.Service, *raftstore.Store) {
	t.Helper()
	store := storetest.Start(t)
	return tenants.New(tenancy.New(store), storetest.Region, tenants.WithClock(func() time.Time { return fixedTime })), store
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustCreate(t *testing.T, svc *tenants.Service, id, name string) tenants.Tenant {
	t.Helper()
	tn, err := svc.Create(ctx(t), operator, tenants.CreateInput{ID: id, DisplayName: name})
	if err != nil {
		t.Fatalf("create %q: %v", id, err)
	}
	return tn
}

// chainState returns the system chain's head sequence and the registry's
// size: what no failed operation may change.
func chainState(t *testing.T, store *raftstore.Store) (seq uint64, registry int) {
	t.Helper()
	err := store.View(ctx(t), raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		seq, _ = tx.ChainHead([]byte(tenancy.SystemChain))
		registry = tx.Count(tenancytest.Registry())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seq, registry
}

func chainEntry(t *testing.T, store *raftstore.Store, seq uint64) map[string]any {
	t.Helper()
	var data []byte
	err := store.View(ctx(t), raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		var ok bool
		if data, _, ok = tx.ChainEntry([]byte(tenancy.SystemChain), seq); !ok {
			return fmt.Errorf("no chain entry %d", seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("entry %d is not JSON: %v: %s", seq, err, data)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil || !bytes.Equal(compact.Bytes(), data) {
		t.Errorf("entry %d is not compact JSON: %s", seq, data)
	}
	return m
}

func TestNewPanicsOnBadWiring(t *testing.T) {
	store := storetest.Start(t)
	for name, build := range map[string]func(){
		"nil store":  func() { tenants.New(nil, "eu-west-1") },
		"bad region": func() { tenants.New(tenancy.New(store), "EU West") },
		"no region":  func() { tenants.New(tenancy.New(store), "") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			build()
		}()
	}
}

func TestCreateGet(t *testing.T) {
	svc, _ := newService(t)
	got := mustCreate(t, svc, "acme", "  Acme Hotels  ")
	want := tenants.Tenant{
		ID: "acme", DisplayName: "Acme Hotels", Region: storetest.Region, State: tenants.StateActive,
		Regulation: tenants.DefaultRegulation, TimeZone: "UTC", DPDPResponseDays: 30, RetentionDays: 365,
		CreatedAt: fixedTime, UpdatedAt: fixedTime,
	}
	if got != want {
		t.Fatalf("create returned %+v, want %+v", got, want)
	}
	for _, c := range []raftstore.Consistency{raftstore.Linearizable, raftstore.Stale} {
		read, err := svc.Get(ctx(t), c, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if !read.CreatedAt.Equal(want.CreatedAt) || read.ID != want.ID || read.DisplayName != want.DisplayName ||
			read.Region != want.Region || read.State != want.State {
			t.Errorf("get (consistency %d) = %+v, want %+v", c, read, want)
		}
	}
	explicit, err := svc.Create(ctx(t), operator, tenants.CreateInput{ID: "beta", DisplayName: "B", Region: storetest.Region})
	if err != nil || explicit.Region != storetest.Region {
		t.Fatalf("create with explicit region: %+v, %v", explicit, err)
	}
}

func TestCreateGeneratesID(t *testing.T) {
	svc, _ := newService(t)
	seen := map[string]bool{}
	for range 5 {
		tn := mustCreate(t, svc, "", "Generated")
		if !strings.HasPrefix(tn.ID, "t-") || len(tn.ID) != 12 || !tenants.ValidID(tn.ID) {
			t.Errorf("generated id %q is not t- and 10 base32 characters", tn.ID)
		}
		if seen[tn.ID] {
			t.Errorf("generated id %q twice", tn.ID)
		}
		seen[tn.ID] = true
		if _, err := svc.Get(ctx(t), raftstore.Linearizable, tn.ID); err != nil {
			t.Errorf("get generated %q: %v", tn.ID, err)
		}
	}
}

func TestCreateExists(t *testing.T) {
	svc, store := newService(t)
	mustCreate(t, svc, "acme", "Acme")
	seq, n := chainState(t, store)
	_, err := svc.Create(ctx(t), operator, tenants.CreateInput{ID: "acme", DisplayName: "Other"})
	if !errors.Is(err, tenants.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if s, m := chainState(t, store); s != seq || m != n {
		t.Errorf("failed create changed state: chain %d->%d, registry %d->%d", seq, s, n, m)
	}
	got, _ := svc.Get(ctx(t), raftstore.Linearizable, "acme")
	if got.DisplayName != "Acme" {
		t.Errorf("failed create overwrote the tenant: %+v", got)
	}
}

func TestCreateRegionMismatch(t *testing.T) {
	svc, store := newService(t)
	_, err := svc.Create(ctx(t), operator, tenants.CreateInput{ID: "acme", DisplayName: "Acme", Region: "us-east-1"})
	var rm *tenants.RegionMismatchError
	if !errors.As(err, &rm) || !errors.Is(err, tenants.ErrRegionMismatch) {
		t.Fatalf("create in another region: %v, want RegionMismatchError", err)
	}
	if rm.Requested != "us-east-1" || rm.Cluster != storetest.Region {
		t.Errorf("mismatch names %q and %q", rm.Requested, rm.Cluster)
	}
	if seq, n := chainState(t, store); seq != 0 || n != 0 {
		t.Errorf("refused create wrote: chain %d, registry %d", seq, n)
	}
}

func TestCreateInvalid(t *testing.T) {
	svc, store := newService(t)
	tests := []struct {
		name  string
		in    tenants.CreateInput
		field string
	}{
		{"id too short", tenants.CreateInput{ID: "a", DisplayName: "A"}, "id"},
		{"id too long", tenants.CreateInput{ID: strings.Repeat("a", 64), DisplayName: "A"}, "id"},
		{"id upper case", tenants.CreateInput{ID: "Acme", DisplayName: "A"}, "id"},
		{"id leading dash", tenants.CreateInput{ID: "-acme", DisplayName: "A"}, "id"},
		{"id with colon", tenants.CreateInput{ID: "a:b", DisplayName: "A"}, "id"},
		{"id with slash", tenants.CreateInput{ID: "a/b", DisplayName: "A"}, "id"},
		{"id with unicode", tenants.CreateInput{ID: "acmé", DisplayName: "A"}, "id"},
		{"name empty", tenants.CreateInput{ID: "acme"}, "display_name"},
		{"name only spaces", tenants.CreateInput{ID: "acme", DisplayName: " \t "}, "display_name"},
		{"name too long", tenants.CreateInput{ID: "acme", DisplayName: strings.Repeat("é", 201)}, "display_name"},
		{"name control", tenants.CreateInput{ID: "acme", DisplayName: "Ac\x00me"}, "display_name"},
		{"name newline", tenants.CreateInput{ID: "acme", DisplayName: "Ac\nme"}, "display_name"},
		{"name form feed at the edge", tenants.CreateInput{ID: "acme", DisplayName: "\f0"}, "display_name"},
		{"name over 200 with its spaces", tenants.CreateInput{ID: "acme", DisplayName: "   " + strings.Repeat("a", 198)}, "display_name"},
		{"name bidi override", tenants.CreateInput{ID: "acme", DisplayName: "Acme\u202Eslet"}, "display_name"},
		{"name invalid utf-8", tenants.CreateInput{ID: "acme", DisplayName: "Ac\xffme"}, "display_name"},
		{"region malformed", tenants.CreateInput{ID: "acme", DisplayName: "A", Region: "EU WEST"}, "region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Create(ctx(t), operator, tt.in)
			var fe *validation.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, validation.ErrInvalid) {
				t.Fatalf("create %+v: %v, want a FieldError", tt.in, err)
			}
			if fe.Field != tt.field {
				t.Errorf("field %q, want %q", fe.Field, tt.field)
			}
		})
	}
	if seq, n := chainState(t, store); seq != 0 || n != 0 {
		t.Errorf("invalid creates wrote: chain %d, registry %d", seq, n)
	}
	// The limits are inclusive.
	for _, in := range []tenants.CreateInput{
		{ID: "ab", DisplayName: "x"},
		{ID: strings.Repeat("a", 63), DisplayName: strings.Repeat("é", 200)},
	} {
		if _, err := svc.Create(ctx(t), operator, in); err != nil {
			t.Errorf("create at the limits: %v", err)
		}
	}
	if _, err := svc.Create(ctx(t), audit.Principal{}, tenants.CreateInput{ID: "noactor", DisplayName: "x"}); err == nil {
		t.Error("create without an actor succeeded")
	}
}

func TestList(t *testing.T) {
	svc, _ := newService(t)
	page, next, err := svc.List(ctx(t), raftstore.Linearizable, "", 0)
	if err != nil || len(page) != 0 || next != "" || page == nil {
		t.Fatalf("empty list: %v %q %v", page, next, err)
	}
	var ids []string
	for i := range 7 {
		id := fmt.Sprintf("tenant-%02d", i)
		ids = append(ids, id)
		mustCreate(t, svc, id, "T")
	}
	tests := []struct {
		after    string
		limit    int
		wantIDs  []string
		wantNext string
	}{
		{"", 0, ids, ""},
		{"", 7, ids, ""},
		{"", 3, ids[:3], ids[2]},
		{ids[2], 3, ids[3:6], ids[5]},
		{ids[5], 3, ids[6:], ""},
		{ids[6], 3, nil, ""},
		{"tenant-03x", 2, ids[4:6], ids[5]}, // after an id that does not exist
		{"zz", 5, nil, ""},
	}
	for _, tt := range tests {
		for _, c := range []raftstore.Consistency{raftstore.Linearizable, raftstore.Stale} {
			page, next, err := svc.List(ctx(t), c, tt.after, tt.limit)
			if err != nil {
				t.Fatalf("list after %q limit %d: %v", tt.after, tt.limit, err)
			}
			var got []string
			for _, tn := range page {
				got = append(got, tn.ID)
			}
			if !slices.Equal(got, tt.wantIDs) || next != tt.wantNext {
				t.Errorf("list after %q limit %d = %v next %q, want %v next %q", tt.after, tt.limit, got, next, tt.wantIDs, tt.wantNext)
			}
		}
	}
	// Following next visits every tenant exactly once.
	var all []string
	after := ""
	for {
		page, next, err := svc.List(ctx(t), raftstore.Linearizable, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range page {
			all = append(all, tn.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if !slices.Equal(all, ids) {
		t.Errorf("paging visited %v, want %v", all, ids)
	}
	for _, bad := range []struct {
		after string
		limit int
		field string
	}{{"", -1, "limit"}, {"", 501, "limit"}, {"Bad Id", 10, "after"}} {
		_, _, err := svc.List(ctx(t), raftstore.Linearizable, bad.after, bad.limit)
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != bad.field {
			t.Errorf("list after %q limit %d: %v, want FieldError on %s", bad.after, bad.limit, err, bad.field)
		}
	}
	if page, _, err := svc.List(ctx(t), raftstore.Linearizable, "", 500); err != nil || len(page) != len(ids) {
		t.Errorf("list with the maximum limit: %d, %v", len(page), err)
	}
}

func TestLifecycleAndAudit(t *testing.T) {
	svc, store := newService(t)
	mustCreate(t, svc, "acme", "Acme Hotels")
	newName := "Acme Resorts"
	steps := []struct {
		name       string
		run        func() (tenants.Tenant, error)
		wantAction string // "" when nothing may be written
		check      func(tenants.Tenant) bool
	}{
		{"rename", func() (tenants.Tenant, error) {
			return svc.Update(ctx(t), operator, "acme", tenants.Patch{DisplayName: &newName})
		}, tenants.ActionUpdate, func(tn tenants.Tenant) bool { return tn.DisplayName == newName }},
		{"rename to the same name", func() (tenants.Tenant, error) {
			same := "  " + newName + " "
			return svc.Update(ctx(t), operator, "acme", tenants.Patch{DisplayName: &same})
		}, "", func(tn tenants.Tenant) bool { return tn.DisplayName == newName }},
		{"suspend", func() (tenants.Tenant, error) { return svc.Suspend(ctx(t), operator, "acme") },
			tenants.ActionSuspend, func(tn tenants.Tenant) bool { return tn.State == tenants.StateSuspended }},
		{"suspend again", func() (tenants.Tenant, error) { return svc.Suspend(ctx(t), operator, "acme") },
			"", func(tn tenants.Tenant) bool { return tn.State == tenants.StateSuspended }},
		{"resume", func() (tenants.Tenant, error) { return svc.Resume(ctx(t), operator, "acme") },
			tenants.ActionResume, func(tn tenants.Tenant) bool { return tn.State == tenants.StateActive }},
		{"resume again", func() (tenants.Tenant, error) { return svc.Resume(ctx(t), operator, "acme") },
			"", func(tn tenants.Tenant) bool { return tn.State == tenants.StateActive }},
	}
	seq, _ := chainState(t, store)
	if seq != 1 {
		t.Fatalf("after create the chain head is %d, want 1", seq)
	}
	checkEntry(t, store, 1, tenants.ActionCreate, "tenant:acme")
	for _, st := range steps {
		before, _ := chainState(t, store)
		got, err := st.run()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !st.check(got) {
			t.Errorf("%s returned %+v", st.name, got)
		}
		stored, err := svc.Get(ctx(t), raftstore.Linearizable, "acme")
		if err != nil || !st.check(stored) {
			t.Errorf("%s: stored %+v, %v", st.name, stored, err)
		}
		after, _ := chainState(t, store)
		if st.wantAction == "" {
			if after != before {
				t.Errorf("%s changed nothing but appended to the chain (%d -> %d)", st.name, before, after)
			}
			continue
		}
		if after != before+1 {
			t.Fatalf("%s: chain head %d -> %d, want one entry", st.name, before, after)
		}
		checkEntry(t, store, after, st.wantAction, "tenant:acme")
	}
}

// checkEntry checks one audit entry: exactly the expected fields, and no
// display name anywhere.
func checkEntry(t *testing.T, store *raftstore.Store, seq uint64, action, target string) {
	t.Helper()
	e := chainEntry(t, store, seq)
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"action", "actor", "details", "outcome", "request_id", "source", "target", "time", "v"}; !slices.Equal(keys, want) {
		t.Errorf("entry %d has fields %v, want %v", seq, keys, want)
	}
	actor, _ := e["actor"].(map[string]any)
	if e["action"] != action || e["target"] != target || actor["id"] != "operator" || actor["type"] != "operator" ||
		e["request_id"] != "req-1" || e["outcome"] != "success" {
		t.Errorf("entry %d = %v, want action %s target %s", seq, e, action, target)
	}
	if e["time"] != fixedTime.UTC().Format("2006-01-02T15:04:05.000000000Z") {
		t.Errorf("entry %d time %v, want %s", seq, e["time"], fixedTime)
	}
	raw, _ := json.Marshal(e)
	if strings.Contains(string(raw), "Acme") {
		t.Errorf("entry %d holds a display name: %s", seq, raw)
	}
}

func TestUpdateInvalid(t *testing.T) {
	svc, store := newService(t)
	mustCreate(t, svc, "acme", "Acme")
	seq, _ := chainState(t, store)
	long := strings.Repeat("x", 201)
	for _, p := range []tenants.Patch{{}, {DisplayName: &long}} {
		if _, err := svc.Update(ctx(t), operator, "acme", p); !errors.Is(err, validation.ErrInvalid) {
			t.Errorf("update %+v: %v, want ErrInvalid", p, err)
		}
	}
	if s, _ := chainState(t, store); s != seq {
		t.Errorf("invalid updates appended to the chain")
	}
}

func TestNotFound(t *testing.T) {
	svc, store := newService(t)
	mustCreate(t, svc, "acme", "Acme")
	seq, n := chainState(t, store)
	name := "X"
	for _, id := range []string{"ghost", "Bad Id", "", "a", strings.Repeat("z", 64)} {
		ops := map[string]error{}
		_, ops["get"] = svc.Get(ctx(t), raftstore.Linearizable, id)
		_, ops["update"] = svc.Update(ctx(t), operator, id, tenants.Patch{DisplayName: &name})
		_, ops["suspend"] = svc.Suspend(ctx(t), operator, id)
		_, ops["resume"] = svc.Resume(ctx(t), operator, id)
		ops["delete"] = svc.Delete(ctx(t), operator, id)
		for op, err := range ops {
			if !errors.Is(err, tenants.ErrNotFound) {
				t.Errorf("%s %q: %v, want ErrNotFound", op, id, err)
			}
		}
	}
	if s, m := chainState(t, store); s != seq || m != n {
		t.Errorf("operations on missing tenants wrote: chain %d->%d registry %d->%d", seq, s, n, m)
	}
}

func TestDeleteRemovesBucket(t *testing.T) {
	svc, store := newService(t)
	mustCreate(t, svc, "acme", "Acme")
	mustCreate(t, svc, "other", "Other")
	// Data the tenant's domain code would have written.
	for _, id := range []string{"acme", "other"} {
		res, err := store.Apply(ctx(t), &raftstore.Txn{Ops: []raftstore.Op{
			{Kind: raftstore.OpPut, Bucket: tenancytest.Path(id, "guests", "records"), Key: []byte("g1"), Value: []byte("ciphertext")},
		}})
		if err != nil || !res.Applied {
			t.Fatalf("write tenant data: %+v %v", res, err)
		}
	}
	seq, _ := chainState(t, store)
	if err := svc.Delete(ctx(t), operator, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx(t), raftstore.Linearizable, "acme"); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
	err := store.View(ctx(t), raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		if tx.BucketExists(tenancytest.Path("acme")) {
			t.Error("the deleted tenant's bucket still exists")
		}
		if _, _, ok := tx.Get(tenancytest.Path("other", "guests", "records"), []byte("g1")); !ok {
			t.Error("deleting one tenant removed another's data")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := chainState(t, store); s != seq+1 {
		t.Errorf("delete: chain %d -> %d, want one entry", seq, s)
	}
	checkEntry(t, store, seq+1, tenants.ActionDelete, "tenant:acme")
	if err := svc.Delete(ctx(t), operator, "acme"); !errors.Is(err, tenants.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	// The id can be reused, and the new tenant starts empty.
	mustCreate(t, svc, "acme", "Acme Again")
	err = store.View(ctx(t), raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		if tx.BucketExists(tenancytest.Path("acme", "guests")) {
			t.Error("a re-created tenant sees the old tenant's data")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentChanges races renames, suspends and resumes on one tenant:
// each call either applies with exactly one audit entry or reports
// ErrConflict, and the audit chain counts exactly the applied changes.
func TestConcurrentChanges(t *testing.T) {
	svc, store := newService(t)
	mustCreate(t, svc, "acme", "Acme")
	seq0, _ := chainState(t, store)
	const workers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied int
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				name := fmt.Sprintf("Acme %d-%d", w, i)
				_, err := svc.Update(ctx(t), operator, "acme", tenants.Patch{DisplayName: &name})
				switch {
				case err == nil:
					mu.Lock()
					applied++
					mu.Unlock()
				case !errors.Is(err, tenants.ErrConflict):
					t.Errorf("concurrent update: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	seq, n := chainState(t, store)
	if got := int(seq - seq0); got != applied {
		t.Errorf("%d updates applied but %d audit entries appended", applied, got)
	}
	if n != 1 || applied == 0 {
		t.Errorf("registry holds %d tenants, %d updates applied", n, applied)
	}
}

// repeatReader yields the blocks in order, then repeats the last one.
type repeatReader struct{ blocks [][]byte }

func (r *repeatReader) Read(p []byte) (int, error) {
	b := r.blocks[0]
	if len(r.blocks) > 1 {
		r.blocks = r.blocks[1:]
	}
	return copy(p, b), nil
}

func TestGeneratedIDCollisionRetries(t *testing.T) {
	store := storetest.Start(t)
	a, b := bytes.Repeat([]byte{1}, 7), bytes.Repeat([]byte{2}, 7)
	rnd := &repeatReader{blocks: [][]byte{a, a, b}}
	svc := tenants.New(tenancy.New(store), storetest.Region, tenants.WithRandom(rnd))
	first, err := svc.Create(ctx(t), operator, tenants.CreateInput{DisplayName: "One"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := svc.Create(ctx(t), operator, tenants.CreateInput{DisplayName: "Two"})
	if err != nil || second.ID == first.ID {
		t.Fatalf("a colliding generated id was not redrawn: %q, %q, %v", first.ID, second.ID, err)
	}
	// A source stuck on one value gives up after a few draws.
	stuck := tenants.New(tenancy.New(store), storetest.Region, tenants.WithRandom(&repeatReader{blocks: [][]byte{a}}))
	if _, err := stuck.Create(ctx(t), operator, tenants.CreateInput{DisplayName: "Three"}); !errors.Is(err, tenants.ErrExists) {
		t.Errorf("stuck random source: %v, want ErrExists", err)
	}
	if seq, n := chainState(t, store); seq != 2 || n != 2 {
		t.Errorf("chain %d registry %d, want 2 and 2", seq, n)
	}
}
