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
// inside the window — gets 429 with Retry-After, no session, and a
// lockout entry naming the account and the guess's source. Nothing is
// permanent: after the Retry-After the right password gets in, the
// account's last sources skip its delay (the package's promise against
// an attacker keeping the owner out), an Owner's unlock (audited) lets it
// in at once, and the failures decay.
func TestBruteForceBackoff(t *testing.T) {
	e := newEnv(t, api.Options{})
	bo := shippedBackoff()
	e.withBackoff(t, bo)
	e.mustCreate("acme", "Acme")
	base := e.live(t, api.Options{LoginBackoff: bo, Now: e.now})
	owner := e.user(t, operatorPrincipal, "acme", "olivia", "owner")
	og, _ := e.enrolled(t, "acme", "olivia")
	maxUser := e.user(t, audit.Principal{Kind: audit.ActorUser, ID: owner.ID, Tenant: "acme", Role: "owner"}, "acme", "max", "manager")
	login := func(src, pass string) response {
		return e.call(t, base, src, "POST", "/v1/auth/login", `{"tenant":"acme","username":"max","password":"`+pass+`"}`)
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

	// The audit trail: each checked guess a failure, each refusal a
	// lockout entry, both naming max and the guess's source; the unlock
	// names the Owner.
	var failures, lockouts, unlocks, logins int
	for _, en := range e.chainEntries(t, "tenant:acme") {
		if en.Target != "user:"+maxUser.ID {
			continue
		}
		switch {
		case en.Action == "session.login" && en.Outcome == audit.OutcomeFailure:
			failures++
		case en.Action == "session.login" && en.Outcome == audit.OutcomeDenied:
			lockouts++
			if en.Details["reason"] != "backoff" {
				t.Errorf("lockout reason %q", en.Details["reason"])
			}
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
	if failures != checked || lockouts != refused+probes+4 || unlocks != 1 || logins != 5 {
		t.Errorf("audited %d failures (want %d), %d lockouts (want %d), %d unlocks, %d logins (want 5)", failures, checked, lockouts, refused+probes+4, unlocks, logins)
	}
	var sessions struct{ Sessions []struct{ ID string } }
	e.call(t, base, "127.0.0.3", "GET", "/v1/tenants/acme/users/"+maxUser.ID+"/sessions", "", bearer(og.AccessToken)).json(t, &sessions)
	if len(sessions.Sessions) != 5 {
		t.Errorf("max has %d sessions, want the 5 logins'", len(sessions.Sessions))
	}
}
