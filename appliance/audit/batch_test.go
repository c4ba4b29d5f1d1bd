package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

// gateStore records the transactions a Batcher proposes. While hold is
// open its first Apply blocks, so that the test can queue entries behind a
// commit in flight; decide (nil: success) answers each call, or next
// (nil: none) does the real work.
type gateStore struct {
	mu      sync.Mutex
	calls   [][]raftstore.Append
	entered chan struct{}
	hold    chan struct{}
	decide  func(call int, appends []raftstore.Append) (raftstore.Result, error)
	next    audit.Store
}

func newGate() *gateStore {
	return &gateStore{entered: make(chan struct{}, 1024), hold: make(chan struct{})}
}

func (g *gateStore) Apply(ctx context.Context, t *raftstore.Txn) (raftstore.Result, error) {
	g.mu.Lock()
	n := len(g.calls)
	g.calls = append(g.calls, slices.Clone(t.Appends))
	g.mu.Unlock()
	g.entered <- struct{}{}
	if n == 0 {
		<-g.hold
	}
	if g.decide != nil {
		return g.decide(n, t.Appends)
	}
	if g.next != nil {
		return g.next.Apply(ctx, t)
	}
	return raftstore.Result{Applied: true, FailedCond: -1, Chains: make([]raftstore.ChainPos, len(t.Appends))}, nil
}

func (g *gateStore) View(ctx context.Context, c raftstore.Consistency, fn func(*raftstore.ReadTx) error) error {
	if g.next != nil {
		return g.next.View(ctx, c, fn)
	}
	return errors.New("gateStore: no reads")
}

func (g *gateStore) txns() [][]raftstore.Append {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.calls)
}

func readEntry(i int) audit.Entry {
	return audit.Entry{Time: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), Actor: audit.Actor{Type: audit.ActorAPIKey, ID: "k1"},
		Action: "record.read", Target: "record:guests/g1", Outcome: audit.OutcomeSuccess, RequestID: fmt.Sprintf("req-%d", i)}
}

// behindACommit appends entry 0, and once its transaction is proposed
// (and held), entries 1..n, each to the chain of scope chainOf(i); it releases the first
// commit when all n are queued and returns every Append's error.
func behindACommit(t *testing.T, b *audit.Batcher, g *gateStore, n int, chainOf func(int) tenancy.Scope) []error {
	t.Helper()
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = b.Append(context.Background(), chainOf(0), readEntry(0)) })
	<-g.entered
	for i := 1; i <= n; i++ {
		wg.Go(func() { errs[i] = b.Append(context.Background(), chainOf(i), readEntry(i)) })
	}
	testkit.EventuallyEqual(t, "entries queued", b.Queued, n)
	close(g.hold)
	wg.Wait()
	return errs
}

// scope is tenant's scope, which only names its chain to the batcher.
func scope(tenant string) tenancy.Scope { return tenancy.New(newGate()).Scope(tenant) }

func oneChain(int) tenancy.Scope { return scope("acme") }

func requestIDs(t *testing.T, as []raftstore.Append) []string {
	t.Helper()
	var ids []string
	for _, a := range as {
		e, err := audit.Decode(a.Data)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.RequestID)
	}
	slices.Sort(ids)
	return ids
}

// TestBatcherGroupsWhatArrivesDuringACommit: the first entry is proposed
// alone at once (no timer); the 50 that arrive while it commits share the
// next transaction, and every Append returns only after its commit.
func TestBatcherGroupsWhatArrivesDuringACommit(t *testing.T) {
	g := newGate()
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	errs := behindACommit(t, b, g, 50, oneChain)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	txns := g.txns()
	if len(txns) != 2 || len(txns[0]) != 1 || len(txns[1]) != 50 {
		t.Fatalf("transactions of %v entries, want [1 50]", lens(txns))
	}
	var want []string
	for i := 1; i <= 50; i++ {
		want = append(want, fmt.Sprintf("req-%d", i))
	}
	slices.Sort(want)
	if got := requestIDs(t, txns[1]); !slices.Equal(got, want) {
		t.Fatalf("second transaction holds %v", got)
	}
}

func lens(txns [][]raftstore.Append) []int {
	var out []int
	for _, t := range txns {
		out = append(out, len(t))
	}
	return out
}

