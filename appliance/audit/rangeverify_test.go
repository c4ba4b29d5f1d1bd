package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/raftstore"
)

// evidence fetches what a client of the API would for seq from..to of
// chain: the latest checkpoint, the entries, their inclusion proofs at the
// checkpoint's size, and (kept != nil) the consistency proof from kept.
func (e *env) evidence(chain string, from, to uint64, kept []byte) audit.RangeEvidence {
	e.t.Helper()
	ctx := context.Background()
	cpMsg, err := e.svc.Latest(ctx, raftstore.Linearizable, chain)
	if err != nil {
		e.t.Fatal(err)
	}
	cp, err := audit.OpenCheckpoint(cpMsg, e.v)
	if err != nil {
		e.t.Fatal(err)
	}
	ev := audit.RangeEvidence{Chain: chain, From: from, To: to, Checkpoint: cpMsg, Kept: kept}
	items, _, err := e.svc.List(ctx, raftstore.Linearizable, chain, audit.Filter{}, from-1, int(to-from+1))
	if err != nil {
		e.t.Fatal(err)
	}
	ev.Entries = items
	for _, it := range items {
		p, err := e.svc.ProveInclusion(ctx, chain, it.Seq-1, cp.Size)
		if err != nil {
			e.t.Fatal(err)
		}
		ev.Inclusion = append(ev.Inclusion, p)
	}
	if kept != nil {
		k, err := audit.OpenCheckpoint(kept, e.v)
		if err != nil {
			e.t.Fatal(err)
		}
		if k.Size < cp.Size {
			p, err := e.svc.ProveConsistency(ctx, chain, k.Size, cp.Size)
			if err != nil {
				e.t.Fatal(err)
			}
			ev.Consistency = &p
		}
	}
	return ev
}

// TestVerifyRange verifies ranges of a real chain, then each kind of
// tampering or bad request, each named by its place.
func TestVerifyRange(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const chain = "tenant:acme"
	e.fill(chain, 0, 40, "")
	kept, err := e.svc.SignNow(ctx, chain)
	if err != nil {
		t.Fatal(err)
	}
	e.fill(chain, 40, 100, "")
	if _, err := e.svc.SignNow(ctx, chain); err != nil {
		t.Fatal(err)
	}

	rep, err := audit.VerifyRange(e.v, e.evidence(chain, 1, 100, kept))
	if err != nil {
		t.Fatalf("whole chain: %v", err)
	}
	if rep.Entries() != 100 || rep.Checkpoint.Size != 100 || rep.KeptSize != 40 || rep.Key != "custos-audit-test" || rep.KeyHash != e.v.KeyHash() {
		t.Fatalf("report: %+v", rep)
	}
	if _, err := audit.VerifyRange(e.v, e.evidence(chain, 37, 53, nil)); err != nil {
		t.Fatalf("a middle range: %v", err)
	}

	e.fill("tenant:other", 0, 3, "x")
	other, err := e.svc.SignNow(ctx, "tenant:other")
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		from   uint64
		to     uint64
		change func(*audit.RangeEvidence)
		place  string
		what   string
	}{
		{"from zero", 0, 5, nil, "range", "not a range"},
		{"backwards", 9, 5, nil, "range", "not a range"},
		{"beyond the checkpoint", 95, 101, nil, "range", "beyond the signed checkpoint"},
		{"another chain's checkpoint", 1, 3, func(ev *audit.RangeEvidence) { ev.Checkpoint = other }, "checkpoint", "origin"},
		{"a forged signature", 1, 3, func(ev *audit.RangeEvidence) {
			ev.Checkpoint = []byte(strings.Replace(string(ev.Checkpoint), "\n100\n", "\n99\n", 1))
		}, "checkpoint", "bad checkpoint"},
		{"an altered entry", 10, 12, func(ev *audit.RangeEvidence) {
			ev.Entries[1].Entry.Target = "guests/forged"
			ev.Entries[1].Raw, _ = ev.Entries[1].Entry.Encode()
		}, "entry 11", "proof is for other bytes"},
		{"an altered entry with its proof's bytes", 10, 12, func(ev *audit.RangeEvidence) {
			ev.Entries[1].Entry.Target = "guests/forged"
			ev.Entries[1].Raw, _ = ev.Entries[1].Entry.Encode()
			ev.Inclusion[1].Entry = ev.Entries[1].Raw
		}, "entry 11", "not in the checkpoint's tree"},
		{"fields that differ from the raw bytes", 10, 12, func(ev *audit.RangeEvidence) {
			ev.Entries[2].Entry.Actor.ID = "someone-else"
		}, "entry 12", "re-encode"},
		{"a gap", 10, 12, func(ev *audit.RangeEvidence) {
			ev.Entries[1], ev.Inclusion[1] = ev.Entries[2], ev.Inclusion[2]
		}, "entry 11", "without a gap"},
		{"a missing entry", 10, 12, func(ev *audit.RangeEvidence) {
			ev.Entries, ev.Inclusion = ev.Entries[:2], ev.Inclusion[:2]
		}, "range", "2 entries"},
		{"a proof of another index", 10, 12, func(ev *audit.RangeEvidence) { ev.Inclusion[0].Index = 3 }, "entry 10", "index 3"},
		{"a proof against another tree", 10, 12, func(ev *audit.RangeEvidence) { ev.Inclusion[0].Size = 50 }, "entry 10", "tree of 50"},
		{"a kept checkpoint of another chain", 1, 2, func(ev *audit.RangeEvidence) { ev.Kept = other }, "kept checkpoint", "origin"},
		{"a consistency proof missing", 1, 2, func(ev *audit.RangeEvidence) { ev.Kept = kept }, "consistency proof", "missing"},
		{"a consistency proof altered", 1, 2, func(ev *audit.RangeEvidence) {
			ev.Kept = kept
			p, err := e.svc.ProveConsistency(ctx, chain, 40, 100)
			if err != nil {
				t.Fatal(err)
			}
			p.Proof[0][0] ^= 1
			ev.Consistency = &p
		}, "consistency proof", "does not extend"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from, to := c.from, c.to
			// Fetch what exists, then ask about the range of the case.
			ev := e.evidence(chain, max(from, 1), min(max(to, from, 1), 100), nil)
			ev.From, ev.To = from, to
			if c.change != nil {
				c.change(&ev)
			}
			_, err := audit.VerifyRange(e.v, ev)
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || ve.Place != c.place || !strings.Contains(ve.What, c.what) {
				t.Fatalf("want %s: …%s…, got %v", c.place, c.what, err)
			}
		})
	}
}
