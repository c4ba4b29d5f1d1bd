package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"io"
	"testing"
)

// BenchmarkSealOpen1KiB is Seal + Open of a 1 KiB value, nonce-safety
// scheme (XAES-256-GCM key derivation) included.
func BenchmarkSealOpen1KiB(b *testing.B) {
	k := mustKey(b, 1)
	pt := make([]byte, 1024)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		ct, err := Seal(k, home, pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Open(k, home, ct); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAESGCMBaseline1KiB is raw AES-256-GCM seal + open of 1 KiB with a
// random 96-bit nonce and the same associated data: the yardstick.
func BenchmarkAESGCMBaseline1KiB(b *testing.B) {
	key := make([]byte, 32)
	rand.Read(key)
	blk, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(blk)
	pt := make([]byte, 1024)
	ad := home.ad("custos/seal/v1", []byte{sealMagic, sealFormat, 0, 0, 0, 1})
	nonce := make([]byte, 12)
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		rand.Read(nonce)
		ct := g.Seal(nil, nonce, pt, ad)
		if _, err := g.Open(nil, nonce, ct, ad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamEncrypt is blob encryption throughput (one core).
func BenchmarkStreamEncrypt(b *testing.B) {
	k := mustKey(b, 1)
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	w, err := NewWriter(io.Discard, k, home)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	_ = w.Close()
}

// BenchmarkStreamDecrypt is blob decryption throughput (one core).
func BenchmarkStreamDecrypt(b *testing.B) {
	k := mustKey(b, 1)
	blob := encryptBlob(b, k, home, make([]byte, 16<<20))
	b.SetBytes(16 << 20)
	for b.Loop() {
		r, err := NewReader(bytesReader(blob), k, home)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}
