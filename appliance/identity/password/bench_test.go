package password

import (
	"context"
	"testing"
)

// BenchmarkHash is the cost of one hash with the OWASP parameters (one
// slot; run with -cpu 1 for the cost on one core).
func BenchmarkHash(b *testing.B) {
	h, err := NewHasher(Options{Concurrency: 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the cost of one login's password check; the
// sub-benchmark absent is the dummy check for an unknown account, which
// must cost the same.
func BenchmarkVerify(b *testing.B) {
	h, err := NewHasher(Options{Concurrency: 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("known", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := h.Verify(ctx, enc, "correct horse battery stapler"); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("absent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := h.VerifyAbsent(ctx, "correct horse battery stapler"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
