package keyring

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.t.Add(int64(d)) }

func TestCacheTTLAndPurge(t *testing.T) {
	clk := &fakeClock{}
	c := NewCache(time.Minute, 100, clk.now)
	k := CacheKey{Tenant: "acme", Subject: "g1", Version: 1}
	c.Put(k, mustKey(t, 1))
	c.Put(CacheKey{Tenant: "globex", Version: 1}, mustKey(t, 1))
	if _, ok := c.Get(k); !ok {
		t.Fatal("fresh key missing")
	}
	clk.advance(59 * time.Second)
	if _, ok := c.Get(k); !ok {
		t.Fatal("key expired early")
	}
	clk.advance(time.Second)
	if _, ok := c.Get(k); ok {
		t.Fatal("key served after its TTL")
	}
	c.Put(k, mustKey(t, 1))
	c.Put(CacheKey{Tenant: "globex", Version: 1}, mustKey(t, 1)) // the first one expired too
	if n := c.Purge("acme"); n != 1 {
		t.Fatalf("purged %d, want 1", n)
	}
	if _, ok := c.Get(k); ok {
		t.Fatal("key served after purge")
	}
	if _, ok := c.Get(CacheKey{Tenant: "globex", Version: 1}); !ok {
		t.Fatal("purge of acme dropped globex's key")
	}
}

func TestCacheSizeBound(t *testing.T) {
	c := NewCache(time.Hour, 3, nil)
	for i := uint32(0); i < 5; i++ {
		c.Put(CacheKey{Tenant: "acme", Version: i}, mustKey(t, i))
	}
	if c.Len() != 3 {
		t.Fatalf("%d entries, bound 3", c.Len())
	}
	if _, ok := c.Get(CacheKey{Tenant: "acme", Version: 0}); ok {
		t.Fatal("least recently used entry kept")
	}
}

// 1,000 concurrent writers to one subject cause one root round trip; a
// failing root is not cached (fail closed, recover when it answers).
func TestCacheSingleLoadAndFailClosed(t *testing.T) {
	c := NewCache(time.Minute, 100, nil)
	k := CacheKey{Tenant: "acme", Subject: "g1", Version: 1}
	var calls atomic.Int64
	load := func(context.Context) (*Key, error) {
		calls.Add(1)
		time.Sleep(5 * time.Millisecond) // a Vault round trip
		return NewKey(1)
	}
	var wg sync.WaitGroup
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.GetOrLoad(context.Background(), k, load); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d root calls for 1,000 uses of one key, want 1", calls.Load())
	}
	c.Purge("acme")
	down := func(context.Context) (*Key, error) { return nil, ErrRootUnavailable }
	if _, err := c.GetOrLoad(context.Background(), k, down); !errors.Is(err, ErrRootUnavailable) {
		t.Fatalf("root down: %v", err)
	}
	if _, err := c.GetOrLoad(context.Background(), k, load); err != nil {
		t.Fatalf("root back: %v", err)
	}
}

// Evicting a key does not change it under a caller that still holds it: a
// blob stream started with it after the eviction still opens.
func TestCacheEvictionLeavesHeldKeysIntact(t *testing.T) {
	c := NewCache(time.Minute, 1, nil)
	held := mustKey(t, 1)
	copyOf := mustKeyFrom(t, 1, held.raw[:]) // taken before the eviction
	c.Put(CacheKey{Tenant: "acme", Version: 1}, held)
	c.Put(CacheKey{Tenant: "acme", Version: 2}, mustKey(t, 2)) // evicts held
	if _, ok := c.Get(CacheKey{Tenant: "acme", Version: 1}); ok {
		t.Fatal("not evicted")
	}
	blob := encryptBlob(t, held, home, []byte("written after eviction"))
	if got, err := decryptBlob(copyOf, home, blob); err != nil || string(got) != "written after eviction" {
		t.Fatalf("held key changed by eviction: %q %v", got, err)
	}
}
