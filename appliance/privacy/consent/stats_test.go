package consent_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/internal/validation"
)

// TestStats: the counters an append maintains give each day's grants,
// withdrawals and the rate of subjects whose grant is in force among
// those who decided — a withdrawal of all counting for every purpose
// resting on agreement, a repeated grant not counting a subject twice.
func TestStats(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	do := func(day int, kind, subject string, all bool, purposes ...string) {
		t.Helper()
		e.clock.set(march1.AddDate(0, 0, day))
		in := consent.Input{Subject: subject, Purposes: purposes, All: all, Source: consent.SourceWeb}
		var err error
		if kind == "grant" {
			_, err = e.svc.Grant(ctx, owner, "acme", in)
		} else {
			_, err = e.svc.Withdraw(ctx, owner, "acme", in)
		}
		if err != nil {
			t.Fatalf("day %d %s %s: %v", day, kind, subject, err)
		}
	}
	const ei = "enhanced-insights"
	do(0, "grant", "a", false, ei)
	do(0, "grant", "b", false, ei, "error-tracking")
	do(0, "withdraw", "c", false, ei)
	do(1, "withdraw", "a", false, ei)
	do(2, "withdraw", "b", true)
	do(2, "grant", "a", false, ei)
	do(2, "grant", "a", false, ei)

	st, err := e.svc.Stats(ctx, owner, "acme", 4, march1.AddDate(0, 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]consent.PurposeStats{}
	for _, p := range st {
		by[p.Purpose] = p
	}
	if _, ok := by["essential-analytics"]; ok || len(st) != 5 {
		t.Fatalf("purposes: %+v", st)
	}
	type day struct {
		g, w, granted, decided int64
		rate                   string
	}
	rate := func(d consent.DayStats) string {
		if d.Rate == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f", *d.Rate)
	}
	for _, tc := range []struct {
		purpose string
		want    []day
	}{
		{ei, []day{{2, 1, 2, 3, "66.7"}, {0, 1, 1, 3, "33.3"}, {2, 1, 1, 3, "33.3"}, {0, 0, 1, 3, "33.3"}}},
		{"error-tracking", []day{{1, 0, 1, 1, "100.0"}, {0, 0, 1, 1, "100.0"}, {0, 1, 0, 1, "0.0"}, {0, 0, 0, 1, "0.0"}}},
		{"user-research", []day{{0, 0, 0, 0, "-"}, {0, 0, 0, 0, "-"}, {0, 1, 0, 1, "0.0"}, {0, 0, 0, 1, "0.0"}}},
	} {
		got := by[tc.purpose].Days
		if len(got) != 4 || got[0].Day != "2026-03-01" || got[3].Day != "2026-03-04" {
			t.Fatalf("%s: days %+v", tc.purpose, got)
		}
		for i, w := range tc.want {
			d := got[i]
			if (day{d.Grants, d.Withdrawals, d.Granted, d.Decided, rate(d)}) != w {
				t.Errorf("%s %s: %+v rate %s, want %+v", tc.purpose, d.Day, d, rate(d), w)
			}
		}
	}
	// A window after the events: the totals carried, no events.
	st, _ = e.svc.Stats(ctx, owner, "acme", 2, march1.AddDate(0, 0, 40))
	for _, p := range st {
		if p.Purpose == ei && (p.Days[1].Granted != 1 || p.Days[1].Grants != 0 || rate(p.Days[1]) != "33.3") {
			t.Fatalf("carried: %+v", p.Days)
		}
	}

	scoped := owner
	scoped.Scopes = map[string][]string{"property": {"villa-a"}}
	if _, err := e.svc.Stats(ctx, scoped, "acme", 7, march1); !errors.Is(err, consent.ErrScoped) {
		t.Fatalf("a scoped principal: %v", err)
	}
	if _, err := e.svc.Stats(ctx, stranger, "acme", 7, march1); !errors.Is(err, consent.ErrNoTenant) {
		t.Fatalf("another tenant's principal: %v", err)
	}
	for _, days := range []int{0, consent.MaxStatsDays + 1} {
		var fe *validation.FieldError
		if _, err := e.svc.Stats(ctx, owner, "acme", days, march1); !errors.As(err, &fe) {
			t.Fatalf("days=%d: %v", days, err)
		}
	}
}

// TestStatsConcurrent: grants of many subjects at once (each append
// conditioned on the counters it read) are each counted once.
func TestStatsConcurrent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.svc.Grant(ctx, owner, "acme", consent.Input{Subject: fmt.Sprintf("s-%d", i), Purposes: []string{"error-tracking"}, Source: consent.SourceAPI})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.svc.Stats(ctx, audit.System(), "acme", 1, march1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st {
		if p.Purpose == "error-tracking" && (p.Days[0].Grants != n || p.Days[0].Granted != n || p.Days[0].Decided != n) {
			t.Fatalf("after %d concurrent grants: %+v", n, p.Days[0])
		}
	}
}
