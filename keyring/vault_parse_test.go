package keyring

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
)

func TestTransitVersion(t *testing.T) {
	for in, want := range map[string]int{
		"vault:v1:AAAA":         1,
		"vault:v12:x":           12,
		"vault:v2:a:b":          2,
		"vault:v2147483648:abc": 2147483648,
	} {
		if got, err := TransitVersion([]byte(in)); err != nil || got != want {
			t.Errorf("TransitVersion(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "vault:", "vault:v", "vault:v1", "vault:v1:", "vault:v:x", "vault:v0:x",
		"vault:v01:x", "vault:v-1:x", "vault:v+1:x", "vault:v 1:x", "vault:v1 :x",
		"vault:vx:x", "Vault:v1:x", "xvault:v1:x", "vault:v99999999999999999999:x",
	} {
		if n, err := TransitVersion([]byte(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("TransitVersion(%q) = %d, %v; want ErrFormat", in, n, err)
		}
	}
}

// FuzzTransitVersion: a version is only ever read from a canonical
// "vault:v<N>:" prefix followed by a body, with N ≥ 1.
func FuzzTransitVersion(f *testing.F) {
	for _, s := range []string{"vault:v1:AAAA", "vault:v10:x", "vault:v0:x", "vault:v01:x", "vault:v-1:x", "vault:v1:", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := TransitVersion(in)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not ErrFormat", err)
			}
			return
		}
		prefix := []byte("vault:v" + strconv.Itoa(n) + ":")
		if n < 1 || !bytes.HasPrefix(in, prefix) || len(in) == len(prefix) {
			t.Fatalf("TransitVersion(%q) = %d", in, n)
		}
	})
}
