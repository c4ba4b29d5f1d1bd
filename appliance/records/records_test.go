package records_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// env is the records service's dependencies over a real single-node store.
type env struct {
	t     testing.TB
	store *raftstore.Store
	b     *tenancy.Boundary
	keys  *keyring.Hierarchy
	colls *collections.Service
	ten   *tenants.Service
}

func newEnv(t testing.TB, o storetest.Options) *env {
	t.Helper()
	store := storetest.StartWith(t, o)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	b := tenancy.New(store)
	keys := keyring.NewHierarchy(b, keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}, System: audit.System(), Pseudonym: audit.Pseudonym})
	return &env{t: t, store: store, b: b, keys: keys, colls: collections.New(b, nil), ten: tenants.New(b, storetest.Region, tenants.WithKeys(keys))}
}

// service is the records service as the node makes it: over the tenancy
// boundary, with a read-audit batcher over it.
func (e *env) service() *records.Service {
	b := audit.NewBatcher(e.b, audit.BatchOptions{})
	e.t.Cleanup(b.Close)
	return records.New(e.b, e.keys, e.colls, nil, records.WithReadAudit(b))
}

// custos is the principal the tests read and write as: Custos itself, which
// reads every tenant's data in clear (operators read none; see
// appliance/identity/visibility).
var custos = audit.System()

var tenantsActor = audit.Principal{Kind: audit.ActorOperator, ID: "operator"}

func tenantsInput(id string) tenants.CreateInput { return tenants.CreateInput{ID: id, DisplayName: id} }

// tenant creates a tenant with a "guests" collection (email: pii, blind
// indexed; n: internal) holding record g1.
func (e *env) tenant(svc *records.Service, id string) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.ten.Create(ctx, tenantsActor, tenantsInput(id)); err != nil {
		e.t.Fatal(err)
	}
	def := collections.Definition{Fields: []collections.Field{
		{Name: "email", Type: collections.TypeString, Required: true, Classification: collections.ClassPII, Index: true},
		{Name: "n", Type: collections.TypeNumber, Classification: collections.ClassInternal},
	}}
	if _, _, err := e.colls.Put(ctx, custos, id, "guests", def, 0); err != nil {
		e.t.Fatal(err)
	}
	in := records.Input{ID: "g1", Fields: map[string]json.RawMessage{"email": json.RawMessage(`"jane@` + id + `.example"`), "n": json.RawMessage(`1`)}}
	if _, err := svc.Create(ctx, custos, id, "guests", in); err != nil {
		e.t.Fatal(err)
	}
}

// revision is the store's revision, which every applied transaction
// advances by one: it is read by applying a probe transaction (which
// counts itself).
func (e *env) revision() uint64 {
	e.t.Helper()
	res, err := e.store.Apply(context.Background(), &raftstore.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("probe"), Key: []byte("k"), Value: []byte("v")}}})
	if err != nil || !res.Applied {
		e.t.Fatalf("probe: %+v %v", res, err)
	}
	return res.Revision
}

// reads returns the request ids of the record.read entries of tenant's
// chain after seq after.
func (e *env) reads(tenant string, after uint64) []string {
	e.t.Helper()
	var ids []string
	err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		var derr error
		r.ChainEntries(tenancytest.Chain(tenant), after+1, func(_ uint64, _ [32]byte, data []byte) bool {
			en, err := audit.Decode(data)
			if err != nil {
				derr = err
				return false
			}
			if en.Action == "record.read" {
				ids = append(ids, en.RequestID)
			}
			return true
		})
		return derr
	})
	if err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// sync has the node's state file catch up with what it applied (a
