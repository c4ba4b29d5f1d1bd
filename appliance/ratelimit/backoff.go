package ratelimit

import (
	"container/list"
	"fmt"
	"sync"
	"time"
)

// BackoffLimits are the progressive delays of one kind of key (an
// account, a source).
type BackoffLimits struct {
	// Free is how many failures are allowed before any delay (≥ 1): a
	// person mistyping a password a few times waits for nothing.
	Free int
	// Base is the delay after the first failure past Free; it doubles with
	// every further failure (> 0).
	Base time.Duration
	// Max caps the delay (≥ Base): however many failures, the key may try
	// again after at most Max — there is no lockout an attacker can make
	// permanent.
	Max time.Duration
	// Decay is how long without a failure makes the key forget one (> 0):
	// a key left alone drifts back to Free and then to nothing.
	Decay time.Duration
}

func (l BackoffLimits) valid() bool {
	return l.Free >= 1 && l.Base > 0 && l.Max >= l.Base && l.Decay > 0
}

// delay is the wait before the next attempt of a key with n failures (and
// reserved attempts) counted: none below Free, then Base doubling up to
// Max.
func (l BackoffLimits) delay(n int) time.Duration {
	if n < l.Free {
		return 0
	}
	d := l.Base
	for i := l.Free; i < n && d < l.Max; i++ {
		d *= 2
	}
	return min(d, l.Max)
}

// BackoffConfig configures a Backoff.
type BackoffConfig struct {
	// Account limits the attempts on one account, from any source: what
	// holds an attacker who spreads guesses over many addresses.
	Account BackoffLimits
	// Source limits the attempts from one source, on any account: what
	// holds an attacker who sprays one password over many usernames.
	Source BackoffLimits
	// MaxTracked bounds each of the two tables (accounts, sources).
	MaxTracked int
}

// knownSources is how many sources that logged into an account it
// remembers. Attempts from them skip the account's delay (their own
// source delay still applies), so an attacker elsewhere who fails on
// purpose cannot keep the owner out.
const knownSources = 4

// pendingTimeout is how long a reserved attempt counts when its caller
// never reports how it ended (a crashed request): far longer than a login
// takes, including its wait for the password hasher.
const pendingTimeout = time.Minute

// evictScan is how many least-recently-used entries a full table looks at
// for one that is not holding anybody back before it evicts one that is.
const evictScan = 8

// Backoff slows down guessing of passwords and second-factor codes:
// progressive delays per account and per source after failed attempts
// (see the package documentation). It is safe for concurrent use; every
// method takes the caller's clock.
type Backoff struct {
	cfg BackoffConfig

	mu       sync.Mutex
	accounts backoffTable
	sources  backoffTable
}

// backoffTable is a bounded LRU table of backoff entries.
type backoffTable struct {
	limits  BackoffLimits
	max     int
	entries map[string]*list.Element // of *backoffEntry
	lru     *list.List               // front: most recently used
}

type backoffEntry struct {
	key      string
	failures int       // decayed as of decayed
	decayed  time.Time // when failures was last decayed (the last failure, then Decay steps after it)
	last     time.Time // the last failure or reserved attempt: delays run from it
	pending  int       // attempts let through by Check whose end is not reported yet
	since    time.Time // the latest of them
	known    []string  // sources that logged in (accounts only), most recent first

	// The lockout windows (accounts only): the refusals of the open
	// window, the time its hold runs out (the latest retry time it gave),
	// and the refusals of closed windows not taken yet.
	window    Refusals
	holdUntil time.Time
	closed    Refusals
}

// NewBackoff makes a Backoff. Limits out of range are a wiring mistake
// (configuration is validated before), and panic.
func NewBackoff(c BackoffConfig) *Backoff {
	if !c.Account.valid() || !c.Source.valid() || c.MaxTracked < 1 {
		panic(fmt.Sprintf("ratelimit: backoff limits out of range: %+v", c))
	}
	return &Backoff{
		cfg:      c,
		accounts: newBackoffTable(c.Account, c.MaxTracked),
		sources:  newBackoffTable(c.Source, c.MaxTracked),
	}
}

func newBackoffTable(l BackoffLimits, max int) backoffTable {
	return backoffTable{limits: l, max: max, entries: map[string]*list.Element{}, lru: list.New()}
}

// Verdict is Check's answer on one attempt.
type Verdict struct {
	// OK: the attempt may be made; Check reserved it.
	OK bool
	// RetryAfter is how long to wait, when the attempt is refused.
	RetryAfter time.Duration
	// Opens: the attempt is refused, and its refusal opens a lockout
	// window on the account — it is the first refusal since the last
	// attempt Check let through on the account, or since the hold of the
	// account's previous window ran out. A caller that records lockouts
	// records this refusal (with RetryAfter) and only counts the others:
	// the window's tally comes later from TakeRefusals.
	Opens bool
}