// TestBatcherRefusedBatchFailsEveryEntry: a transaction the store refuses
// fails every entry in it (their reads must not be served).
func TestBatcherRefusedBatchFailsEveryEntry(t *testing.T) {
	g := newGate()
	g.decide = func(call int, as []raftstore.Append) (raftstore.Result, error) {
		if call == 1 {
			return raftstore.Result{FailedCond: -1, Err: fmt.Errorf("%w: test", raftstore.ErrChainUnwritable)}, nil
		}
		return raftstore.Result{Applied: true, FailedCond: -1, Chains: make([]raftstore.ChainPos, len(as))}, nil
	}
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	errs := behindACommit(t, b, g, 20, oneChain)
	if errs[0] != nil {
		t.Fatalf("first append: %v", errs[0])
	}
	for i, err := range errs[1:] {
		if !errors.Is(err, raftstore.ErrChainUnwritable) {
			t.Fatalf("append %d of the refused batch: %v, want ErrChainUnwritable", i+1, err)
		}
	}
	if n := len(g.txns()); n != 2 {
		t.Fatalf("%d transactions, want 2 (one chain: no retry)", n)
	}
}

// TestBatcherRefusalStaysWithItsChain: a refused batch of two tenants'
// entries is retried tenant by tenant; only the tenant whose chain refuses
// fails.
func TestBatcherRefusalStaysWithItsChain(t *testing.T) {
	g := newGate()
	bad := tenancy.ChainOf("bad")
	g.decide = func(_ int, as []raftstore.Append) (raftstore.Result, error) {
		for _, a := range as {
			if string(a.Chain) == bad {
				return raftstore.Result{FailedCond: -1, Err: fmt.Errorf("%w: test", raftstore.ErrChainUnwritable)}, nil
			}
		}
		return raftstore.Result{Applied: true, FailedCond: -1, Chains: make([]raftstore.ChainPos, len(as))}, nil
	}
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	chainOf := func(i int) tenancy.Scope {
		if i%2 == 1 {
			return scope("bad")
		}
		return scope("good")
	}
	errs := behindACommit(t, b, g, 20, chainOf)
	for i, err := range errs {
		if chainOf(i).ID() == "bad" {
			if !errors.Is(err, raftstore.ErrChainUnwritable) {
				t.Fatalf("append %d (bad chain): %v", i, err)
			}
		} else if err != nil {
			t.Fatalf("append %d (good chain): %v", i, err)
		}
	}
	if got := lens(g.txns()); !slices.Equal(got, []int{1, 20, 10, 10}) {
		t.Fatalf("transactions of %v entries, want [1 20 10 10]", got)
	}
}

// TestBatcherUnknownOutcomeIsNotRetried: when the store cannot say whether
// the transaction was written, every entry fails and nothing is re-sent.
func TestBatcherUnknownOutcomeIsNotRetried(t *testing.T) {
	g := newGate()
	g.decide = func(call int, as []raftstore.Append) (raftstore.Result, error) {
		if call == 1 {
			return raftstore.Result{}, fmt.Errorf("%w: test", raftstore.ErrTimeout)
		}
		return raftstore.Result{Applied: true, FailedCond: -1, Chains: make([]raftstore.ChainPos, len(as))}, nil
	}
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	errs := behindACommit(t, b, g, 10, func(i int) tenancy.Scope { return scope(fmt.Sprint("t", i%3)) })
	for i, err := range errs[1:] {
		if !errors.Is(err, raftstore.ErrTimeout) {
			t.Fatalf("append %d: %v, want ErrTimeout", i+1, err)
		}
	}
	if n := len(g.txns()); n != 2 {
		t.Fatalf("%d transactions, want 2", n)
	}
}

// TestBatcherLimits: batches stop at MaxEntries and at MaxBytes.
func TestBatcherLimits(t *testing.T) {
	g := newGate()
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{MaxEntries: 4})
	behindACommit(t, b, g, 10, oneChain)
	b.Close()
	if got := lens(g.txns()); !slices.Equal(got, []int{1, 4, 4, 2}) {
		t.Fatalf("MaxEntries 4: transactions of %v entries, want [1 4 4 2]", got)
	}
	data, err := readEntry(10).Encode()
	if err != nil {
		t.Fatal(err)
	}
	g = newGate()
	b = audit.NewBatcher(tenancy.New(g), audit.BatchOptions{MaxBytes: 2*(len(tenancy.ChainOf("acme"))+len(data)) + 1})
	behindACommit(t, b, g, 5, oneChain)
	b.Close()
	if got := lens(g.txns()); !slices.Equal(got, []int{1, 2, 2, 1}) {
		t.Fatalf("MaxBytes of two entries: transactions of %v entries, want [1 2 2 1]", got)
	}
}

