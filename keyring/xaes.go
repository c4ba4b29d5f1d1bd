package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
)

// xaes is XAES-256-GCM (c2sp.org/XAES-256-GCM): AES-256-GCM with 192-bit
// nonces. Each message gets its own AES-256 key, derived from the key and
// the first 12 bytes of the nonce with a NIST SP 800-108r1 counter-mode KDF
// over AES-256 (CMAC-based); the last 12 bytes are the GCM nonce under that
// derived key. Random nonces are then safe for far more messages than any
// key here will see (see DESIGN.md).
type xaes struct {
	block cipher.Block
	k1    [aes.BlockSize]byte
}

const (
	xaesNonceSize = 24
	xaesOverhead  = 16
)

func newXAES(key []byte) (*xaes, error) {
	if len(key) != 32 {
		return nil, errors.New("keyring: XAES-256-GCM needs a 32-byte key")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	x := &xaes{block: b}
	// L = AES-256_K(0^128); K1 = L << 1, xor 0x87 into the last byte when
	// the top bit of L was set (CMAC subkey derivation).
	var l [aes.BlockSize]byte
	b.Encrypt(l[:], l[:])
	msb := l[0] >> 7
	for i := 0; i < len(l)-1; i++ {
		x.k1[i] = l[i]<<1 | l[i+1]>>7
	}
	x.k1[len(l)-1] = l[len(l)-1]<<1 ^ byte(subtle.ConstantTimeByteEq(msb, 1))*0x87
	return x, nil
}

// derive returns the AES-256-GCM instance for one message's nonce.
func (x *xaes) derive(nonce []byte) (cipher.AEAD, error) {
	var m1, m2 [16]byte
	m1[1], m1[2] = 0x01, 'X'
	m2[1], m2[2] = 0x02, 'X'
	copy(m1[4:16], nonce[:12])
	copy(m2[4:16], nonce[:12])
	var key [32]byte
	subtle.XORBytes(m1[:], m1[:], x.k1[:])
	subtle.XORBytes(m2[:], m2[:], x.k1[:])
	x.block.Encrypt(key[:16], m1[:])
	x.block.Encrypt(key[16:], m2[:])
	b, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func (x *xaes) seal(dst, nonce, plaintext, ad []byte) ([]byte, error) {
	g, err := x.derive(nonce)
	if err != nil {
		return nil, err
	}
	return g.Seal(dst, nonce[12:], plaintext, ad), nil
}

func (x *xaes) open(dst, nonce, ciphertext, ad []byte) ([]byte, error) {
	g, err := x.derive(nonce)
	if err != nil {
		return nil, err
	}
	return g.Open(dst, nonce[12:], ciphertext, ad)
}
