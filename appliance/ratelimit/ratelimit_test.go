package ratelimit

import (
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func TestBurstThenRate(t *testing.T) {
	tab := New(Limits{Rate: 2, Burst: 3}, 10)
	for i := range 3 {
		if ok, _ := tab.Allow("a", t0); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := tab.Allow("a", t0)
	if ok || retry != 500*time.Millisecond {
		t.Fatalf("over the burst: ok=%v retry=%s, want refused, 500ms", ok, retry)
	}
	if ok, _ := tab.Allow("b", t0); !ok {
		t.Fatal("another key shares a's bucket")
	}
	if ok, _ := tab.Allow("a", t0.Add(499*time.Millisecond)); ok {
		t.Fatal("a token before it was due")
	}
	if ok, _ := tab.Allow("a", t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("no token after it was due")
	}
}

func TestRetryAfterCeil(t *testing.T) {
	tab := New(Limits{Rate: 0.1, Burst: 1}, 10)
	tab.Allow("a", t0)
	if ok, retry := tab.Allow("a", t0.Add(time.Second)); ok || retry != 9*time.Second {
		t.Fatalf("ok=%v retry=%s, want refused, 9s", ok, retry)
	}
}

// TestBounded: 100,000 distinct keys arriving at once never make the table
// hold more than its maximum; the keys seen last are the ones kept.
func TestBounded(t *testing.T) {
	const max = 1000
	tab := New(Limits{Rate: 1, Burst: 1}, max)
	for i := range 100_000 {
		tab.Allow("10.0."+strconv.Itoa(i), t0)
		if n := tab.Len(); n > max {
			t.Fatalf("after %d keys the table holds %d > %d", i+1, n, max)
		}
	}
	if ok, _ := tab.Allow("10.0.99999", t0); ok {
		t.Fatal("the most recent key's bucket was forgotten")
	}
}

// TestIdleSwept: entries whose buckets have refilled are dropped, so a
// quiet table shrinks back without reaching its maximum.
func TestIdleSwept(t *testing.T) {
	tab := New(Limits{Rate: 10, Burst: 10}, 1000)
	for i := range 100 {
		tab.Allow(strconv.Itoa(i), t0)
	}
	later := t0.Add(time.Second) // 10 tokens at 10/s: full again
	for range 60 {
		tab.Allow("x", later)
	}
	if n := tab.Len(); n != 1 {
		t.Fatalf("table holds %d entries after the others went idle, want 1", n)
	}
}

func TestNewPanics(t *testing.T) {
	for _, c := range []struct {
		l   Limits
		max int
	}{{Limits{0, 1}, 1}, {Limits{1, 0}, 1}, {Limits{1, 1}, 0}, {Limits{-1, 1}, 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v, %d) did not panic", c.l, c.max)
				}
			}()
			New(c.l, c.max)
		}()
	}
}