// TestBatcherWithdrawsCancelledEntry: an Append whose context ends while
// its entry is queued returns at once, and the entry is not proposed.
func TestBatcherWithdrawsCancelledEntry(t *testing.T) {
	g := newGate()
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := b.Append(context.Background(), oneChain(0), readEntry(0)); err != nil {
			t.Errorf("first: %v", err)
		}
	})
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Append(ctx, oneChain(0), readEntry(99)) }()
	testkit.EventuallyEqual(t, "entries queued", b.Queued, 1)
	cancel()
	if err := <-done; !errors.Is(err, raftstore.ErrTimeout) {
		t.Fatalf("cancelled append: %v, want ErrTimeout", err)
	}
	if n := b.Queued(); n != 0 {
		t.Fatalf("%d queued after the cancel, want 0", n)
	}
	for i := 1; i <= 3; i++ {
		wg.Go(func() {
			if err := b.Append(context.Background(), oneChain(i), readEntry(i)); err != nil {
				t.Errorf("append %d: %v", i, err)
			}
		})
	}
	testkit.EventuallyEqual(t, "entries queued", b.Queued, 3)
	close(g.hold)
	wg.Wait()
	txns := g.txns()
	if len(txns) != 2 {
		t.Fatalf("transactions of %v entries, want [1 3]", lens(txns))
	}
	if got := requestIDs(t, txns[1]); !slices.Equal(got, []string{"req-1", "req-2", "req-3"}) {
		t.Fatalf("second transaction holds %v (the withdrawn req-99 must not be there)", got)
	}
}

// TestBatcherCloseCommitsQueued: Close lets what is queued commit, then
// refuses new entries; an idle batcher starts again on the next Append.
func TestBatcherCloseCommitsQueued(t *testing.T) {
	g := newGate()
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	var wg sync.WaitGroup
	errs := make([]error, 6)
	wg.Go(func() { errs[0] = b.Append(context.Background(), oneChain(0), readEntry(0)) })
	<-g.entered
	for i := 1; i < 6; i++ {
		wg.Go(func() { errs[i] = b.Append(context.Background(), oneChain(i), readEntry(i)) })
	}
	testkit.EventuallyEqual(t, "entries queued", b.Queued, 5)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned with a commit in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(g.hold)
	<-closed
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("append %d queued before Close: %v", i, err)
		}
	}
	if err := b.Append(context.Background(), oneChain(0), readEntry(7)); !errors.Is(err, audit.ErrBatcherClosed) || !errors.Is(err, raftstore.ErrClosed) {
		t.Fatalf("append after Close: %v", err)
	}

	// Idle, then busy again: the committer restarts without a timer.
	g = newGate()
	close(g.hold)
	b = audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	for i := range 3 {
		if err := b.Append(context.Background(), oneChain(0), readEntry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := lens(g.txns()); !slices.Equal(got, []int{1, 1, 1}) {
		t.Fatalf("sequential appends: transactions of %v entries, want [1 1 1]", got)
	}
}

// TestBatcherRealStore: concurrent appends through a real store write
// exactly one chain entry each, in fewer transactions than entries — counted
// by the store's revision, which every applied transaction advances by one.
func TestBatcherRealStore(t *testing.T) {
	store := storetest.Start(t)
	g := newGate()
	g.next = store
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{})
	defer b.Close()
	ctx := context.Background()
	probe := func() uint64 {
		res, err := store.Apply(ctx, &raftstore.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut, Bucket: raftstore.Path("probe"), Key: []byte("k"), Value: []byte("v")}}})
		if err != nil || !res.Applied {
			t.Fatalf("probe: %+v %v", res, err)
		}
		return res.Revision
	}
	const n = 200
	chain := tenancy.ChainOf("acme")
	before := probe()
	errs := behindACommit(t, b, g, n-1, oneChain)
	after := probe()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if txns := after - before - 1; txns != 2 {
		t.Fatalf("%d entries took %d transactions, want 2", n, txns)
	}
	seen := map[string]bool{}
	err := store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		if size, _ := r.ChainHead([]byte(chain)); size != n {
			return fmt.Errorf("chain has %d entries, want %d", size, n)
		}
		var derr error
		r.ChainEntries([]byte(chain), 1, func(seq uint64, _ [32]byte, data []byte) bool {
			e, err := audit.Decode(data)
			if err != nil {
				derr = err
				return false
			}
			seen[e.RequestID] = true
			return true
		})
		return derr
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("%d distinct entries, want %d", len(seen), n)
	}
}

