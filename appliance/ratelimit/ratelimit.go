// Package ratelimit bounds how often one key (a source address, a
// principal) may act — a token bucket per key, kept in a bounded table
// ([Table]) — and how fast passwords and second-factor codes can be
// guessed: a progressive backoff per account and per source ([Backoff]).
//
// # Why token buckets
//
// A bucket lets a client burst (a page load, a batch job starting) and
// then holds it to a steady rate, which is what an API that serves both
// people and automation needs; a fixed window would let twice the limit
// through at every window edge. The buckets are golang.org/x/time/rate's
// Limiter, driven with explicit times (AllowN, TokensAt) so that the
// caller's clock — a fake one in tests — is the only clock.
//
// # Why bounded
//
// The keys come from the network: an attacker who controls many source
// addresses (an IPv6 /64 holds 2^64 of them) must not grow the table
// without bound. The table holds at most MaxTracked keys. An entry whose
// bucket has refilled completely is indistinguishable from a new one, so
// it is dropped as soon as it is found idle (the least recently used end
// is checked on every call); when the table is full of busy entries the
// least recently used one is evicted, which at worst hands that key a
// fresh bucket. That trade — a flood of new addresses can reset the
// buckets of old, quiet ones, but never exhausts memory — is the usual
// one; the per-principal limit still holds an authenticated attacker.
//
// # Per node
//
// Each node keeps its own table: nothing is replicated. A cluster of n
// nodes therefore admits up to n times the configured rate from a client
// that spreads its requests over every node. That is acceptable because
// the limits exist to keep one client from starving a node (its CPU, its
// connections, its share of the leader), which is a per-node resource;
// replicating every request's count through raft would cost more than the
// requests it limits.
//
// # Login backoff
//
// A [Backoff] counts failed attempts — wrong passwords, wrong or replayed
// codes — per account and per source. The first few are free; after them
// each attempt waits a delay that doubles with every further failure, up
// to a cap, and one failure is forgotten per decay period without one.
// The per-source count holds an attacker who tries one password on many
// usernames; the per-account count holds one who spreads guesses over
// many addresses (OWASP's authentication guidance asks for both).
//
// There is no lockout an attacker can make permanent: the wait never
// exceeds the cap, and a success clears the account. And an attacker
// cannot keep the owner out by failing on purpose: an account remembers
// the last few sources that logged into it, and attempts from those skip
// the account's delay (their source's own still applies) — the idea of
// OWASP's "device cookies", keyed by address because a login has no
// cookie yet. An administrator's unlock ([Backoff.Unlock]) forgets the
// account's failures; the caller audits it.
//
// Check reserves the attempt it lets through — it counts as a failure
// until its caller reports Failure or Success — so that a thousand
// concurrent guesses are held as a thousand sequential ones would be,
// instead of all passing the check before the first one fails.
//
// The tables are bounded like the buckets' (an attacker spraying
// usernames cannot grow them), and a full table evicts an entry that
// holds nobody back before one that does. They are per node, for the
// reasons above and one more: a failed login must not become a raft
// write, or a login flood would become a flood of the replicated log —
// with the typed usernames in it. An attacker who spreads guesses over
// the n nodes of a cluster gets n times the attempts, a constant factor
// against a delay that doubles; the unlock is made cluster-wide by its
// caller, which keeps the unlock time replicated with the account and
// hands it to every node's Unlock (idempotent: it forgets the failures
// made up to that time).
//
// # Lockout windows
//
// A refused attempt costs the node nothing but Check — and must not cost
// the cluster a write either: a caller that recorded every refusal in a
// replicated log would let an attacker write to it at the request rate
// limit. So Check groups an account's refusals into lockout windows. A
// window opens at the first refusal after an attempt Check let through on
// the account (or after the previous window's hold — the latest retry
// time it gave — ran out), and closes at the next attempt Check lets
// through (or at a refusal after its hold, which opens the next).
// [Verdict].Opens marks the opening refusal, the one a caller records;
// the window's refusals — how many, the first's and the last's times —
// wait, once it has closed, for [Backoff.TakeRefusals], which the caller
// writes into its next record of the account. So a log holds one entry
// per window and a truthful count ("n attempts refused between t1 and
// t2"), not one entry per refusal. Only the accounts whose lockouts the
// caller records (that name somebody) have windows, and an account with
// refusals not taken stays in the table until it is evicted from a full
// one. Windows are per node, like the counts; a tally the node forgets
// before it is taken (a restart, an eviction) is lost — the opening
// records stand.
package ratelimit

import (
	"container/list"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits are one token bucket's parameters.
type Limits struct {
	// Rate is the sustained rate, in requests per second (> 0).
	Rate float64
	// Burst is the bucket's size: how many requests may come at once
	// after a quiet period (≥ 1).
	Burst int
}

// Table is a bounded set of token buckets, one per key, all with the same
// limits. It is safe for concurrent use.
type Table struct {
	limit rate.Limit
	burst int
	max   int
	// idle is how long a bucket takes to refill from empty: an entry
	// untouched this long is full, so forgetting it changes nothing.
	idle time.Duration

	mu      sync.Mutex
	entries map[string]*list.Element // of *entry
	lru     *list.List               // front: most recently used
}

type entry struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

// New returns a table of buckets with limits l, tracking at most
// maxTracked keys. Non-positive values are wiring mistakes (the node
// configuration is validated before), so New panics on them.
func New(l Limits, maxTracked int) *Table {
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) || l.Burst < 1 || maxTracked < 1 {
		panic(fmt.Sprintf("ratelimit: rate %v, burst %d and max tracked %d must be positive", l.Rate, l.Burst, maxTracked))
	}
	return &Table{
		limit:   rate.Limit(l.Rate),
		burst:   l.Burst,
		max:     maxTracked,
		idle:    time.Duration(math.Ceil(float64(l.Burst) / l.Rate * float64(time.Second))),
		entries: make(map[string]*list.Element),
		lru:     list.New(),
	}
}

// Allow takes one token of key's bucket at now. When none is left it
// takes nothing and returns false with how long until one will be.
func (t *Table) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	var e *entry
	if el, found := t.entries[key]; found {
		e = el.Value.(*entry)
		t.lru.MoveToFront(el)
	} else {
		if t.lru.Len() >= t.max {
			t.remove(t.lru.Back())
		}
		e = &entry{key: key, lim: rate.NewLimiter(t.limit, t.burst)}
		t.entries[key] = t.lru.PushFront(e)
	}
	if now.After(e.last) {
		e.last = now
	}
	if e.lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - e.lim.TokensAt(now)
	return false, time.Duration(math.Ceil(missing / float64(t.limit) * float64(time.Second)))
}

// sweep drops idle entries from the least recently used end: at most two
// per call, so that a call costs O(1) and the table still drains faster
// than one call can add to it.
func (t *Table) sweep(now time.Time) {
	for range 2 {
		el := t.lru.Back()
		if el == nil || now.Sub(el.Value.(*entry).last) < t.idle {
			return
		}
		t.remove(el)
	}
}

func (t *Table) remove(el *list.Element) {
	delete(t.entries, el.Value.(*entry).key)
	t.lru.Remove(el)
}

// Len is how many keys the table tracks now.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}
