package ratelimit

import (
	"strconv"
	"testing"
	"time"
)

// testBackoff: accounts get 3 free failures, then 1s doubling to 8s,
// forgetting one failure a minute; sources 5 free, then 1s doubling to
// 60s, one a minute.
func testBackoff(maxTracked int) *Backoff {
	return NewBackoff(BackoffConfig{
		Account:    BackoffLimits{Free: 3, Base: time.Second, Max: 8 * time.Second, Decay: time.Minute},
		Source:     BackoffLimits{Free: 5, Base: time.Second, Max: time.Minute, Decay: time.Minute},
		MaxTracked: maxTracked,
	})
}

// attempt is one step of a backoff scenario: at t0+at, account tries from
// source; want says whether Check lets it through (and then the attempt
// fails or succeeds) and, when it does not, how long it says to wait.
type attempt struct {
	at      time.Duration
	account string
	source  string
	ok      bool
	retry   time.Duration // when !ok
	succeed bool          // when ok: report Success, else Failure
	unlock  bool          // instead of an attempt: an admin unlock at t0+at
}

func TestBackoff(t *testing.T) {
	s := time.Second
	// fails are n failed attempts of account a from source src, at t0+at.
	fails := func(at time.Duration, src string, n int) []attempt {
		out := make([]attempt, n)
		for i := range out {
			out[i] = attempt{at: at, account: "a", source: src, ok: true}
		}
		return out
	}
	cat := func(parts ...[]attempt) []attempt {
		var out []attempt
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		steps []attempt
	}{
		{"free failures, then the delay doubles up to the cap", cat(
			fails(0, "s1", 3),
			[]attempt{
				{at: 0, account: "a", source: "s2", retry: s},
				{at: s, account: "a", source: "s2", ok: true},     // 4th failure: 2s
				{at: 2 * s, account: "a", source: "s3", retry: s}, // 1s of 2s left
				{at: 3 * s, account: "a", source: "s3", ok: true}, // 5th: 4s
				{at: 6 * s, account: "a", source: "s4", retry: s},
				{at: 7 * s, account: "a", source: "s4", ok: true},  // 6th: 8s (the cap)
				{at: 15 * s, account: "a", source: "s5", ok: true}, // 7th: still 8s
				{at: 22 * s, account: "a", source: "s6", retry: s}, // capped, never more
				{at: 23 * s, account: "a", source: "s6", ok: true}, // 8th
				{at: 31 * s, account: "a", source: "s7", ok: true, succeed: true},
				{at: 31 * s, account: "a", source: "s8", ok: true}, // success reset the account
			})},
		{"another account is not held back by a's failures", cat(
			fails(0, "s1", 3),
			[]attempt{{at: 0, account: "b", source: "s2", ok: true}},
		)},
		{"a source is held back on every account", []attempt{
			{account: "a", source: "x", ok: true}, {account: "b", source: "x", ok: true}, {account: "c", source: "x", ok: true},
			{account: "d", source: "x", ok: true}, {account: "e", source: "x", ok: true},
			{account: "f", source: "x", retry: s},
			{account: "f", source: "y", ok: true},
		}},
		{"failures decay, one per Decay", cat(
			fails(0, "s1", 3),
			[]attempt{
				{at: s, account: "a", source: "s2", ok: true},      // 4 failures
				{at: 30 * s, account: "a", source: "s2", ok: true}, // 5 failures now
				{at: 30*s + 2*s, account: "a", source: "s3", retry: 2 * s},
				// 2 minutes after the last failure two are forgotten: 3 left, 1s from the last.
				{at: 30*s + 2*time.Minute, account: "a", source: "s3", ok: true},
				// 4 failures; 4 minutes later all are gone.
				{at: 30*s + 6*time.Minute, account: "a", source: "s4", ok: true},
				{at: 30*s + 6*time.Minute, account: "a", source: "s4", ok: true},
				{at: 30*s + 6*time.Minute, account: "a", source: "s4", ok: true},
				{at: 30*s + 6*time.Minute, account: "a", source: "s4", retry: s},
			})},
		{"a source that logged in skips the account's delay", cat(
			[]attempt{{account: "a", source: "home", ok: true, succeed: true}},
			fails(s, "evil", 10)[:3],
			[]attempt{
				{at: s, account: "a", source: "evil", retry: s},
				{at: s, account: "a", source: "home", ok: true, succeed: true},
				{at: s, account: "a", source: "evil", ok: true},
			})},
		{"unlock forgets the failures before it, not after", cat(
			fails(0, "s1", 3),
			[]attempt{
				{at: s, account: "a", source: "s2", ok: true}, // 4 failures
				{at: 2 * s, account: "a", source: "s2", retry: s},
				{at: 2 * s, unlock: true, account: "a"},
				{at: 2 * s, account: "a", source: "s2", ok: true},
				{at: 3 * s, account: "a", source: "s2", ok: true},
				{at: 2*s + s/2, unlock: true, account: "a"}, // the unlock seen late on this node
				{at: 4 * s, account: "a", source: "s2", ok: true},
				{at: 4 * s, account: "a", source: "s2", retry: s}, // 2 after the unlock + 1: Free reached
			})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := testBackoff(100)
			for i, st := range tc.steps {
				now := t0.Add(st.at)
				if st.unlock {
					b.Unlock(st.account, now)
					continue
				}
				v := b.Check(st.account, st.source, now, true)
				retry, ok := v.RetryAfter, v.OK
				if ok != st.ok || (!ok && retry != st.retry) {
					t.Fatalf("step %d (%s from %s at +%s): ok=%v retry=%s, want ok=%v retry=%s", i, st.account, st.source, st.at, ok, retry, st.ok, st.retry)
				}
				switch {
				case ok && st.succeed:
					b.Success(st.account, st.source, now)
				case ok:
					b.Failure(st.account, st.source, now)
				}
			}
		})
	}
}

