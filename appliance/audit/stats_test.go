package audit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

// TestTallyKey reads the day and the action of canonical entries, and
// declines anything else.
func TestTallyKey(t *testing.T) {
	e := audit.Entry{Time: time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC), Actor: audit.Actor{Type: audit.ActorUser, ID: `u"},"action":"x`},
		Action: "record.read", Target: "t", Outcome: audit.OutcomeSuccess, Details: map[string]string{"a": `},"action":"y"`}}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if k := audit.TallyKey(nil, b); string(k) != "2026-03-01/record.read" {
		t.Fatalf("key %q", k)
	}
	for _, bad := range []string{"", `{"v":1,"time":"`, `{"v":2,"time":"2026-03-01T00:00:00.000000000Z"}`,
		`{"v":1,"time":"2026-3-01T00:00:00Z","actor":{},"action":"a"}`, `{"v":1,"time":"2026-03-01T0","actor":{"id":"x"}}`,
		`{"v":1,"time":"2026-03-01T0","actor":{},"action":"Bad"}`, `{"v":1,"time":"2026-03-01T0","actor":{},"action":""}`} {
		if k := audit.TallyKey(nil, []byte(bad)); k != nil {
			t.Errorf("%q: key %q", bad, k)
		}
	}
}

// FuzzTallyKey: never a panic, and for every entry Decode accepts, the
// key is its day and action.
func FuzzTallyKey(f *testing.F) {
	e := entry(3, "")
	b, _ := e.Encode()
	f.Add(b)
	f.Add([]byte(`{"v":1,"time":"2026-03-01T00:00:00.000000000Z","actor":{"type":"user","id":"},\"action\":\""},"action":"a.b","target":"t","outcome":"success","request_id":"","source":"","details":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k := audit.TallyKey(nil, data)
		if e, err := audit.Decode(data); err == nil {
			if want := e.Time.UTC().Format(time.DateOnly) + "/" + e.Action; string(k) != want {
				t.Fatalf("key %q, want %q", k, want)
			}
		}
	})
}

// TestStats counts entries per day and action as they are appended, over
// a range of days, without reading the entries; pruned entries stay
// counted.
func TestStats(t *testing.T) {
	store := storetest.StartWith(t, storetest.Options{Dir: t.TempDir(), ChainTally: audit.TallyKey})
	svc := audit.New(store, nil, nil)
	ctx := context.Background()
	day0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	want := map[string]uint64{}
	txn := &raftstore.Txn{}
	for i := range 300 {
		e := entry(i, "")
		e.Time = day0.Add(time.Duration(i) * 2 * time.Hour) // 12 a day, 25 days
		a, err := audit.Record("tenant:acme", e)
		if err != nil {
			t.Fatal(err)
		}
		txn.Appends = append(txn.Appends, a)
		want[e.Time.Format(time.DateOnly)+"/"+e.Action]++
		if len(txn.Appends) == 64 || i == 299 {
			if res, err := store.Apply(ctx, txn); err != nil || !res.Applied {
				t.Fatalf("append: %+v %v", res, err)
			}
			txn = &raftstore.Txn{}
		}
	}
	if err := svc.PruneBefore(ctx, "tenant:acme", day0.AddDate(0, 0, 20)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to int }{{0, 0}, {0, 24}, {3, 9}, {24, 30}, {-10, -1}} {
		got, err := svc.Stats(ctx, raftstore.Linearizable, "tenant:acme", day0.AddDate(0, 0, c.from), day0.AddDate(0, 0, c.to).Add(5*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		w := map[string]uint64{}
		for d := c.from; d <= c.to; d++ {
			for _, a := range []string{"record.read", "record.write", "consent.grant"} {
				k := day0.AddDate(0, 0, d).Format(time.DateOnly) + "/" + a
				if want[k] > 0 {
					w[k] = want[k]
				}
			}
		}
		g := map[string]uint64{}
		last := ""
		for _, dc := range got {
			k := dc.Day + "/" + dc.Action
			if k <= last {
				t.Fatalf("not in order: %q after %q", k, last)
			}
			last, g[k] = k, dc.Count
		}
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("days %d..%d: %v, want %v", c.from, c.to, g, w)
		}
	}
	if _, err := svc.Stats(ctx, raftstore.Linearizable, "tenant:acme", day0, day0.AddDate(0, 0, audit.MaxStatsDays)); err == nil {
		t.Fatal("a range longer than MaxStatsDays")
	}
}
