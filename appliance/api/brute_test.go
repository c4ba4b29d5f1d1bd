package api_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/ratelimit"
	"github.com/custos/custos/raftstore"
)

// Shipped login backoff: appliance/config's defaults of [ratelimit]
// login_*, as the node builds its ratelimit.Backoff from them.
const (
	accountFree  = 5
	baseDelay    = time.Second
	accountMax   = 15 * time.Minute
	backoffDecay = 10 * time.Minute
)

func shippedBackoff() *ratelimit.Backoff {
	return ratelimit.NewBackoff(ratelimit.BackoffConfig{
		Account:    ratelimit.BackoffLimits{Free: accountFree, Base: baseDelay, Max: accountMax, Decay: backoffDecay},
		Source:     ratelimit.BackoffLimits{Free: 20, Base: baseDelay, Max: time.Hour, Decay: backoffDecay},
		MaxTracked: 100_000,
	})
}

// chainEntries are the entries of a chain (tenancy.ChainOf(tenant),
// tenancy.SystemChain), in order.
func (e *env) chainEntries(tb testing.TB, chain string) []audit.Entry {
	tb.Helper()
	var out []audit.Entry
	err := e.store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.ChainEntries([]byte(chain), 1, func(_ uint64, _ [32]byte, data []byte) bool {
			en, err := audit.Decode(data)
			if err != nil {
				tb.Fatalf("%s entry: %v", chain, err)
			}
			out = append(out, en)
			return true
		})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// retryAfter is a 429 backoff answer's Retry-After, checked.
func retryAfter(t *testing.T, r response) time.Duration {
	t.Helper()
	checkProblem(t, r, http.StatusTooManyRequests, "rate-limited", "")
	n, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	return time.Duration(n) * time.Second
}

// Acceptance 6 (the guessing half; the latency half is the bench's
// TestBenchLoginFlood): 1,000 wrong passwords for one account, spread
// over 250 source addresses, through the API served on loopback with the
// node's argon2id hasher and its shipped backoff on the env's clock
// (advanced a second per guess). The account's backoff holds them: only
// the free failures and then one guess per doubling delay reach the
// hasher; every other guess — and the right password from a new source
// inside the window — gets 429 with Retry-After and no session. Each
// checked guess is a failure entry; the refusals are not an entry each
// (they would make a flood of guesses a flood of raft writes): each
// lockout window — the refusals between two checked attempts — is one
// lockout entry, at its first refusal and naming the account and that
// refusal's source, and the entry of the attempt that closes it carries
// the window's count and first and last refusal times, so every refusal
// is accounted for. Nothing is
// permanent: after the Retry-After the right password gets in, the
// account's last sources skip its delay (the package's promise against
// an attacker keeping the owner out), an Owner's unlock (audited) lets it
// in at once, and the failures decay.
func TestBruteForceBackoff(t *testing.T) {
	e := newEnv(t, api.Options{})
	bo := shippedBackoff()
	e.withBackoff(t, bo)
	e.mustCreate("acme", "Acme")
	base := e.live(t, api.Options{Now: e.now})
	owner := e.user(t, operatorPrincipal, "acme", "olivia", "owner")
	og, _ := e.enrolled(t, "acme", "olivia")
	maxUser := e.user(t, audit.Principal{Kind: audit.ActorUser, ID: owner.ID, Tenant: "acme", Role: "owner"}, "acme", "max", "manager")
	// From here the clock moves only when the test advances it: the first
	// delays are a second long, and a loaded machine can take longer than
	// that between a guess and the next attempt.
	e.freeze()
	// The lockout windows the attempts make, as the client sees them: a
	// run of 429s between two checked attempts (401 or 200). No source
	// here reaches its own delay, so the account's delay alone refuses,
	// and each window's hold ends at the attempt that closes it. A
	// refusal's time is known to lie between the clock's readings before
	// and after its request (equal while the clock is frozen).
	type span struct{ from, to time.Time }
	within := func(x time.Time, s span) bool { return !x.Before(s.from) && !x.After(s.to) }
	type window struct {
		count       int
		first, last span
	}
	var windows []window
	inWindow := false
	login := func(src, pass string) response {
		before := e.now()
		r := e.call(t, base, src, "POST", "/v1/auth/login", `{"tenant":"acme","username":"max","password":"`+pass+`"}`)
		switch r.status {
		case http.StatusTooManyRequests:
			if !inWindow {
				windows = append(windows, window{first: span{before, e.now()}})
				inWindow = true
			}
			w := &windows[len(windows)-1]
			w.count++
			w.last = span{before, e.now()}
		case http.StatusOK, http.StatusUnauthorized:
			inWindow = false
		}
		return r
	}
	signedIn := func(src string) {
		t.Helper()
		r := login(src, peoplePass)
		var tk tokens
		r.json(t, &tk)
		if r.status != http.StatusOK || tk.AccessToken == "" {
			t.Fatalf("right password from %s: %d %s", src, r.status, r.body)
		}
	}
	// max's usual address.
	const home = "127.0.0.2"
	signedIn(home)

	start := e.now()
	var checked, refused, probes int
	var lastRefusal time.Time
	var lastWait, longest time.Duration
	for i := range 1000 {
		e.advance(time.Second)
		src := fmt.Sprintf("127.0.1.%d", 1+i%250)
		r := login(src, fmt.Sprintf("guess number %04d", i))
		switch r.status {
		case http.StatusUnauthorized:
			checkProblem(t, r, http.StatusUnauthorized, "unauthorized", "")
			checked++
			// Retry-After rounds the wait up to a second; the decay
			// (10 min) is longer than any wait of this flood, so no
			// failure is forgotten inside one.
			if !lastRefusal.IsZero() && e.now().Before(lastRefusal.Add(lastWait-time.Second)) {
				t.Fatalf("guess %d was checked at +%s, before the %s a refusal at +%s gave", i, e.now().Sub(start), lastWait, lastRefusal.Sub(start))
			}
		case http.StatusTooManyRequests:
			refused++
			lastRefusal, lastWait = e.now(), retryAfter(t, r)
			longest = max(longest, lastWait)
		default:
			t.Fatalf("guess %d: %d %s", i, r.status, r.body)
		}
		if i%100 == 99 && checked >= accountFree {
			// The right password from an address never seen, in the
			// window: the backoff's answer, the password unchecked.
			probes++
			w := retryAfter(t, login(fmt.Sprintf("127.0.2.%d", probes), peoplePass))
			longest = max(longest, w)
		}
	}
	// Past the free failures, the k-th checked guess waited at least
	// base·2^(k-1) after the one before: k ≤ log2(elapsed/base + 1).
	elapsed := e.now().Sub(start)
	bound := accountFree + int(math.Log2(elapsed.Seconds()/baseDelay.Seconds()+1))
	t.Logf("1000 guesses over %s (env clock): %d checked (argon2id ran), %d refused unchecked; longest Retry-After %s", elapsed.Round(time.Second), checked, refused, longest)
	if checked+refused != 1000 || checked > bound || checked <= accountFree || probes != 10 {
		t.Fatalf("%d checked (bound %d), %d refused, %d probes", checked, bound, refused, probes)
	}
	if longest > accountMax {
		t.Fatalf("a Retry-After of %s: longer than the account's cap %s", longest, accountMax)
	}

	// The right password from a new address: refused for the window the
	// answer gives, then let in.
	w := retryAfter(t, login("127.0.3.1", peoplePass))
	e.advance(w)
	signedIn("127.0.3.2")

	// relock makes accountFree wrong guesses and checks that the next
	// attempt, the right password from a new address, is refused.
	n := 0
	relock := func() {
		t.Helper()
		for range accountFree {
			n++
			checkProblem(t, login(fmt.Sprintf("127.0.4.%d", n), "another wrong guess"), http.StatusUnauthorized, "unauthorized", "")
		}
		checked += accountFree
		n++
		retryAfter(t, login(fmt.Sprintf("127.0.4.%d", n), peoplePass))
	}
	// The account's known addresses skip its delay.
	relock()
	signedIn(home)
	// An Owner's unlock lets the account in at once.
	relock()
	if r := e.call(t, base, "127.0.0.3", "POST", "/v1/tenants/acme/users/"+maxUser.ID+"/unlock", "", bearer(og.AccessToken)); r.status != http.StatusOK {
		t.Fatalf("unlock: %d %s", r.status, r.body)
	}
	// (An unlock forgets the failures made up to its time: the next ones
	// come later.)
	e.advance(time.Second)
	signedIn("127.0.5.1")
	// Left alone, the failures decay: after an hour the free guesses are
	// free again (each checked, none refused).
	relock()
	e.advance(time.Hour)
	for i := range accountFree {
		checkProblem(t, login(fmt.Sprintf("127.0.5.%d", 10+i), "yet another guess"), http.StatusUnauthorized, "unauthorized", "")
	}
	checked += accountFree
	e.advance(time.Hour)
	signedIn("127.0.5.20")

	// The audit trail: each checked guess a failure, each lockout window
	// one lockout entry at its first refusal, both naming max and the
	// attempt's source; the window's count and times on the entry of the
	// attempt that closed it (a failure or a login), before the next
	// window's lockout; the unlock names the Owner.
	if inWindow || len(windows) == 0 {
		t.Fatalf("%d windows, the last one still open: %v", len(windows), inWindow)
	}
	var failures, lockouts, tallies, refusals, unlocks, logins int
	at := func(en audit.Entry, key string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, en.Details[key])
		if err != nil {
			t.Fatalf("%s of %+v: %v", key, en, err)
		}
		return v
	}
	for _, en := range e.chainEntries(t, "tenant:acme") {
		if en.Target != "user:"+maxUser.ID {
			continue
		}
		if en.Action == "session.login" && en.Details["refused"] != "" {
			n, err := strconv.Atoi(en.Details["refused"])
			switch {
			case err != nil || tallies != lockouts-1 || en.Outcome == audit.OutcomeDenied:
				t.Errorf("refusals reported out of turn (%d reported, %d lockouts): %+v", tallies, lockouts, en)
			case n != windows[tallies].count || !within(at(en, "refused_first"), windows[tallies].first) || !within(at(en, "refused_last"), windows[tallies].last):
				t.Errorf("window %d: entry says %s refused between %s and %s; the client saw %+v", tallies, en.Details["refused"], en.Details["refused_first"], en.Details["refused_last"], windows[tallies])
			}
			tallies++
			refusals += n
		}
		switch {
		case en.Action == "session.login" && en.Outcome == audit.OutcomeFailure:
			failures++
		case en.Action == "session.login" && en.Outcome == audit.OutcomeDenied:
			if en.Details["reason"] != "backoff" || tallies != lockouts || lockouts >= len(windows) ||
				!within(en.Time, windows[lockouts].first) || !at(en, "retry_at").After(en.Time) {
				t.Errorf("lockout %d (%d windows reported): %+v", lockouts, tallies, en)
			}
			lockouts++
		case en.Action == "session.login" && en.Outcome == audit.OutcomeSuccess:
			logins++
			continue
		case en.Action == "user.unlock":
			unlocks++
			if en.Actor.Type != audit.ActorUser || en.Actor.ID != owner.ID || en.Source != "127.0.0.3" {
				t.Errorf("unlock entry: %+v", en)
			}
			continue
		default:
			continue
		}
		if en.Actor.Type != audit.ActorUser || en.Actor.ID != maxUser.ID || !strings.HasPrefix(en.Source, "127.") {
			t.Errorf("login entry: %+v", en)
		}
	}
	if failures != checked || lockouts != len(windows) || tallies != len(windows) || refusals != refused+probes+4 || unlocks != 1 || logins != 5 {
		t.Errorf("audited %d failures (want %d), %d lockouts and %d window counts (want %d), %d refusals counted (want %d), %d unlocks, %d logins (want 5)",
			failures, checked, lockouts, tallies, len(windows), refusals, refused+probes+4, unlocks, logins)
	}
	t.Logf("%d refusals audited as %d lockout windows", refusals, lockouts)
	var sessions struct{ Sessions []struct{ ID string } }
	e.call(t, base, "127.0.0.3", "GET", "/v1/tenants/acme/users/"+maxUser.ID+"/sessions", "", bearer(og.AccessToken)).json(t, &sessions)
	if len(sessions.Sessions) != 5 {
		t.Errorf("max has %d sessions, want the 5 logins'", len(sessions.Sessions))
	}
}