// TestBackoffReservesConcurrentAttempts: attempts checked but not yet
// reported count, so a burst of concurrent guesses is held as if they had
// come one after another; a reservation nobody reports expires.
func TestBackoffReservesConcurrentAttempts(t *testing.T) {
	b := testBackoff(100)
	for i := range 3 {
		if !b.Check("a", "s"+strconv.Itoa(i), t0, true).OK {
			t.Fatalf("free attempt %d refused", i)
		}
	}
	if v := b.Check("a", "s9", t0, true); v.OK || v.RetryAfter != time.Second {
		t.Fatalf("4th concurrent attempt: ok=%v retry=%s, want refused for 1s", v.OK, v.RetryAfter)
	}
	// One of them succeeds: the account is clear again.
	b.Success("a", "s0", t0)
	if !b.Check("a", "s9", t0, true).OK {
		t.Fatal("refused after a success")
	}
	// Reservations whose end is never reported stop counting.
	b2 := testBackoff(100)
	for i := range 3 {
		b2.Check("a", "s"+strconv.Itoa(i), t0, true)
	}
	later := t0.Add(pendingTimeout)
	for i := range 3 {
		if !b2.Check("a", "t"+strconv.Itoa(i), later, true).OK {
			t.Fatalf("attempt %d after pendingTimeout refused: unreported reservations still count", i)
		}
	}
}

// TestBackoffLockoutWindows: an account's refusals are grouped into
// windows — one opening refusal each, the rest only counted — and a
// window's tally (count, first and last refusal) is handed out once, after
// it closed: at the next attempt let through, or at a refusal after its
// hold ran out.
func TestBackoffLockoutWindows(t *testing.T) {
	s := time.Second
	b := testBackoff(100)
	for i := range 3 {
		b.Check("a", "s"+strconv.Itoa(i), t0, true)
		b.Failure("a", "s"+strconv.Itoa(i), t0)
	}
	refuse := func(account, source string, at time.Duration, opens bool) {
		t.Helper()
		v := b.Check(account, source, t0.Add(at), true)
		if v.OK || v.RetryAfter <= 0 || v.Opens != opens {
			t.Fatalf("%s from %s at +%s: %+v, want refused, opens=%v", account, source, at, v, opens)
		}
	}
	take := func(account string, want Refusals) {
		t.Helper()
		if got := b.TakeRefusals(account); got != want {
			t.Fatalf("refusals of %s: %+v, want %+v", account, got, want)
		}
	}
	refuse("a", "n1", 0, true)
	refuse("a", "n2", s/2, false)
	refuse("a", "n3", 9*s/10, false)
	take("a", Refusals{}) // the window is still open
	if !b.Check("a", "n4", t0.Add(s), true).OK {
		t.Fatal("refused after the delay")
	}
	take("a", Refusals{Count: 3, First: t0, Last: t0.Add(9 * s / 10)})
	take("a", Refusals{})           // handed out once
	b.Failure("a", "n4", t0.Add(s)) // 4 failures: 2s
	refuse("a", "n5", 2*s, true)

	// A window whose hold ran out with no attempt let through (the
	// source's own delay kept refusing) closes at the next refusal, which
	// opens another.
	for i := range 5 {
		k := strconv.Itoa(i)
		b.Check("x"+k, "src", t0, true)
		b.Failure("x"+k, "src", t0) // src: 5 failures, 1s
	}
	refuse("v", "src", 0, true)
	refuse("v", "src", s/2, false)
	if !b.Check("w", "src", t0.Add(s), true).OK {
		t.Fatal("src refused after its delay")
	}
	b.Failure("w", "src", t0.Add(s)) // src: 6 failures, 2s from +1s
	refuse("v", "src", 2*s, true)
	take("v", Refusals{Count: 2, First: t0, Last: t0.Add(s / 2)})

	// An account whose lockouts the caller does not record (a typed name
	// of nobody) is refused alike, and keeps no windows.
	if v := b.Check("junk", "src", t0.Add(2*s), false); v.OK || v.RetryAfter != s || v.Opens {
		t.Fatalf("unrecorded account: %+v, want refused for 1s, opening nothing", v)
	}
	if !b.Check("junk", "src", t0.Add(3*s), false).OK {
		t.Fatal("unrecorded account refused after its source's delay")
	}
	take("junk", Refusals{})

	// Taking the refusals of an account never tried tracks nothing.
	before, _ := b.Tracked()
	take("nobody", Refusals{})
	if after, _ := b.Tracked(); after != before {
		t.Fatalf("TakeRefusals of an unknown account: %d tracked, was %d", after, before)
	}
}