// linearizable read does), so that local reads see every write so far.
func (e *env) sync() {
	e.t.Helper()
	if err := e.store.View(context.Background(), raftstore.Linearizable, func(*raftstore.ReadTx) error { return nil }); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) chainSize(tenant string) uint64 {
	var n uint64
	if err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		n, _ = r.ChainHead(tenancytest.Chain(tenant))
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func reader(i int) audit.Principal {
	return audit.Principal{Kind: audit.ActorAPIKey, ID: "k1", RequestID: fmt.Sprintf("read-%03d", i)}
}

// gate passes the batcher's transactions to the store, holding the first
// until released, so that the test can queue reads behind a commit in
// flight. It counts the transactions and their entries.
type gate struct {
	next    audit.Store
	mu      sync.Mutex
	sizes   []int
	entered chan struct{}
	hold    chan struct{}
}

func newGate(next audit.Store) *gate {
	return &gate{next: next, entered: make(chan struct{}, 1024), hold: make(chan struct{})}
}

func (g *gate) Apply(ctx context.Context, t *raftstore.Txn) (raftstore.Result, error) {
	g.mu.Lock()
	first := len(g.sizes) == 0
	g.sizes = append(g.sizes, len(t.Appends))
	g.mu.Unlock()
	g.entered <- struct{}{}
	if first {
		<-g.hold
	}
	return g.next.Apply(ctx, t)
}

func (g *gate) View(ctx context.Context, c raftstore.Consistency, fn func(*raftstore.ReadTx) error) error {
	return g.next.View(ctx, c, fn)
}

func (g *gate) txns() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.sizes)
}

type readResult struct {
	rec records.Record
	err error
}

// readsBehindACommit reads tenant's g1 as reader 0 and, while that read's
// audit commit is held, as readers 1..n (tenantOf(i) picks each one's
// tenant); it releases the commit once all n are queued.
func readsBehindACommit(t *testing.T, svc *records.Service, b *audit.Batcher, g *gate, n int, tenantOf func(int) string) []readResult {
	t.Helper()
	out := make([]readResult, n+1)
	var wg sync.WaitGroup
	read := func(i int) {
		rec, err := svc.Get(context.Background(), reader(i), tenantOf(i), "guests", "g1", false)
		out[i] = readResult{rec, err}
	}
	wg.Go(func() { read(0) })
	<-g.entered
	for i := 1; i <= n; i++ {
		wg.Go(func() { read(i) })
	}
	testkit.EventuallyEqual(t, "read entries queued", b.Queued, n)
	close(g.hold)
	wg.Wait()
	return out
}

// TestReadAuditBatched: 64 concurrent reads of a pii record each leave
// exactly one record.read entry, all 63 that arrive while the first read's
// entry commits share one transaction (counted by the store's revision),
// and each read is answered only after its entry is committed.
func TestReadAuditBatched(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	g := newGate(e.store)
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	svc := records.New(e.b, e.keys, e.colls, nil, records.WithReadAudit(b))
	e.tenant(svc, "acme")

	size := e.chainSize("acme")
	before := e.revision()
	res := readsBehindACommit(t, svc, b, g, 63, func(int) string { return "acme" })
	after := e.revision()
	var want []string
	for i, r := range res {
		if r.err != nil || string(r.rec.Fields["email"]) != `"jane@acme.example"` {
			t.Fatalf("read %d: %+v %v", i, r.rec, r.err)
		}
		want = append(want, reader(i).RequestID)
	}
	if got := e.reads("acme", size); !slices.Equal(got, want) {
		t.Fatalf("record.read entries of %v, want one per read: %v", got, want)
	}
	if txns := after - before - 1; txns != 2 {
		t.Fatalf("64 audited reads took %d transactions, want 2 (the first alone, the 63 behind it together)", txns)
	}
	if got := g.txns(); !slices.Equal(got, []int{1, 63}) {
		t.Fatalf("batched transactions of %v entries, want [1 63]", got)
	}
}

