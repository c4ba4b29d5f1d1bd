package retention_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/privacy/retention"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// custos is the principal the tests write and read as: Custos itself,
// which reads every field in clear.
var custos = audit.System()

var operator = audit.Principal{Kind: audit.ActorOperator, ID: "operator"}

// t0 is when the tests' records are written.
var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// clock is the cluster's shortened clock: every service of every node
// reads it, and the test moves it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// node is one node's services.
type node struct {
	store *raftstore.Store
	recs  *records.Service
	colls *collections.Service
	ten   *tenants.Service
	keys  *keyring.Hierarchy
	cons  *consent.Service
	sweep *retention.Sweeper
}

// cluster is three nodes sharing a clock, tenant acme on them.
type cluster struct {
	nodes []*node
	clock *clock
}

func newCluster(t *testing.T, cfg retention.Config) *cluster {
	t.Helper()
	c := storetest.NewCluster(t, 3)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	cl := &cluster{clock: &clock{t: t0}}
	for _, s := range c.Nodes {
		b := tenancy.New(s)
		keys := keyring.NewHierarchy(b, keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id},
			System: audit.System(), Pseudonym: audit.Pseudonym})
		cons := consent.New(b, keys, cl.clock.now)
		colls := collections.New(b, cl.clock.now, collections.WithPurposes(cons))
		recs := records.New(b, keys, colls, cl.clock.now)
		ten := tenants.New(b, storetest.Region, tenants.WithKeys(keys))
		nc := cfg
		nc.Now, nc.IsLeader, nc.Tenants, nc.TenantDays = cl.clock.now, s.IsLeader, ten.IDs, ten.RecordRetentionDays
		nc.Withdrawals = retention.WithdrawalConfig{Marks: cons, Subjects: recs, Keys: keys}
		cl.nodes = append(cl.nodes, &node{store: s, recs: recs, colls: colls, ten: ten, keys: keys, cons: cons, sweep: retention.New(b, recs, colls, nc)})
	}
	if _, err := cl.nodes[0].ten.Create(context.Background(), operator, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	return cl
}

// leader is the node that leads now.
func (cl *cluster) leader(t *testing.T) *node {
	t.Helper()
	var out *node
	testkit.Eventually(t, "a leader", func() bool {
		for _, n := range cl.nodes {
			if n.store.IsLeader() {
				out = n
				return true
			}
		}
		return false
	})
	return out
}

// sweep runs one whole sweep on the cluster: a leader that steps down
// (a loaded machine) stops its sweep and the next leader's goes on, as
// Run's next tick would. It returns what the sweeps did together.
func (cl *cluster) sweep(t *testing.T) retention.Report {
	t.Helper()
	var total retention.Report
	for range 10 {
		rep, err := cl.leader(t).sweep.Sweep(context.Background())
		total.Erased += rep.Erased
		total.Anonymised += rep.Anonymised
		total.Withdrawals += rep.Withdrawals
		total.Transactions += rep.Transactions
		if err == nil {
			return total
		}
		if !errors.Is(err, retention.ErrNotLeader) && !errors.Is(err, raftstore.ErrNoLeader) && !errors.Is(err, raftstore.ErrNotLeader) {
			t.Fatalf("sweep: %v", err)
		}
		t.Logf("sweep interrupted by a leader change: %v", err)
	}
	t.Fatal("no whole sweep in 10 tries")
	return total
}

// define puts a collection with an indexed pii field (email) and an
// internal one (n).
func (cl *cluster) define(t *testing.T, name string, days int) {
	t.Helper()
	def := collections.Definition{RetentionDays: days, Fields: []collections.Field{
		{Name: "email", Type: collections.TypeString, Classification: collections.ClassPII, Index: true},
		{Name: "n", Type: collections.TypeNumber, Classification: collections.ClassInternal},
	}}
	if _, _, err := cl.nodes[0].colls.Put(context.Background(), custos, "acme", name, def, 0); err != nil {
		t.Fatal(err)
	}
}