// Refusals counts refused attempts on an account: Count of them, the
// first at First and the last at Last.
type Refusals struct {
	Count       int
	First, Last time.Time
}

// add counts one more refusal, at now.
func (r *Refusals) add(now time.Time) {
	if r.Count == 0 || now.Before(r.First) {
		r.First = now
	}
	if now.After(r.Last) {
		r.Last = now
	}
	r.Count++
}

// merge adds o's refusals to r's.
func (r *Refusals) merge(o Refusals) {
	if o.Count == 0 {
		return
	}
	if r.Count == 0 || o.First.Before(r.First) {
		r.First = o.First
	}
	if o.Last.After(r.Last) {
		r.Last = o.Last
	}
	r.Count += o.Count
}

// Check says whether an attempt (a password, a code) on account from
// source may be made at now. When it may, Check reserves it — the attempt
// counts as a failure for the attempts that come while it runs, so a burst
// of concurrent guesses is held as one made after another would be — and
// the caller must report its end with Failure or Success. When it may
// not, Check reserves nothing and says how long to wait: the caller
// refuses the attempt without checking the password (429 with
// Retry-After), and records the refusal only when it opens a lockout
// window (Verdict.Opens).
//
// account is the caller's name for the account being tried, typed
// usernames that match nobody included (so that the answer does not tell
// which usernames exist); source is the client's address as the request
// rate limits key it (an IPv6 address by its /64). recorded says that the
// caller records the account's lockouts (it names somebody): only then
// does Check keep its lockout windows, which keep its entry in the table
// until their tally is taken — refusals of typed names of nobody must not
// fill the table. The answer's wait does not depend on it.
func (b *Backoff) Check(account, source string, now time.Time, recorded bool) Verdict {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.accounts.get(account, now)
	s := b.sources.get(source, now)
	wait := s.wait(b.cfg.Source, now)
	if !a.knows(source) {
		wait = max(wait, a.wait(b.cfg.Account, now))
	}
	if wait > 0 {
		return Verdict{RetryAfter: wait, Opens: recorded && a.refuse(now, wait)}
	}
	a.closeWindow()
	a.reserve(now)
	s.reserve(now)
	return Verdict{OK: true}
}

// TakeRefusals returns the refusals of the account's closed lockout
// windows (see the package documentation) that no caller took yet, and
// forgets them: the caller writes them into the next record it makes of
// the account. The window still open, if any, is not included.
func (b *Backoff) TakeRefusals(account string) Refusals {
	b.mu.Lock()
	defer b.mu.Unlock()
	el, ok := b.accounts.entries[account]
	if !ok {
		return Refusals{}
	}
	e := el.Value.(*backoffEntry)
	r := e.closed
	e.closed = Refusals{}
	return r
}

// Failure reports that an attempt Check let through failed: a wrong
// password, a wrong or replayed code.
func (b *Backoff) Failure(account, source string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.accounts.get(account, now).fail(b.cfg.Account, now)
	b.sources.get(source, now).fail(b.cfg.Source, now)
}

// Success reports that an attempt Check let through succeeded: the
// account's failures are forgotten and source becomes one of the account's
// known sources; the source's own count only gives back the attempt.
func (b *Backoff) Success(account, source string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a := b.accounts.get(account, now)
	a.failures, a.pending = 0, 0
	a.remember(source)
	b.sources.get(source, now).release()
}

// Unlock forgets the account's failures made up to at: an administrator's
// unlock, which the caller audits. It is idempotent, so a caller that
// keeps the unlock time replicated with the account may call it on every
// node, whenever it sees that time — the tables themselves are per node.
// Failures after at still count.
func (b *Backoff) Unlock(account string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	el, ok := b.accounts.entries[account]
	if !ok {
		return
	}
	e := el.Value.(*backoffEntry)
	if !e.last.After(at) {
		e.failures, e.pending = 0, 0
	}
}

// Tracked is how many accounts and sources the tables hold now.
func (b *Backoff) Tracked() (accounts, sources int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.accounts.lru.Len(), b.sources.lru.Len()
}