// TestBackoffNeverLocksForever: 1,000 failures from 1,000 sources leave
// the account waiting at most Account.Max — never more — and a right
// password is never let through before the delay has passed.
func TestBackoffNeverLocksForever(t *testing.T) {
	b := testBackoff(10_000)
	now := t0
	lets := 0
	for i := range 1000 {
		src := "s" + strconv.Itoa(i)
		v := b.Check("a", src, now, true)
		if retry := v.RetryAfter; !v.OK {
			if retry > 8*time.Second {
				t.Fatalf("attempt %d: wait %s beyond the cap", i, retry)
			}
			now = now.Add(retry)
			if b.Check("a", src, now.Add(-time.Nanosecond), true).OK {
				t.Fatalf("attempt %d let through before its wait", i)
			}
			if !b.Check("a", src, now, true).OK {
				t.Fatalf("attempt %d refused after its wait", i)
			}
		}
		lets++
		b.Failure("a", src, now)
	}
	// 3 free, then 1+2+4 s, then 8 s each: 1,000 guesses took ≈ 2.2 hours.
	if took := now.Sub(t0); took < 990*8*time.Second {
		t.Fatalf("1,000 guesses in %s", took)
	}
	if retry := b.Check("a", "owner", now, true).RetryAfter; retry > 8*time.Second {
		t.Fatalf("the owner waits %s after the attack", retry)
	}
	if !b.Check("a", "owner", now.Add(8*time.Second), true).OK {
		t.Fatal("the owner is locked out after the cap")
	}
}

// TestBackoffBounded: spraying usernames from many sources does not grow
// the tables beyond MaxTracked, and a backed-off account survives a spray
// of entries that hold nobody back.
func TestBackoffBounded(t *testing.T) {
	b := testBackoff(1000)
	for range 4 {
		b.Check("victim", "s", t0, true)
		b.Failure("victim", "s", t0)
	}
	for i := range 100_000 {
		k := strconv.Itoa(i)
		if b.Check("user"+k, "src"+k, t0, true).OK {
			b.Failure("user"+k, "src"+k, t0)
		}
	}
	if a, s := b.Tracked(); a > 1000 || s > 1000 {
		t.Fatalf("tracked %d accounts and %d sources, bound 1000", a, s)
	}
	if v := b.Check("victim", "new", t0.Add(time.Second), true); v.OK || v.RetryAfter != time.Second {
		t.Fatalf("victim after the spray: ok=%v retry=%s, want still held back (1s left)", v.OK, v.RetryAfter)
	}
	// Idle entries are dropped as the tables are used.
	later := t0.Add(24 * time.Hour)
	for range 1000 {
		b.Check("x", "y", later, true)
		b.Success("x", "y", later)
	}
	if a, s := b.Tracked(); a > 10 || s > 10 {
		t.Fatalf("a day later %d accounts and %d sources are tracked", a, s)
	}
}

func TestBackoffLimitsPanic(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a zero Free")
		}
	}()
	NewBackoff(BackoffConfig{Account: BackoffLimits{Base: 1, Max: 1, Decay: 1}, Source: BackoffLimits{Free: 1, Base: 1, Max: 1, Decay: 1}, MaxTracked: 1})
}
