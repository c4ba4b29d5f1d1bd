package token

import (
	"crypto/ed25519"
	"testing"
)

// BenchmarkVerify is the issue's "token verification ≥ 50,000/s per core":
// run it with -cpu 1 (make bench does). BenchmarkEd25519Verify is the
// signature check alone, the floor under it.
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