// TestReadAuditConcurrent: free-running concurrent reads through the
// service's own batcher — exactly one entry per read, and fewer
// transactions than reads.
func TestReadAuditConcurrent(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	svc := e.service()
	e.tenant(svc, "acme")
	if _, err := svc.Get(context.Background(), reader(999), "acme", "guests", "g1", true); err != nil {
		t.Fatal(err) // warm: the tenant key is cached from here on
	}
	size := e.chainSize("acme")
	const clients, each = 64, 8
	before := e.revision()
	var wg sync.WaitGroup
	var want []string
	for c := range clients {
		for i := range each {
			want = append(want, reader(c*each+i).RequestID)
		}
		wg.Go(func() {
			for i := range each {
				if _, err := svc.Get(context.Background(), reader(c*each+i), "acme", "guests", "g1", i%2 == 0); err != nil {
					t.Errorf("read: %v", err)
				}
			}
		})
	}
	wg.Wait()
	after := e.revision()
	slices.Sort(want)
	if got := e.reads("acme", size); !slices.Equal(got, want) {
		t.Fatalf("%d record.read entries for %d reads, or not one per read", len(got), len(want))
	}
	txns := after - before - 1
	if txns >= clients*each {
		t.Fatalf("%d audited reads took %d transactions, want fewer", clients*each, txns)
	}
	t.Logf("%d audited reads in %d transactions", clients*each, txns)
}

// TestReadAuditFailureFailsTheBatch: when the transaction carrying a
// batch's entries cannot be written, every read of that batch fails and
// serves nothing; the batch is retried chain by chain, so another
// tenant's reads queued in the same batch are not failed by it.
func TestReadAuditFailureFailsTheBatch(t *testing.T) {
	fault := func(chain, data []byte) error {
		if string(chain) == string(tenancytest.Chain("bad")) && bytes.Contains(data, []byte(`"record.read"`)) {
			return errors.New("test: chain refuses reads")
		}
		return nil
	}
	e := newEnv(t, storetest.Options{ChainFault: fault})
	g := newGate(e.store)
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	svc := records.New(e.b, e.keys, e.colls, nil, records.WithReadAudit(b))
	e.tenant(svc, "good")
	e.tenant(svc, "bad")
	goodSize, badSize := e.chainSize("good"), e.chainSize("bad")

	tenantOf := func(i int) string {
		if i > 0 && i%2 == 0 {
			return "bad"
		}
		return "good"
	}
	res := readsBehindACommit(t, svc, b, g, 40, tenantOf)
	var wantGood []string
	for i, r := range res {
		if tenantOf(i) == "bad" {
			if !errors.Is(r.err, raftstore.ErrChainUnwritable) || r.rec.Fields != nil {
				t.Fatalf("read %d of bad: %+v %v, want ErrChainUnwritable and no record", i, r.rec, r.err)
			}
			continue
		}
		if r.err != nil {
			t.Fatalf("read %d of good: %v", i, r.err)
		}
		wantGood = append(wantGood, reader(i).RequestID)
	}
	if got := g.txns(); !slices.Equal(got, []int{1, 40, 20, 20}) {
		t.Fatalf("transactions of %v entries, want [1 40 20 20] (the batch, then chain by chain)", got)
	}
	if got := e.reads("bad", badSize); len(got) != 0 {
		t.Fatalf("bad's chain has read entries %v", got)
	}
	if got := e.reads("good", goodSize); !slices.Equal(got, wantGood) {
		t.Fatalf("good's read entries %v, want %v", got, wantGood)
	}

	// Every read of a batch of one tenant's entries fails with it.
	g2 := newGate(e.store)
	b2 := audit.NewBatcher(tenancy.New(g2), audit.BatchOptions{})
	defer b2.Close()
	svc2 := records.New(e.b, e.keys, e.colls, nil, records.WithReadAudit(b2))
	res = readsBehindACommit(t, svc2, b2, g2, 30, func(i int) string { return "bad" })
	for i, r := range res {
		if !errors.Is(r.err, raftstore.ErrChainUnwritable) || r.rec.Fields != nil {
			t.Fatalf("read %d: %+v %v, want ErrChainUnwritable and no record", i, r.rec, r.err)
		}
	}
	if got := g2.txns(); !slices.Equal(got, []int{1, 30}) {
		t.Fatalf("transactions of %v entries, want [1 30]", got)
	}
}

