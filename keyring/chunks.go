package keyring

import (
	"crypto/cipher"
	"fmt"
)

// Chunks seals and opens the chunks of one blob stream one at a time, for
// storage that keeps a blob's chunks apart and serves byte ranges: chunk i
// is opened without reading chunks 0..i-1. The construction is the one
// Writer and Reader use (same header, key derivation and nonces), so a
// stream sealed by either opens with the other.
//
// The caller keeps the order: which counter a chunk has and whether it is
// the last. Opening with the wrong counter, the wrong last flag, another
// stream's header or another place fails with ErrOpen, so chunks cannot be
// reordered, dropped at the end, or moved between blobs unnoticed.
type Chunks struct {
	aead   cipher.AEAD
	header []byte
}

// NewChunks starts a new stream under k, bound to place; its header must be
// stored with the chunks (it holds the key version and the stream's salt).
func NewChunks(k *Key, place Place) (*Chunks, error) {
	header, aead, err := newStream(k, place)
	if err != nil {
		return nil, err
	}
	return &Chunks{aead: aead, header: header}, nil
}

// OpenChunks resumes the stream with header, sealed under k for place.
func OpenChunks(k *Key, place Place, header []byte) (*Chunks, error) {
	aead, err := openStream(k, place, header)
	if err != nil {
		return nil, err
	}
	return &Chunks{aead: aead, header: append([]byte(nil), header...)}, nil
}

// Header is the stream header (a copy).
func (c *Chunks) Header() []byte { return append([]byte(nil), c.header...) }

// ChunkOverhead is what sealing adds to a chunk.
const ChunkOverhead = chunkOverhead

// Seal appends chunk counter, sealed, to dst. Every chunk but the last
// holds exactly ChunkSize bytes; the last holds 0 to ChunkSize (0 only for
// an empty blob).
func (c *Chunks) Seal(dst []byte, counter uint64, last bool, plain []byte) ([]byte, error) {
	if len(plain) > ChunkSize || (!last && len(plain) != ChunkSize) {
		return nil, fmt.Errorf("keyring: chunk %d of %d bytes (last %v)", counter, len(plain), last)
	}
	var n [12]byte
	chunkNonce(&n, counter, last)
	return c.aead.Seal(dst, n[:], plain, nil), nil
}

// Open appends the plaintext of sealed chunk counter to dst; ErrOpen if it
// is not that chunk of this stream.
func (c *Chunks) Open(dst []byte, counter uint64, last bool, sealed []byte) ([]byte, error) {
	if len(sealed) < chunkOverhead || len(sealed) > ChunkSize+chunkOverhead {
		return nil, ErrOpen
	}
	var n [12]byte
	chunkNonce(&n, counter, last)
	pt, err := c.aead.Open(dst, n[:], sealed, nil)
	if err != nil {
		return nil, ErrOpen
	}
	if last && len(pt) == len(dst) && counter > 0 {
		return nil, ErrOpen // only an empty blob has an empty last chunk
	}
	return pt, nil
}

// ChunkCount is the number of chunks of a blob of size plaintext bytes.
func ChunkCount(size int64) uint64 {
	if size <= 0 {
		return 1
	}
	return uint64((size + ChunkSize - 1) / ChunkSize)
}