// get returns key's entry (a new, empty one if it has none), decayed to
// now and moved to the front. A full table evicts first (see evict).
func (t *backoffTable) get(key string, now time.Time) *backoffEntry {
	t.sweep(now)
	if el, ok := t.entries[key]; ok {
		t.lru.MoveToFront(el)
		e := el.Value.(*backoffEntry)
		e.decay(t.limits, now)
		return e
	}
	if t.lru.Len() >= t.max {
		t.evict(now)
	}
	e := &backoffEntry{key: key}
	t.entries[key] = t.lru.PushFront(e)
	return e
}

// sweep drops up to two idle entries from the least recently used end,
// so that a call costs O(1) and the table drains faster than one call can
// fill it.
func (t *backoffTable) sweep(now time.Time) {
	for range 2 {
		el := t.lru.Back()
		if el == nil {
			return
		}
		e := el.Value.(*backoffEntry)
		e.decay(t.limits, now)
		if !e.idle(now) {
			return
		}
		t.remove(el)
	}
}

// evict makes room in a full table: the least recently used entry among
// the last evictScan that holds nobody back (below Free), or else the
// least recently used one. Forgetting an entry at worst hands its key a
// fresh count; filling the table with entries that hold keys back costs
// an attacker Free+1 failures each, every one of them slowed by its
// source's own delay.
func (t *backoffTable) evict(now time.Time) {
	el := t.lru.Back()
	for i, c := 0, el; i < evictScan && c != nil; i, c = i+1, c.Prev() {
		e := c.Value.(*backoffEntry)
		e.decay(t.limits, now)
		if e.count(now) < t.limits.Free {
			el = c
			break
		}
	}
	if el != nil {
		t.remove(el)
	}
}

func (t *backoffTable) remove(el *list.Element) {
	delete(t.entries, el.Value.(*backoffEntry).key)
	t.lru.Remove(el)
}

// decay forgets one failure per Decay since the last failure.
func (e *backoffEntry) decay(l BackoffLimits, now time.Time) {
	if e.failures == 0 {
		return
	}
	steps := int(now.Sub(e.decayed) / l.Decay)
	if steps <= 0 {
		return
	}
	if steps >= e.failures {
		e.failures = 0
		return
	}
	e.failures -= steps
	e.decayed = e.decayed.Add(time.Duration(steps) * l.Decay)
}

// count is the failures and the reserved attempts still running at now.
func (e *backoffEntry) count(now time.Time) int {
	if e.pending > 0 && now.Sub(e.since) >= pendingTimeout {
		e.pending = 0
	}
	return e.failures + e.pending
}

// wait is how long from now until the entry may make its next attempt.
func (e *backoffEntry) wait(l BackoffLimits, now time.Time) time.Duration {
	d := l.delay(e.count(now))
	if d == 0 {
		return 0
	}
	return max(e.last.Add(d).Sub(now), 0)
}

func (e *backoffEntry) reserve(now time.Time) {
	e.pending++
	e.since = now
	e.last = now
}

func (e *backoffEntry) release() {
	if e.pending > 0 {
		e.pending--
	}
}

func (e *backoffEntry) fail(l BackoffLimits, now time.Time) {
	e.release()
	e.decay(l, now)
	e.failures++
	e.decayed = now
	if now.After(e.last) {
		e.last = now
	}
}

// refuse counts a refusal at now that told the client to wait: in the
// open window, or in a new one (opens) when none is open or the open one's
// hold ran out, which closes it.
func (e *backoffEntry) refuse(now time.Time, wait time.Duration) (opens bool) {
	if e.window.Count > 0 && !now.Before(e.holdUntil) {
		e.closeWindow()
	}
	opens = e.window.Count == 0
	e.window.add(now)
	if until := now.Add(wait); until.After(e.holdUntil) {
		e.holdUntil = until
	}
	return opens
}

// closeWindow closes the open lockout window, if any: its refusals wait
// for TakeRefusals.
func (e *backoffEntry) closeWindow() {
	e.closed.merge(e.window)
	e.window, e.holdUntil = Refusals{}, time.Time{}
}

func (e *backoffEntry) knows(source string) bool {
	for _, s := range e.known {
		if s == source {
			return true
		}
	}
	return false
}

// remember puts source first among the known sources, keeping the most
// recent knownSources.
func (e *backoffEntry) remember(source string) {
	known := make([]string, 0, knownSources)
	known = append(known, source)
	for _, s := range e.known {
		if s != source && len(known) < knownSources {
			known = append(known, s)
		}
	}
	e.known = known
}

// idle reports whether the entry holds nothing worth keeping: no failure,
// no reserved attempt, no known source, no lockout refusals not taken.
func (e *backoffEntry) idle(now time.Time) bool {
	return e.count(now) == 0 && len(e.known) == 0 && e.window.Count == 0 && e.closed.Count == 0
}