// TestReadCancelled: a read whose context ends while its entry waits for a
// commit fails (it is not served) and its entry is not proposed.
func TestReadCancelled(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	g := newGate(e.store)
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	svc := records.New(e.b, e.keys, e.colls, nil, records.WithReadAudit(b))
	e.tenant(svc, "acme")
	size := e.chainSize("acme")
	first := make(chan error, 1)
	go func() {
		_, err := svc.Get(context.Background(), reader(0), "acme", "guests", "g1", false)
		first <- err
	}()
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan readResult, 1)
	go func() {
		rec, err := svc.Get(ctx, reader(1), "acme", "guests", "g1", false)
		done <- readResult{rec, err}
	}()
	testkit.EventuallyEqual(t, "read entries queued", b.Queued, 1)
	cancel()
	if r := <-done; r.err == nil || r.rec.Fields != nil {
		t.Fatalf("cancelled read: %+v %v, want an error and no record", r.rec, r.err)
	}
	close(g.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := e.reads("acme", size); !slices.Equal(got, []string{reader(0).RequestID}) {
		t.Fatalf("read entries %v, want only the first read's", got)
	}
}

// hookStore counts linearizable reads (each a read-index round) and runs a
// change right after the next local read, as if this node's state had
// been behind: the change is committed before the operation's own
// transaction.
type hookStore struct {
	*raftstore.Store
	mu           sync.Mutex
	afterStale   func()
	linearizable int
}

func (h *hookStore) View(ctx context.Context, c raftstore.Consistency, fn func(*raftstore.ReadTx) error) error {
	h.mu.Lock()
	if c == raftstore.Linearizable {
		h.linearizable++
	}
	h.mu.Unlock()
	err := h.Store.View(ctx, c, fn)
	if c == raftstore.Stale {
		h.mu.Lock()
		f := h.afterStale
		h.afterStale = nil
		h.mu.Unlock()
		if f != nil {
			f()
		}
	}
	return err
}

// then arms f and returns the linearizable reads so far.
func (h *hookStore) then(f func()) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.afterStale = f
	return h.linearizable
}

func (h *hookStore) rounds() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.linearizable
}

// TestReadRoundsAndStaleState: audited reads and writes need no
// read-index round (their transaction proves what they read current);
// when what they read changes before that transaction, nothing is served
// or written from it and the operation runs again from a linearizable
// read. Audited reads are checked with their entries written through a
// read-audit batcher (as on a node) and in transactions of their own
// through the tenant's store (a service without a batcher).
func TestReadRoundsAndStaleState(t *testing.T) {
	t.Run("batched", func(t *testing.T) { testReadRoundsAndStaleState(t, true) })
	t.Run("own-transactions", func(t *testing.T) { testReadRoundsAndStaleState(t, false) })
}