// TestBatcherConditionFailsOnlyItsEntry: an entry whose condition does not
// hold fails alone with ErrCondition; the others of its batch are proposed
// again and written.
func TestBatcherConditionFailsOnlyItsEntry(t *testing.T) {
	g := newGate()
	cond := func(key string) raftstore.Cond {
		return raftstore.Cond{Kind: raftstore.CondVersion, Bucket: raftstore.Path("b"), Key: []byte(key), Version: 1}
	}
	b := audit.NewBatcher(tenancy.New(&condGate{gateStore: g}), audit.BatchOptions{})
	defer b.Close()
	stale := map[int]bool{3: true, 7: true}
	errs := make([]error, 11)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = b.Append(context.Background(), oneChain(0), readEntry(0)) })
	<-g.entered
	for i := 1; i <= 10; i++ {
		key := "ok"
		if stale[i] {
			key = "stale"
		}
		wg.Go(func() {
			if i%2 == 0 && !stale[i] {
				errs[i] = b.Append(context.Background(), oneChain(i), readEntry(i)) // no condition
				return
			}
			errs[i] = b.AppendIf(context.Background(), oneChain(i), readEntry(i), cond(key))
		})
	}
	testkit.EventuallyEqual(t, "entries queued", b.Queued, 10)
	close(g.hold)
	wg.Wait()
	for i, err := range errs {
		if stale[i] {
			if !errors.Is(err, audit.ErrCondition) {
				t.Fatalf("entry %d (stale): %v, want ErrCondition", i, err)
			}
		} else if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	if got := lens(g.txns()); !slices.Equal(got, []int{1, 10, 9, 8}) {
		t.Fatalf("transactions of %v entries, want [1 10 9 8]", got)
	}
	if got := requestIDs(t, g.txns()[3]); slices.Contains(got, "req-3") || slices.Contains(got, "req-7") {
		t.Fatalf("the written transaction holds a stale entry: %v", got)
	}
}

// TestBatcherConditionRoundsBounded: after a few failed conditions, every
// entry with conditions fails at once and those without are written, so
// a batch takes a bounded number of transactions.
func TestBatcherConditionRoundsBounded(t *testing.T) {
	g := newGate()
	b := audit.NewBatcher(tenancy.New(&condGate{gateStore: g}), audit.BatchOptions{})
	defer b.Close()
	stale := raftstore.Cond{Kind: raftstore.CondVersion, Bucket: raftstore.Path("b"), Key: []byte("stale"), Version: 1}
	errs := make([]error, 11)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = b.Append(context.Background(), oneChain(0), readEntry(0)) })
	<-g.entered
	for i := 1; i <= 10; i++ {
		wg.Go(func() {
			if i%2 == 0 {
				errs[i] = b.Append(context.Background(), oneChain(i), readEntry(i))
			} else {
				errs[i] = b.AppendIf(context.Background(), oneChain(i), readEntry(i), stale)
			}
		})
	}
	testkit.EventuallyEqual(t, "entries queued", b.Queued, 10)
	close(g.hold)
	wg.Wait()
	for i, err := range errs {
		if i%2 == 1 && !errors.Is(err, audit.ErrCondition) || i%2 == 0 && err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	if got := lens(g.txns()); !slices.Equal(got, []int{1, 10, 9, 8, 5}) {
		t.Fatalf("transactions of %v entries, want [1 10 9 8 5]", got)
	}
}

// condGate fails a transaction on its first condition keyed "stale", as
// raftstore reports a condition that does not hold (nothing written).
type condGate struct{ *gateStore }

func (c *condGate) Apply(ctx context.Context, t *raftstore.Txn) (raftstore.Result, error) {
	res, err := c.gateStore.Apply(ctx, t)
	for i, cd := range t.Conds {
		if string(cd.Key) == "stale" {
			return raftstore.Result{FailedCond: i}, nil
		}
	}
	return res, err
}

// TestBatcherMaxInFlight: with MaxInFlight 2, an entry that arrives while
// one commit is in flight is proposed at once in a second one.
func TestBatcherMaxInFlight(t *testing.T) {
	g := newGate()
	b := audit.NewBatcher(tenancy.New(g), audit.BatchOptions{MaxInFlight: 2})
	defer b.Close()
	first := make(chan error, 1)
	go func() { first <- b.Append(context.Background(), oneChain(0), readEntry(0)) }()
	<-g.entered
	if err := b.Append(context.Background(), oneChain(1), readEntry(1)); err != nil {
		t.Fatalf("second entry, with the first commit held: %v", err)
	}
	close(g.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := lens(g.txns()); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("transactions of %v entries, want [1 1]", got)
	}
}
