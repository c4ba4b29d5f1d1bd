package token

import (
	"errors"
	"testing"
	"time"
)

// Verify never panics and never accepts what Issue did not make: arbitrary
// strings (mutations of real tokens among them) are refused, as
// ErrInvalidToken, unless they are exactly a token of the authority.
func FuzzVerify(f *testing.F) {
	a := newAuthority(f)
	good, _, err := a.Issue(t0, userClaims())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(good[:len(good)-2])
	f.Add(NewFamily(t0, time.Hour).Token)
	f.Fuzz(func(t *testing.T, s string) {
		c, err := a.Verify(t0, s)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v is not ErrInvalidToken", err)
			}
			if c != (Claims{}) {
				t.Fatalf("claims %+v with an error", c)
			}
			return
		}
		if s != good {
			// Ed25519 signatures are not malleable, and strict decoding
			// admits one encoding of each: only the issued token passes.
			t.Fatalf("accepted %q", s)
		}
	})
}

// HashOf never panics, and accepts only the refresh token shape.
func FuzzHashOf(f *testing.F) {
	f.Add(NewFamily(t0, time.Hour).Token)
	f.Add("crt_")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := HashOf(s); err == nil && (len(s) != 47 || s[:4] != "crt_") {
			t.Fatalf("accepted %q", s)
		}
	})
}
