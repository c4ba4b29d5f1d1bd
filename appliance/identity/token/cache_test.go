package token

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func cachedAuthority(t testing.TB, size int) (*Authority, *Cache) {
	t.Helper()
	c := NewCache(size)
	return newAuthority(t).WithCache(c), c
}

func inCache(c *Cache, tok string) bool { return c.get(sha256.Sum256([]byte(tok))) != nil }

// A verified token is cached and verifies from the cache with the same
// claims; refusals are not cached; a token differing in one byte misses.
func TestCacheHit(t *testing.T) {
	a, c := cachedAuthority(t, 0)
	tok, issued, err := a.Issue(t0, userClaims())
	if err != nil {
		t.Fatal(err)
	}
	cold, err := a.Verify(t0, tok)
	if err != nil {
		t.Fatal(err)
	}
	if cold != issued || !inCache(c, tok) {
		t.Fatalf("cold verify %+v (issued %+v), cached %v", cold, issued, inCache(c, tok))
	}
	warm, err := a.Verify(t0.Add(time.Minute), tok)
	if err != nil || warm != cold {
		t.Fatalf("cached verify: %+v, %v", warm, err)
	}
	repl := "A"
	if tok[len(tok)-1] == 'A' {
		repl = "B"
	}
	tampered := tok[:len(tok)-1] + repl
	if _, err := a.Verify(t0, tampered); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a token one byte off the cached one: %v", err)
	}
	if inCache(c, tampered) || c.Len() != 1 {
		t.Fatalf("a refusal was cached (%d entries)", c.Len())
	}
	// The authority without the cache is unchanged.
	if newAuthority(t).cache != nil {
		t.Fatal("WithCache changed its receiver")
	}
}

// A cached token is refused exactly when Verify would refuse it: from its
// expiry (with the leeway) on, before its nbf/iat (with the leeway), when
// its key is not in the verifying set any more, when it has retired, and
// under another issuer.
func TestCacheRefusesWhatVerifyRefuses(t *testing.T) {
	a, c := cachedAuthority(t, 0)
	tok, claims, _ := a.Issue(t0, userClaims())
	if _, err := a.Verify(t0, tok); err != nil {
		t.Fatal(err)
	}
	exp := claims.ExpiresAt.Add(Leeway)
	if _, err := a.Verify(exp.Add(-time.Nanosecond), tok); err != nil {
		t.Fatalf("just before exp+leeway: %v", err)
	}
	if _, err := a.Verify(exp, tok); !errors.Is(err, ErrExpired) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("at exp+leeway: %v", err)
	}
	if _, err := a.Verify(t0.Add(-Leeway), tok); err != nil {
		t.Fatalf("at nbf-leeway: %v", err)
	}
	if _, err := a.Verify(t0.Add(-Leeway-time.Second), tok); !errors.Is(err, jwt.ErrTokenNotValidYet) {
		t.Fatalf("before nbf-leeway: %v", err)
	}

	// Another set (the key dropped), sharing the cache.
	other, _ := NewKeySet(t0, DefaultLifetime)
	b, _ := NewAuthority(testIssuer, other)
	if _, err := b.WithCache(c).Verify(t0, tok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("the key dropped from the set: %v", err)
	}
	// The key retired: a rotated set verifies the token until the old key's
	// retire time, then not — though the token itself has not expired.
	rotated := a.keys.Rotate(t0.Add(-DefaultLifetime))
	r, _ := NewAuthority(testIssuer, rotated)
	retire := rotated.Keys()[0].Retire
	if _, err := r.WithCache(c).Verify(retire.Add(-time.Second), tok); err != nil {
		t.Fatalf("before the key retires: %v", err)
	}
	if _, err := r.WithCache(c).Verify(retire, tok); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("once the key retired: %v", err)
	}
	// Another issuer with the same keys.
	d, _ := NewAuthority("custos:cluster-b", a.keys)
	if _, err := d.WithCache(c).Verify(t0, tok); !errors.Is(err, jwt.ErrTokenInvalidIssuer) {
		t.Fatalf("another issuer: %v", err)
	}
}

// The cache holds at most its size, however many tokens pass; tokens used
// again stay while others age out.
func TestCacheBounded(t *testing.T) {
	a, c := cachedAuthority(t, 64)
	keep, _, _ := a.Issue(t0, userClaims())
	for i := range 1000 {
		cl := userClaims()
		cl.Session = fmt.Sprint("s", i)
		tok, _, _ := a.Issue(t0, cl)
		if _, err := a.Verify(t0, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Verify(t0, keep); err != nil {
			t.Fatal(err)
		}
		if n := c.Len(); n > 64 {
			t.Fatalf("%d entries in a cache of 64", n)
		}
	}
	if !inCache(c, keep) {
		t.Fatal("a token used all along aged out")
	}
}

// Concurrent verification through one cache while generations turn over
// (run with -race).
func TestCacheConcurrent(t *testing.T) {
	a, _ := cachedAuthority(t, 64)
	toks := make([]string, 100)
	for i := range toks {
		cl := userClaims()
		cl.Session = fmt.Sprint("s", i)
		toks[i], _, _ = a.Issue(t0, cl)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				tok := toks[(i*7+g)%len(toks)]
				if _, err := a.Verify(t0, tok); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
