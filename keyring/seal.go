package keyring

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
)

// KeySize is the size of every symmetric key.
const KeySize = 32

// Key is a versioned 256-bit symmetric key: a data key or a key-encryption
// key. Its bytes never leave the package except through Wrap.
type Key struct {
	version uint32
	x       *xaes
	raw     [KeySize]byte

	// Derived XAES keys, so that most messages skip the derivation (see
	// "Epochs" in DESIGN.md).
	mu     sync.Mutex
	epoch  *epoch    // the one Seal uses now
	recent [8]*epoch // recently derived, for Open; a small ring
	next   int
}

// An epoch is one XAES nonce prefix and the AES-GCM key it derives. Seal
// draws a fresh random prefix every epochMessages messages; within an epoch
// the remaining 96 nonce bits are random, so a derived key sees at most
// 2^20 messages (collision probability below 2^-57).
type epoch struct {
	prefix [12]byte
	aead   cipher.AEAD
	used   atomic.Uint64
}

const epochMessages = 1 << 20

// sealEpoch returns the epoch for the next message.
func (k *Key) sealEpoch() (*epoch, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e := k.epoch; e != nil && e.used.Add(1) <= epochMessages {
		return e, nil
	}
	e := &epoch{}
	if _, err := rand.Read(e.prefix[:]); err != nil {
		return nil, err
	}
	aead, err := k.x.derive(e.prefix[:])
	if err != nil {
		return nil, err
	}
	e.aead = aead
	e.used.Store(1)
	k.epoch = e
	k.remember(e)
	return e, nil
}

// openAEAD returns the AES-GCM key for a nonce prefix, derived or cached.
func (k *Key) openAEAD(prefix []byte) (cipher.AEAD, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range k.recent {
		if e != nil && bytes.Equal(e.prefix[:], prefix) {
			return e.aead, nil
		}
	}
	aead, err := k.x.derive(prefix)
	if err != nil {
		return nil, err
	}
	e := &epoch{aead: aead}
	copy(e.prefix[:], prefix)
	k.remember(e)
	return aead, nil
}

func (k *Key) remember(e *epoch) {
	k.recent[k.next] = e
	k.next = (k.next + 1) % len(k.recent)
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
	e, err := k.sealEpoch()
	if err != nil {
		return nil, fmt.Errorf("keyring: seal: %w", err)
	}
	nonce := out[sealHeaderLen:]
	copy(nonce, e.prefix[:])
	if _, err := rand.Read(nonce[12:]); err != nil {
		return nil, fmt.Errorf("keyring: seal: %w", err)
	}
	return e.aead.Seal(out, nonce[12:], plaintext, place.ad("custos/seal/v1", out[:sealHeaderLen])), nil
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
	aead, err := k.openAEAD(nonce[:12])
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nonce[12:], sealed[sealHeaderLen+xaesNonceSize:], place.ad("custos/seal/v1", sealed[:sealHeaderLen]))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