// put writes (creates or replaces) record id of collection at the
// clock's time, through node i.
func (cl *cluster) put(t *testing.T, i int, collection, id, subject string) {
	t.Helper()
	in := records.Input{ID: id, Subject: subject, Fields: map[string]json.RawMessage{
		"email": json.RawMessage(`"` + id + `@acme.example"`), "n": json.RawMessage(`1`)}}
	ctx := context.Background()
	_, err := cl.nodes[i].recs.Create(ctx, custos, "acme", collection, in)
	if errors.Is(err, records.ErrExists) {
		_, err = cl.nodes[i].recs.Replace(ctx, custos, "acme", collection, id, in, 0)
	}
	if err != nil {
		t.Fatalf("put %s/%s: %v", collection, id, err)
	}
}

// present reports, for each node, whether collection/id reads and is
// found by its blind index, failing on anything but found or not found.
func (cl *cluster) present(t *testing.T, collection, id string) []bool {
	t.Helper()
	ctx := context.Background()
	out := make([]bool, len(cl.nodes))
	for i, n := range cl.nodes {
		_, err := n.recs.Get(ctx, custos, "acme", collection, id, false)
		switch {
		case err == nil:
			out[i] = true
		case errors.Is(err, records.ErrNotFound):
		default:
			t.Fatalf("node %d: get %s/%s: %v", i+1, collection, id, err)
		}
		ids, _, err := n.recs.Find(ctx, custos, "acme", collection, "email", json.RawMessage(`"`+id+`@acme.example"`), "", 10)
		if err != nil {
			t.Fatalf("node %d: find %s/%s: %v", i+1, collection, id, err)
		}
		if found := slices.Contains(ids, id); found != out[i] {
			t.Fatalf("node %d: %s/%s reads %v but its blind index finds it %v", i+1, collection, id, out[i], found)
		}
	}
	return out
}

// sweeps are the retention.sweep entries of acme's chain on node i.
func (cl *cluster) sweeps(t *testing.T, i int) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	err := cl.nodes[i].store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		var derr error
		r.ChainEntries([]byte(tenancy.ChainOf("acme")), 1, func(_ uint64, _ [32]byte, data []byte) bool {
			e, err := audit.Decode(data)
			if err != nil {
				derr = err
				return false
			}
			if e.Action == "retention.sweep" {
				out = append(out, e)
			}
			return true
		})
		return derr
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sweepEntry is what the tests compare of a retention.sweep entry.
type sweepEntry struct {
	Target, Count, Cutoff, Days, Basis string
}

func summary(es []audit.Entry) []sweepEntry {
	out := []sweepEntry{}
	for _, e := range es {
		if e.Actor.Type != audit.ActorSystem || e.Outcome != audit.OutcomeSuccess {
			panic(fmt.Sprintf("sweep entry not the system's success: %+v", e))
		}
		out = append(out, sweepEntry{e.Target, e.Details["count"], e.Details["cutoff"], e.Details["retention_days"], e.Details["basis"]})
	}
	return out
}

