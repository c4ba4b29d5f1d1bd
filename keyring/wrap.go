package keyring

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// KeyContext names what a wrapped key is for; it is bound to the wrapping,
// so a wrapped subject key moved to another subject or tenant does not
// unwrap.
type KeyContext struct {
	Tenant  string
	Subject string // "" for the tenant's own data key
}

// Wrapped key format:
//
//	magic 'W' | format 1 | KEK version (4) | key version (4) | nonce (24) | sealed key (32 + 16)
const (
	wrapMagic     = 'W'
	wrapFormat    = 1
	wrapHeaderLen = 10
	// WrappedSize is the size of a wrapped key.
	WrappedSize = wrapHeaderLen + xaesNonceSize + KeySize + xaesOverhead
)

func (c KeyContext) ad(header []byte) []byte {
	b := appendString(nil, "custos/wrap/v1")
	b = appendString(b, c.Tenant)
	b = appendString(b, c.Subject)
	return append(b, header...)
}

// Wrap encrypts key under kek for ctx.
func Wrap(kek *Key, ctx KeyContext, key *Key) ([]byte, error) {
	out := make([]byte, wrapHeaderLen+xaesNonceSize, WrappedSize)
	out[0], out[1] = wrapMagic, wrapFormat
	binary.BigEndian.PutUint32(out[2:6], kek.version)
	binary.BigEndian.PutUint32(out[6:10], key.version)
	nonce := out[wrapHeaderLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keyring: wrap: %w", err)
	}
	return kek.x.seal(out, nonce, key.raw[:], ctx.ad(out[:wrapHeaderLen]))
}

// WrappedVersions returns the KEK version a wrapped key needs and the
// wrapped key's own version.
func WrappedVersions(wrapped []byte) (kek, key uint32, err error) {
	if len(wrapped) != WrappedSize || wrapped[0] != wrapMagic || wrapped[1] != wrapFormat {
		return 0, 0, ErrFormat
	}
	return binary.BigEndian.Uint32(wrapped[2:6]), binary.BigEndian.Uint32(wrapped[6:10]), nil
}

// Unwrap decrypts a key wrapped with Wrap under kek for ctx.
func Unwrap(kek *Key, ctx KeyContext, wrapped []byte) (*Key, error) {
	kv, v, err := WrappedVersions(wrapped)
	if err != nil {
		return nil, err
	}
	if kv != kek.version {
		return nil, fmt.Errorf("%w: wrapped under KEK version %d, KEK is version %d", ErrKeyVersion, kv, kek.version)
	}
	raw, err := kek.x.open(nil, wrapped[wrapHeaderLen:wrapHeaderLen+xaesNonceSize], wrapped[wrapHeaderLen+xaesNonceSize:], ctx.ad(wrapped[:wrapHeaderLen]))
	if err != nil {
		return nil, ErrOpen
	}
	return keyFrom(v, raw)
}
