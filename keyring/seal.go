package keyring

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrOpen: the ciphertext does not authenticate under this key and
	// place — tampered, truncated, or moved from another place.
	ErrOpen = errors.New("keyring: message authentication failed")
	// ErrFormat: the bytes are not a ciphertext of a known format.
	ErrFormat = errors.New("keyring: malformed ciphertext")
	// ErrKeyVersion: the ciphertext names another key version.
	ErrKeyVersion = errors.New("keyring: ciphertext was sealed with another key version")
)

// KeySize is the size of every symmetric key.
const KeySize = 32

// Key is a versioned 256-bit symmetric key: a data key or a key-encryption
// key. Its bytes never leave the package except through Wrap.
type Key struct {
	version uint32
	x       *xaes
	raw     [KeySize]byte
}

// NewKey makes a random key with the given version.
func NewKey(version uint32) (*Key, error) {
	var raw [KeySize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("keyring: new key: %w", err)
	}
	return keyFrom(version, raw[:])
}

func keyFrom(version uint32, raw []byte) (*Key, error) {
	x, err := newXAES(raw)
	if err != nil {
		return nil, err
	}
	k := &Key{version: version, x: x}
	copy(k.raw[:], raw)
	return k, nil
}

// Version is the key's version.
func (k *Key) Version() uint32 { return k.version }

// Place is where a sealed value lives. All of it is bound to the ciphertext.
type Place struct {
	Tenant     string
	Collection string
	RecordID   string
	Field      string
	Version    uint64 // the record version
}

// ad encodes the associated data: a domain label, then each part with its
// length, so that no two different places encode the same.
func (p Place) ad(domain string, header []byte) []byte {
	b := make([]byte, 0, 64+len(p.Tenant)+len(p.Collection)+len(p.RecordID)+len(p.Field))
	b = appendString(b, domain)
	b = appendString(b, p.Tenant)
	b = appendString(b, p.Collection)
	b = appendString(b, p.RecordID)
	b = appendString(b, p.Field)
	b = binary.BigEndian.AppendUint64(b, p.Version)
	return append(b, header...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Sealed value format:
//
//	magic 'S' | format 1 | key version (4, big endian) | nonce (24) | AES-GCM ciphertext and tag
//
// The 6-byte header is part of the associated data.
const (
	sealMagic     = 'S'
	sealFormat    = 1
	sealHeaderLen = 6
	// SealOverhead is the size a sealed value adds to its plaintext.
	SealOverhead = sealHeaderLen + xaesNonceSize + xaesOverhead
)

// Seal encrypts plaintext under k, bound to place.
func Seal(k *Key, place Place, plaintext []byte) ([]byte, error) {
	out := make([]byte, sealHeaderLen+xaesNonceSize, SealOverhead+len(plaintext))
	out[0], out[1] = sealMagic, sealFormat
	binary.BigEndian.PutUint32(out[2:6], k.version)
	nonce := out[sealHeaderLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keyring: seal: %w", err)
	}
	return k.x.seal(out, nonce, plaintext, place.ad("custos/seal/v1", out[:sealHeaderLen]))
}

// SealedKeyVersion returns the version of the key a sealed value needs.
func SealedKeyVersion(sealed []byte) (uint32, error) {
	if len(sealed) < SealOverhead || sealed[0] != sealMagic || sealed[1] != sealFormat {
		return 0, ErrFormat
	}
	return binary.BigEndian.Uint32(sealed[2:6]), nil
}

// Open decrypts a value sealed with Seal under k for place.
func Open(k *Key, place Place, sealed []byte) ([]byte, error) {
	v, err := SealedKeyVersion(sealed)
	if err != nil {
		return nil, err
	}
	if v != k.version {
		return nil, fmt.Errorf("%w: sealed with version %d, key is version %d", ErrKeyVersion, v, k.version)
	}
	nonce := sealed[sealHeaderLen : sealHeaderLen+xaesNonceSize]
	pt, err := k.x.open(nil, nonce, sealed[sealHeaderLen+xaesNonceSize:], place.ad("custos/seal/v1", sealed[:sealHeaderLen]))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