// TestSweepOnCluster is acceptance 5 on a real three-node cluster whose
// clock the test moves: records past their retention — the collection's
// own, or the tenant's default for a subject's records — are erased by
// the leader's sweeper in bounded transactions, each with one audit
// entry; every node then answers for them as for records that never
// existed (get and blind-index find); the others remain.
func TestSweepOnCluster(t *testing.T) {
	cl := newCluster(t, retention.Config{Interval: 50 * time.Millisecond, Batch: 2, Pause: -1})
	ctx := context.Background()
	cl.define(t, "calls", 30)   // its own retention: 30 days, subject or not
	cl.define(t, "guests", 0)   // the tenant's default, for subjects' records
	cl.define(t, "rooms", 0)    // no subjects: kept
	cl.define(t, "ledger", 400) // longer than the tenant's default

	// At t0, through every node.
	for i, id := range []string{"c1", "c2", "c3", "c4", "c5"} {
		cl.put(t, i%3, "calls", id, map[bool]string{true: "g1"}[i%2 == 0])
	}
	for i, id := range []string{"g1", "g2", "g3"} {
		cl.put(t, i%3, "guests", id, id)
	}
	cl.put(t, 1, "guests", "walkin", "") // no subject: the tenant default does not apply
	cl.put(t, 2, "rooms", "r1", "")
	cl.put(t, 0, "ledger", "l1", "g1")
	// c5 is written again 20 days later: its age counts from then.
	cl.clock.set(t0.Add(20 * 24 * time.Hour))
	cl.put(t, 2, "calls", "c5", "g2")

	// The sweeper runs on every node; only the leader acts.
	run, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, n := range cl.nodes {
		wg.Go(func() { n.sweep.Run(run) })
	}
	t.Cleanup(func() { stop(); wg.Wait() })

	// 31 days after t0: calls c1..c4 expired (30 days), c5 has not.
	at31 := t0.Add(31 * 24 * time.Hour)
	cl.clock.set(at31)
	testkit.Eventually(t, "calls c1..c4 to be swept", func() bool { return len(cl.sweeps(t, 0)) == 2 })
	for _, id := range []string{"c1", "c2", "c3", "c4"} {
		if p := cl.present(t, "calls", id); slices.Contains(p, true) {
			t.Errorf("calls/%s still read on nodes %v", id, p)
		}
	}
	for _, r := range [][2]string{{"calls", "c5"}, {"guests", "g1"}, {"guests", "walkin"}, {"rooms", "r1"}, {"ledger", "l1"}} {
		if p := cl.present(t, r[0], r[1]); slices.Contains(p, false) {
			t.Errorf("%s/%s erased too soon: reads on nodes %v", r[0], r[1], p)
		}
	}
	cut31 := at31.Add(-30 * 24 * time.Hour).Format(time.RFC3339)
	want := []sweepEntry{
		{"collection:calls", "2", cut31, "30", "collection"},
		{"collection:calls", "2", cut31, "30", "collection"},
	}
	for i := range cl.nodes {
		if got := summary(cl.sweeps(t, i)); !slices.Equal(got, want) {
			t.Fatalf("node %d: sweep entries %+v, want %+v", i+1, got, want)
		}
	}

	// The tenant keeps subjects' records 300 days (not the default 365).
	// 366 days after t0 the subjects' guests and c5 have expired; the
	// walk-in without a subject, the room and the ledger (400 days)
	// remain.
	days := 300
	if _, err := cl.nodes[1].ten.Update(ctx, operator, "acme", tenants.Patch{RetentionDays: &days}); err != nil {
		t.Fatal(err)
	}
	at366 := t0.Add(366 * 24 * time.Hour)
	cl.clock.set(at366)
	testkit.Eventually(t, "guests and c5 to be swept", func() bool { return len(cl.sweeps(t, 0)) == 5 })
	for _, r := range [][2]string{{"calls", "c5"}, {"guests", "g1"}, {"guests", "g2"}, {"guests", "g3"}} {
		if p := cl.present(t, r[0], r[1]); slices.Contains(p, true) {
			t.Errorf("%s/%s still read on nodes %v", r[0], r[1], p)
		}
	}
	for _, r := range [][2]string{{"guests", "walkin"}, {"rooms", "r1"}, {"ledger", "l1"}} {
		if p := cl.present(t, r[0], r[1]); slices.Contains(p, false) {
			t.Errorf("%s/%s erased: reads on nodes %v", r[0], r[1], p)
		}
	}
	want = append(want,
		sweepEntry{"collection:calls", "1", at366.Add(-30 * 24 * time.Hour).Format(time.RFC3339), "30", "collection"},
		sweepEntry{"collection:guests", "2", at366.Add(-300 * 24 * time.Hour).Format(time.RFC3339), "300", "tenant"},
		sweepEntry{"collection:guests", "1", at366.Add(-300 * 24 * time.Hour).Format(time.RFC3339), "300", "tenant"},
	)
	for i := range cl.nodes {
		if got := summary(cl.sweeps(t, i)); !slices.Equal(got, want) {
			t.Fatalf("node %d: sweep entries %+v, want %+v", i+1, got, want)
		}
	}
	// g1 keeps only its ledger record; g2's and g3's subject listings are
	// empty on every node.
	for i, n := range cl.nodes {
		held, err := n.recs.Subject(ctx, custos, "acme", "g1")
		if err != nil || !slices.Equal(held, []records.Held{{Collection: "ledger", ID: "l1"}}) {
			t.Errorf("node %d: g1 holds %v, %v; want only ledger/l1", i+1, held, err)
		}
		for _, sub := range []string{"g2", "g3"} {
			if held, err := n.recs.Subject(ctx, custos, "acme", sub); !errors.Is(err, records.ErrNotFound) {
				t.Errorf("node %d: %s holds %v, %v; want nothing", i+1, sub, held, err)
			}
		}
	}
}