func testReadRoundsAndStaleState(t *testing.T, batched bool) {
	e := newEnv(t, storetest.Options{})
	h := &hookStore{Store: e.store}
	var opts []records.Option
	if batched {
		b := audit.NewBatcher(tenancy.New(h), audit.BatchOptions{})
		defer b.Close()
		opts = append(opts, records.WithReadAudit(b))
	}
	svc := records.New(tenancy.New(h), e.keys, e.colls, nil, opts...)
	other := e.service() // changes behind svc's back
	e.tenant(svc, "acme")
	ctx := context.Background()
	email := func(v string) records.Input {
		return records.Input{Fields: map[string]json.RawMessage{"email": json.RawMessage(`"` + v + `"`)}}
	}

	// No round for an audited read, a create, a replace, a patch, a delete
	// — once the node's state file holds the previous write (local reads
	// see committed state, which follows the applied state by a few
	// milliseconds; e.sync commits it at once).
	rounds := 0
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		e.sync()
	}
	e.sync()
	r0 := h.rounds()
	_, err := svc.Get(ctx, reader(1), "acme", "guests", "g1", false)
	step("get", err)
	in := email("b@acme.example")
	in.ID = "g2"
	_, err = svc.Create(ctx, custos, "acme", "guests", in)
	step("create", err)
	_, err = svc.Replace(ctx, custos, "acme", "guests", "g2", email("c@acme.example"), 1)
	step("replace", err)
	_, err = svc.Patch(ctx, custos, "acme", "guests", "g2", records.Input{Fields: map[string]json.RawMessage{"n": json.RawMessage(`2`)}}, false, false, 2)
	step("patch", err)
	step("delete", svc.Delete(ctx, custos, "acme", "guests", "g2"))
	if rounds = h.rounds() - r0; rounds != 0 {
		t.Fatalf("%d read-index rounds for a read, a create, a replace, a patch and a delete, want 0", rounds)
	}
	// A record written a moment ago may not be in the local state yet:
	// found by the linearizable retry, not a 404.
	in.ID = "g5"
	if _, err := svc.Create(ctx, custos, "acme", "guests", in); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, reader(5), "acme", "guests", "g5", false); err != nil {
		t.Fatalf("read right after the create: %v", err)
	}
	e.sync()

	// The record changes after the local read: the audit entry's condition
	// fails, nothing of that attempt is written, and the read is served
	// from a linearizable read — the new version.
	size := e.chainSize("acme")
	r0 = h.then(func() {
		if _, err := other.Replace(ctx, custos, "acme", "guests", "g1", email("new@acme.example"), 0); err != nil {
			t.Error(err)
		}
	})
	rec, err := svc.Get(ctx, reader(2), "acme", "guests", "g1", false)
	if err != nil || rec.Version != 2 || string(rec.Fields["email"]) != `"new@acme.example"` {
		t.Fatalf("read after a change behind it: %+v %v, want version 2", rec, err)
	}
	if n := h.rounds() - r0; n != 1 {
		t.Fatalf("%d rounds, want 1 (the retry)", n)
	}
	if got := e.reads("acme", size); !slices.Equal(got, []string{reader(2).RequestID}) {
		t.Fatalf("read entries %v, want exactly one for the read", got)
	}

	// A write without If-Match over a record changed behind it is retried
	// from a linearizable read (no spurious 412)...
	h.then(func() {
		if _, err := other.Replace(ctx, custos, "acme", "guests", "g1", email("x@acme.example"), 0); err != nil {
			t.Error(err)
		}
	})
	if rec, err := svc.Replace(ctx, custos, "acme", "guests", "g1", email("y@acme.example"), 0); err != nil || rec.Version != 4 {
		t.Fatalf("replace: %+v %v, want version 4", rec, err)
	}
	// ...but If-Match naming the version read locally is checked against
	// the current one: 412.
	h.then(func() {
		if _, err := other.Replace(ctx, custos, "acme", "guests", "g1", email("z@acme.example"), 0); err != nil {
			t.Error(err)
		}
	})
	if _, err := svc.Replace(ctx, custos, "acme", "guests", "g1", email("w@acme.example"), 4); !errors.Is(err, records.ErrVersion) {
		t.Fatalf("replace with If-Match of a superseded version: %v, want ErrVersion", err)
	}

	// The schema changes after a create read it: the create is validated
	// against the new schema (its condition failed, so it ran again).
	def := collections.Definition{Fields: []collections.Field{
		{Name: "email", Type: collections.TypeString, Required: true, Classification: collections.ClassPII, Index: true},
		{Name: "n", Type: collections.TypeNumber, Classification: collections.ClassInternal},
		{Name: "room", Type: collections.TypeString, Classification: collections.ClassInternal},
	}}
	h.then(func() {
		if _, _, err := e.colls.Put(ctx, custos, "acme", "guests", def, 0); err != nil {
			t.Error(err)
		}
	})
	in = email("d@acme.example")
	in.ID = "g3"
	if rec, err := svc.Create(ctx, custos, "acme", "guests", in); err != nil || rec.SchemaVersion != 2 {
		t.Fatalf("create across a schema change: %+v %v, want schema version 2", rec, err)
	}

	// A read with nothing sensitive is not trusted to the local schema:
	// email turned internal, then (behind the local read) pii again — the
	// read must be audited.
	def.Fields[0].Classification = collections.ClassInternal
	if _, _, err := e.colls.Put(ctx, custos, "acme", "guests", def, 0); err != nil {
		t.Fatal(err)
	}
	def.Fields[0].Classification = collections.ClassPII
	size = e.chainSize("acme")
	h.then(func() {
		if _, _, err := e.colls.Put(ctx, custos, "acme", "guests", def, 0); err != nil {
			t.Error(err)
		}
	})
	if _, err := svc.Get(ctx, reader(3), "acme", "guests", "g3", false); err != nil {
		t.Fatal(err)
	}
	if got := e.reads("acme", size); !slices.Equal(got, []string{reader(3).RequestID}) {
		t.Fatalf("read entries %v, want the read audited under the current schema", got)
	}

	// A record created behind the local read is found (not a stale 404).
	h.then(func() {
		in := email("e@acme.example")
		in.ID = "g4"
		if _, err := other.Create(ctx, custos, "acme", "guests", in); err != nil {
			t.Error(err)
		}
	})
	// (the hook runs after the local read, which did not see g4)
	if _, err := svc.Get(ctx, reader(4), "acme", "guests", "g4", false); err != nil {
		t.Fatalf("read of a record created behind the local read: %v", err)
	}
}

