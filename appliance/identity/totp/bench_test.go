package totp

import (
	"testing"
	"time"
)

// BenchmarkVerify is the cost of the TOTP part of a login: one code
// checked against the three steps of the window (a wrong code, so that
// every iteration does the full comparison and the state stays the same).
func BenchmarkVerify(b *testing.B) {
	c := &clock{start}
	a := New(c.now)
	st, codes := active(b, a, c)
	c.t = c.t.Add(time.Hour)
	wrong := wrongCode(b, st, c.t)
	b.Run("code", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Verify(st, wrong); err != ErrWrongCode {
				b.Fatal(err)
			}
		}
	})
	b.Run("recovery", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Recover(st, codes[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEnrol is the cost of a new secret, its URI and the PNG QR
// code.
func BenchmarkEnrol(b *testing.B) {
	a := New(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Enrol("acme", "alice@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
