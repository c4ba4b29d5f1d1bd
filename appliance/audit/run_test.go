package audit_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// The leader checkpoints a chain that grew once it is MaxEntries behind or
// MaxAge old, and a new chain at once; an idle chain gets no new one.
func TestRunnerCheckpointCadence(t *testing.T) {
	e := newEnv(t)
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	svc := audit.New(e.store, []age.Identity{e.id}, clk.now)
	r := audit.NewRunner(svc, audit.RunConfig{IsLeader: func() bool { return true }, MaxEntries: 100, MaxAge: time.Minute})
	ctx := context.Background()
	size := func() uint64 {
		msg, err := svc.Latest(ctx, raftstore.Linearizable, "system")
		if err != nil || msg == nil {
			t.Fatalf("latest: %v", err)
		}
		c, err := audit.OpenCheckpoint(msg, e.v)
		if err != nil {
			t.Fatal(err)
		}
		return c.Size
	}
	e.fill("system", 0, 10, "")
	if err := r.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if n := size(); n != 10 {
		t.Fatalf("a new chain: checkpoint at %d, want 10", n)
	}
	e.fill("system", 10, 60, "")
	r.Checkpoint(ctx)
	if n := size(); n != 10 {
		t.Fatalf("50 entries, 0 s later: checkpoint moved to %d", n)
	}
	e.fill("system", 60, 110, "")
	r.Checkpoint(ctx)
	if n := size(); n != 110 {
		t.Fatalf("100 entries behind: checkpoint at %d, want 110", n)
	}
	e.fill("system", 110, 115, "")
	clk.t = clk.t.Add(59 * time.Second)
	r.Checkpoint(ctx)
	if n := size(); n != 110 {
		t.Fatalf("59 s: checkpoint moved to %d", n)
	}
	clk.t = clk.t.Add(2 * time.Second)
	r.Checkpoint(ctx)
	if n := size(); n != 115 {
		t.Fatalf("61 s: checkpoint at %d, want 115", n)
	}
	clk.t = clk.t.Add(time.Hour)
	r.Checkpoint(ctx)
	if n := size(); n != 115 {
		t.Fatalf("idle chain re-signed at %d", n)
	}
}

// Retention: old entries go, with an audit.prune entry; the tree still
// verifies — exports start at the first kept entry, proofs of kept entries
// and consistency proofs still work, the self-check passes — and proofs of
// pruned entries say so.
func TestRetentionPrunes(t *testing.T) {
	e := newEnv(t)
	e.fill("tenant:acme", 0, 1000, "")
	e.checkpoint("tenant:acme")
	ctx := context.Background()
	clk := &clock{t: entry(999, "").Time.Add(time.Hour)}
	svc := audit.New(e.store, []age.Identity{e.id}, clk.now)
	keep := clk.t.Sub(entry(600, "").Time) // entries 0..599 are older
	r := audit.NewRunner(svc, audit.RunConfig{IsLeader: func() bool { return true }, Retention: func(_ context.Context, chain string) (time.Duration, error) {
		if chain == "tenant:acme" {
			return keep, nil
		}
		return 0, nil
	}})
	if err := r.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	items, _, err := svc.List(ctx, raftstore.Linearizable, "tenant:acme", audit.Filter{}, 0, 5)
	if err != nil || len(items) == 0 || items[0].Seq != 601 {
		t.Fatalf("after pruning the first entry is %+v (%v), want seq 601", items, err)
	}
	last, _, _ := svc.List(ctx, raftstore.Linearizable, "tenant:acme", audit.Filter{Action: "audit.prune"}, 0, 5)
	if len(last) != 1 || last[0].Seq != 1001 {
		t.Fatalf("prune entry: %+v", last)
	}
	if err := r.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	again, _, _ := svc.List(ctx, raftstore.Linearizable, "tenant:acme", audit.Filter{Action: "audit.prune"}, 0, 5)
	if len(again) != 1 {
		t.Fatalf("a second pass pruned again: %d prune entries", len(again))
	}
	var buf bytes.Buffer
	if err := svc.Export(ctx, "tenant:acme", time.Time{}, time.Time{}, &buf); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(bytes.NewReader(buf.Bytes()), e.v, nil)
	if err != nil || rep.First != 601 || rep.Size != 1001 {
		t.Fatalf("export after pruning: %+v %v", rep, err)
	}
	if _, err := svc.ProveInclusion(ctx, "tenant:acme", 700, 1001); err != nil {
		t.Fatalf("a kept entry's proof: %v", err)
	}
	if _, err := svc.ProveInclusion(ctx, "tenant:acme", 10, 1001); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("a pruned entry's proof: %v", err)
	}
	if _, err := svc.ProveConsistency(ctx, "tenant:acme", 50, 1001); err != nil {
		t.Fatalf("consistency across the pruned range: %v", err)
	}
	if rep := e.selfCheck(nil); !rep.OK {
		t.Fatalf("self-check after pruning: %s", problems(rep))
	}
}