// TestWriteAnswersWhatReadsReturn: creates and replaces answer the record
// as a read returns it (their answer is built from the values sealed, not
// by decrypting them again).
func TestWriteAnswersWhatReadsReturn(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	svc := e.service()
	e.tenant(svc, "acme")
	ctx := context.Background()
	in := records.Input{ID: "g9", Subject: "guest-1", Attributes: map[string]string{"site": "x"},
		Fields: map[string]json.RawMessage{"email": json.RawMessage(`"  Jane <J@Example.com> "`), "n": json.RawMessage(`1.50`)}}
	created, err := svc.Create(ctx, custos, "acme", "guests", in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Get(ctx, reader(1), "acme", "guests", "g9", false)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(created)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("create answered %s, a read returns %s", a, b)
	}
	in.Fields["n"] = json.RawMessage(`2`)
	replaced, err := svc.Replace(ctx, custos, "acme", "guests", "g9", in, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = svc.Get(ctx, reader(2), "acme", "guests", "g9", false); err != nil {
		t.Fatal(err)
	}
	a, _ = json.Marshal(replaced)
	b, _ = json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("replace answered %s, a read returns %s", a, b)
	}
}

// TestSearchesAndSubjectLookupsAreAudited (issue 11): a blind-index search
// and a subject lookup reveal whether a person is known, so each leaves an
// entry — found or not — naming the value and the subject only by
// pseudonyms under the tenant's audit key; the searched value is
// pseudonymised as the index normalizes it, so the same person searched
// in other case matches. Concurrent ones share the batcher's transactions
// like reads.
func TestSearchesAndSubjectLookupsAreAudited(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	g := newGate(e.store)
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	svc := records.New(e.b, e.keys, e.colls, nil, records.WithReadAudit(b))
	close(g.hold) // no holding until the batching part
	e.tenant(svc, "acme")
	ctx := context.Background()
	in := records.Input{ID: "g2", Subject: "guest-7", Fields: map[string]json.RawMessage{"email": json.RawMessage(`"kim@acme.example"`)}}
	if _, err := svc.Create(ctx, custos, "acme", "guests", in); err != nil {
		t.Fatal(err)
	}
	akey, err := e.keys.AuditKey(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	size := e.chainSize("acme")

	ids, _, err := svc.Find(ctx, reader(1), "acme", "guests", "email", json.RawMessage(`" Jane@ACME.example"`), "", 10)
	if err != nil || !slices.Equal(ids, []string{"g1"}) {
		t.Fatalf("find: %v %v", ids, err)
	}
	if ids, _, err := svc.Find(ctx, reader(2), "acme", "guests", "email", json.RawMessage(`"nobody@acme.example"`), "", 10); err != nil || len(ids) != 0 {
		t.Fatalf("find nobody: %v %v", ids, err)
	}
	if held, err := svc.Subject(ctx, reader(3), "acme", "guest-7"); err != nil || len(held) != 1 {
		t.Fatalf("subject: %v %v", held, err)
	}
	if _, err := svc.Subject(ctx, reader(4), "acme", "guest-unknown"); !errors.Is(err, records.ErrNotFound) {
		t.Fatalf("unknown subject: %v", err)
	}

	searches := e.entries("acme", size, "record.search")
	if len(searches) != 2 {
		t.Fatalf("%d record.search entries, want 2", len(searches))
	}
	for i, want := range []struct{ value, results string }{{"jane@acme.example", "1"}, {"nobody@acme.example", "0"}} {
		s := searches[i].Entry
		if s.Target != "collection:guests" || s.Actor != reader(i+1).Actor() || s.RequestID != reader(i+1).RequestID ||
			s.Details["field"] != "email" || s.Details["value"] != audit.Pseudonym(akey, "value", want.value) || s.Details["results"] != want.results {
			t.Errorf("search %d: %+v", i+1, s)
		}
	}
	lookups := e.entries("acme", size, "subject.read")
	if len(lookups) != 2 {
		t.Fatalf("%d subject.read entries, want 2", len(lookups))
	}
	for i, want := range []struct{ subject, records string }{{"guest-7", "1"}, {"guest-unknown", "0"}} {
		l := lookups[i].Entry
		if l.Target != audit.Pseudonym(akey, "subject", want.subject) || l.Details["records"] != want.records || l.RequestID != reader(i+3).RequestID {
			t.Errorf("lookup %d: %+v", i+1, l)
		}
	}
	for _, en := range append(searches, lookups...) {
		raw := []byte(en.raw)
		for _, plain := range []string{"jane", "nobody", "guest-7", "guest-unknown"} {
			if bytes.Contains(bytes.ToLower(raw), []byte(plain)) {
				t.Errorf("entry holds %q: %s", plain, raw)
			}
		}
	}

	// Batched: searches and lookups queued behind a commit in flight share
	// one transaction.
	g2 := newGate(e.store)
	b2 := audit.NewBatcher(tenancy.New(g2), audit.BatchOptions{})
	defer b2.Close()
	svc2 := records.New(e.b, e.keys, e.colls, nil, records.WithReadAudit(b2))
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _, _ = svc2.Find(ctx, reader(10), "acme", "guests", "email", json.RawMessage(`"kim@acme.example"`), "", 10)
	})
	<-g2.entered
	const n = 20
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				_, _, _ = svc2.Find(ctx, reader(11+i), "acme", "guests", "email", json.RawMessage(`"kim@acme.example"`), "", 10)
			} else {
				_, _ = svc2.Subject(ctx, reader(11+i), "acme", "guest-7")
			}
		})
	}
	testkit.EventuallyEqual(t, "entries queued", b2.Queued, n)
	close(g2.hold)
	wg.Wait()
	if got := g2.txns(); !slices.Equal(got, []int{1, n}) {
		t.Fatalf("batched transactions of %v entries, want [1 %d]", got, n)
	}
}
