package keyring

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// CacheKey names a cached unwrapped key.
type CacheKey struct {
	Tenant  string
	Subject string // "" for the tenant's own data key
	KEK     bool   // a tenant KEK rather than a data key
	Version uint32
}

// Cache keeps unwrapped keys in memory for a TTL (default 5 minutes) and up
// to a size bound, least recently used first out. Nothing in it is ever
// written anywhere. Concurrent misses for the same key share one load, so a
// burst of writes to one subject costs one root (age or Vault) round trip.
// When the root becomes unavailable (a revoked BYOK key), keys already
// cached keep working until their TTL ends, then fail closed; Purge ends
// that window at once.
type Cache struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[CacheKey]*list.Element
	lru     *list.List // front: most recently used
	loading map[CacheKey]*load
	loads   uint64
	hits    uint64 // Get and GetOrLoad that found the key
	misses  uint64 // ... that did not (a load, or a wait for one)
}

type cacheEntry struct {
	k       CacheKey
	key     *Key
	expires time.Time
}

type load struct {
	done chan struct{}
	key  *Key
	err  error
}

// NewCache makes a cache; now is the clock (nil: time.Now).
func NewCache(ttl time.Duration, max int, now func() time.Time) *Cache {
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	if max <= 0 {
		max = 10000
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{ttl: ttl, max: max, now: now, entries: map[CacheKey]*list.Element{}, lru: list.New(), loading: map[CacheKey]*load{}}
}

// Get returns a cached key that has not expired.
func (c *Cache) Get(k CacheKey) (*Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, ok := c.getLocked(k)
	c.count(ok)
	return key, ok
}

// count records a lookup's outcome; c.mu is held.
func (c *Cache) count(hit bool) {
	if hit {
		c.hits++
	} else {
		c.misses++
	}
}

func (c *Cache) getLocked(k CacheKey) (*Key, bool) {
	el, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.key, true
}

// Put caches key under k for the TTL.
func (c *Cache) Put(k CacheKey, key *Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, key)
}

func (c *Cache) putLocked(k CacheKey, key *Key) {
	if el, ok := c.entries[k]; ok {
		c.removeLocked(el)
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{k: k, key: key, expires: c.now().Add(c.ttl)})
	for c.lru.Len() > c.max {
		c.removeLocked(c.lru.Back())
	}
}

func (c *Cache) removeLocked(el *list.Element) {
	e := el.Value.(*cacheEntry)
	delete(c.entries, e.k)
	c.lru.Remove(el)
	// The key is not wiped: a caller may still hold it (a blob stream
	// derives its key from the raw bytes), and Go cannot wipe the AES key
	// schedule or copies the runtime made anyway. Dropping the reference is
	// what ends its life in the cache.
}

// Delete drops one key from the cache.
func (c *Cache) Delete(k CacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		c.removeLocked(el)
	}
}

// GetOrLoad returns the cached key, or loads it once for all concurrent
// callers and caches it. Load errors are not cached.
func (c *Cache) GetOrLoad(ctx context.Context, k CacheKey, loadFn func(context.Context) (*Key, error)) (*Key, error) {
	c.mu.Lock()
	key, ok := c.getLocked(k)
	c.count(ok)
	if ok {
		c.mu.Unlock()
		return key, nil
	}
	l, inflight := c.loading[k]
	if !inflight {
		l = &load{done: make(chan struct{})}
		c.loading[k] = l
		c.loads++
	}
	c.mu.Unlock()
	if !inflight {
		l.key, l.err = loadFn(ctx)
		c.mu.Lock()
		delete(c.loading, k)
		if l.err == nil {
			c.putLocked(k, l.key)
		}
		c.mu.Unlock()
		close(l.done)
	}
	select {
	case <-l.done:
		return l.key, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Purge drops every cached key of tenant and returns how many.
func (c *Cache) Purge(tenant string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, el := range c.entries {
		if k.Tenant == tenant {
			c.removeLocked(el)
			n++
		}
	}
	return n
}

// Loads is how many loads (root round trips) the cache has started.
func (c *Cache) Loads() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads
}

// CacheStats count the cache's lookups since it was made.
type CacheStats struct {
	Hits   uint64 // lookups that found an unexpired key
	Misses uint64 // lookups that did not (each a load or a wait for one)
	Loads  uint64 // loads started (root or KEK round trips)
	Len    int    // keys held now
}

// Stats returns the cache's counters, for metrics.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.misses, Loads: c.loads, Len: c.lru.Len()}
}

// Len is the number of cached keys.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
