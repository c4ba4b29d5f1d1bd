package keyring

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// Test vectors from c2sp.org/XAES-256-GCM.
func TestXAESVectors(t *testing.T) {
	cases := []struct {
		key        byte
		ad, output string
	}{
		{0x01, "", "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271"},
		{0x03, "c2sp.org/XAES-256-GCM", "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d"},
	}
	nonce := []byte("ABCDEFGHIJKLMNOPQRSTUVWX")
	for _, tc := range cases {
		x, err := newXAES(bytes.Repeat([]byte{tc.key}, 32))
		if err != nil {
			t.Fatal(err)
		}
		ct, err := x.seal(nil, nonce, []byte("XAES-256-GCM"), []byte(tc.ad))
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(ct); got != tc.output {
			t.Fatalf("key %#x: %s, want %s", tc.key, got, tc.output)
		}
		pt, err := x.open(nil, nonce, ct, []byte(tc.ad))
		if err != nil || string(pt) != "XAES-256-GCM" {
			t.Fatalf("open: %q %v", pt, err)
		}
	}
}
