package token

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultCacheSize is how many verified tokens a Cache holds unless told:
// one per session active on the node within a token lifetime, with room
// to spare (an entry is a few hundred bytes).
const DefaultCacheSize = 20_000

// cacheShards spreads the cache over several locks, so that the verifiers
// of concurrent requests rarely wait for each other.
const cacheShards = 16

// Cache remembers the claims of access tokens an Authority has verified,
// so that the same token presented again — every request of a session,
// for its whole lifetime — costs a SHA-256 of the token and a map lookup
// instead of an Ed25519 verification (which alone costs more than the
// issue's 50,000 verifications per second per core allow).
//
// An entry is keyed by the SHA-256 of the whole token, so only a
// byte-identical token hits it (no forgery of a cached token's claims
// without a SHA-256 collision), and it holds the claims and the key id,
// never the token. A hit is checked again at every use exactly as Verify
// checks the times — refused at exp (with Leeway), before nbf and iat —
// and against the verifying Authority's key set: a token whose key has
// been dropped or has retired, or of another issuer, does not verify from
// the cache; Verify then checks it in full and refuses it as it would
// have without a cache. Refusals are never cached.
//
// The cache is bounded: each shard keeps two generations of at most
// size/(2×shards) entries; when the current one fills, the older one is
// dropped and the current one becomes the older. A token used again is
// moved to the current generation, so active sessions stay and tokens
// nobody presents any more age out. It is safe for concurrent use, and
// is shared by the successive Authorities of a rotating key set
// (Authority.WithCache).
type Cache struct {
	perGen int
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu       sync.RWMutex
	cur, old map[[sha256.Size]byte]*cached
}

type cached struct {
	claims Claims
	kid    string
	issuer string
}

// NewCache makes a cache of at most size tokens (size ≤ 0:
// DefaultCacheSize).
func NewCache(size int) *Cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	c := &Cache{perGen: max(1, size/(2*cacheShards))}
	for i := range c.shards {
		c.shards[i].cur = make(map[[sha256.Size]byte]*cached)
	}
	return c
}

// Len is how many tokens the cache holds now.
func (c *Cache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.cur) + len(s.old)
		s.mu.RUnlock()
	}
	return n
}

func (c *Cache) get(h [sha256.Size]byte) *cached {
	s := &c.shards[h[0]%cacheShards]
	s.mu.RLock()
	e, ok := s.cur[h]
	if !ok {
		e = s.old[h]
	}
	s.mu.RUnlock()
	if e != nil && !ok {
		s.mu.Lock()
		s.put(h, e, c.perGen)
		s.mu.Unlock()
	}
	return e
}

func (c *Cache) put(h [sha256.Size]byte, e *cached) {
	s := &c.shards[h[0]%cacheShards]
	s.mu.Lock()
	s.put(h, e, c.perGen)
	s.mu.Unlock()
}

// put adds to the current generation, first turning it into the older
// one when it is full.
func (s *cacheShard) put(h [sha256.Size]byte, e *cached, perGen int) {
	if _, ok := s.cur[h]; !ok && len(s.cur) >= perGen {
		s.old, s.cur = s.cur, make(map[[sha256.Size]byte]*cached, perGen)
	}
	s.cur[h] = e
}

// valid reports whether the cached claims verify at now with a: of a's
// issuer, signed by a key of a's set that still verifies, and inside
// their times as Verify checks them (Leeway either side).
func (e *cached) valid(a *Authority, now time.Time) bool {
	if e.issuer != a.issuer {
		return false
	}
	if _, ok := a.keys.verifier(e.kid, now); !ok {
		return false
	}
	return now.Before(e.claims.ExpiresAt.Add(Leeway)) &&
		!now.Before(e.claims.NotBefore.Add(-Leeway)) &&
		!now.Before(e.claims.IssuedAt.Add(-Leeway))
}
