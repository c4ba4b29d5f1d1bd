package token

import (
	"crypto/ed25519"
	"strconv"
	"testing"
)

// BenchmarkVerify is the issue's "token verification ≥ 50,000/s per core"
// for a token seen for the first time (cold: the signature is checked);
// BenchmarkVerifyCached for a token verified before, as every request of
// a session after its first is (the Cache). Run them with -cpu 1 (make
// bench does): ns/op is then the cost on one core.
// BenchmarkEd25519Verify is the signature check alone, the floor under
// the cold figure.
func BenchmarkVerify(b *testing.B) {
	a := newAuthority(b)
	tok, _, err := a.Issue(t0, userClaims())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Verify(t0, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	a := newAuthority(b).WithCache(NewCache(0))
	tok, _, err := a.Issue(t0, userClaims())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Verify(t0, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Verify(t0, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel is the cached verification of many
// sessions' tokens from concurrent requests (b.RunParallel, GOMAXPROCS
// goroutines): what the shards' locks cost when cores contend.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	a := newAuthority(b).WithCache(NewCache(0))
	toks := make([]string, 1000)
	for i := range toks {
		c := userClaims()
		c.Session = "s" + strconv.Itoa(i)
		toks[i], _, _ = a.Issue(t0, c)
		if _, err := a.Verify(t0, toks[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := a.Verify(t0, toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkEd25519Verify(b *testing.B) {
	k := newKey(t0)
	msg := make([]byte, 300)
	sig := ed25519.Sign(k.private, msg)
	for b.Loop() {
		if !ed25519.Verify(k.public, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	a := newAuthority(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.Issue(t0, userClaims()); err != nil {
			b.Fatal(err)
		}
	}
}