// TestRuleFor: which retention a collection's records get.
func TestRuleFor(t *testing.T) {
	for _, tc := range []struct {
		name       string
		own, tdays int
		want       retention.Rule
	}{
		{"own retention", 30, 0, retention.Rule{Collection: "c", Days: 30, Basis: retention.BasisCollection}},
		{"own retention over the tenant's", 30, 90, retention.Rule{Collection: "c", Days: 30, Basis: retention.BasisCollection}},
		{"longer than the tenant's", 3650, 90, retention.Rule{Collection: "c", Days: 3650, Basis: retention.BasisCollection}},
		{"none: the tenant's default", 0, 730, retention.Rule{Collection: "c", Days: 730, Basis: retention.BasisTenant, SubjectOnly: true}},
		{"none, tenant unset: a year", 0, 0, retention.Rule{Collection: "c", Days: 365, Basis: retention.BasisTenant, SubjectOnly: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retention.RuleFor(collections.Schema{Name: "c", RetentionDays: tc.own}, tc.tdays); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got := retention.RuleFor(collections.Schema{Name: "c", RetentionDays: tc.own}, tc.tdays).Cutoff(t0); !got.Equal(t0.Add(-time.Duration(tc.want.Days) * 24 * time.Hour)) {
				t.Errorf("cutoff %v", got)
			}
		})
	}
}

// rewriter is the real records service, which rewrites a record after
// the sweeper's scan found it expired and before its removal is built:
// the moment a client's write races the sweep.
type rewriter struct {
	*records.Service
	once func()
}

func (r *rewriter) Expired(ctx context.Context, tenant string, q records.ExpiredQuery) ([]records.Expiring, string, error) {
	found, next, err := r.Service.Expired(ctx, tenant, q)
	if len(found) > 0 && r.once != nil {
		r.once()
		r.once = nil
	}
	return found, next, err
}

// TestSweepSparesRecordRewrittenDuringIt: a record written again between
// the scan that found it expired and the transaction that would erase it
// is no longer expired, and stays; the rest of its batch is erased on the
// next try.
func TestSweepSparesRecordRewrittenDuringIt(t *testing.T) {
	cl := newCluster(t, retention.Config{})
	cl.define(t, "calls", 30)
	for _, id := range []string{"c1", "c2", "c3"} {
		cl.put(t, 0, "calls", id, "g1")
	}
	at := t0.Add(31 * 24 * time.Hour)
	cl.clock.set(at)
	lead := cl.leader(t)
	// The scan reads the leader's local state, which may not have
	// applied the last writes yet (a sweep then finds them the next
	// time): a linearizable read first brings it up to date.
	if err := lead.store.View(context.Background(), raftstore.Linearizable, func(*raftstore.ReadTx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	rw := &rewriter{Service: lead.recs, once: func() { cl.put(t, 1, "calls", "c2", "g1") }}
	s := retention.New(tenancy.New(lead.store), rw, lead.colls, retention.Config{Now: cl.clock.now, IsLeader: lead.store.IsLeader, Tenants: lead.ten.IDs})
	rep, err := s.Sweep(context.Background())
	if err != nil || rep.Erased != 2 || rep.Transactions != 1 {
		t.Fatalf("sweep: %+v, %v; want 2 erased in 1 transaction", rep, err)
	}
	for id, want := range map[string]bool{"c1": false, "c2": true, "c3": false} {
		if p := cl.present(t, "calls", id); slices.Contains(p, !want) {
			t.Errorf("calls/%s reads on nodes %v, want %v", id, p, want)
		}
	}
	want := []sweepEntry{{"collection:calls", "2", at.Add(-30 * 24 * time.Hour).Format(time.RFC3339), "30", "collection"}}
	if got := summary(cl.sweeps(t, 0)); !slices.Equal(got, want) {
		t.Fatalf("sweep entries %+v, want %+v", got, want)
	}
}
