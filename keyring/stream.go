package keyring

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Blob stream format (the STREAM construction, as in age's payload):
//
//	magic 'B' | format 1 | key version (4) | salt (32)
//	chunk*: AES-256-GCM(chunk of ChunkSize plaintext bytes, or fewer for the last)
//
// The stream key is HKDF-SHA256(data key, salt, info = place and header),
// fresh for every stream, so nonces never repeat under a key. Chunk i's
// nonce is i as 11 bytes big endian, then 0x01 for the last chunk and 0x00
// otherwise: a reordered, dropped, duplicated or appended chunk fails to
// open, and so does a stream truncated at a chunk boundary (its last chunk
// was not sealed as last). An empty blob is one empty last chunk.
const (
	streamMagic     = 'B'
	streamFormat    = 1
	streamHeaderLen = 6 + 32
	// ChunkSize is the plaintext size of every chunk but the last.
	ChunkSize     = 64 << 10
	chunkOverhead = 16
)

func streamAEAD(k *Key, place Place, header []byte) (cipher.AEAD, error) {
	sk, err := hkdf.Key(sha256.New, k.raw[:], header[6:], string(place.ad("custos/blob/v1", header[:6])), KeySize)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(sk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func chunkNonce(n *[12]byte, counter uint64, last bool) {
	clear(n[:])
	binary.BigEndian.PutUint64(n[3:11], counter)
	if last {
		n[11] = 1
	}
}

// newStream makes a new stream's header (fresh salt) and its cipher.
func newStream(k *Key, place Place) ([]byte, cipher.AEAD, error) {
	header := make([]byte, streamHeaderLen)
	header[0], header[1] = streamMagic, streamFormat
	binary.BigEndian.PutUint32(header[2:6], k.version)
	if _, err := rand.Read(header[6:]); err != nil {
		return nil, nil, fmt.Errorf("keyring: stream: %w", err)
	}
	aead, err := streamAEAD(k, place, header)
	if err != nil {
		return nil, nil, err
	}
	return header, aead, nil
}

// openStream checks a stream's header against k and returns its cipher.
func openStream(k *Key, place Place, header []byte) (cipher.AEAD, error) {
	if len(header) != streamHeaderLen || header[0] != streamMagic || header[1] != streamFormat {
		return nil, ErrFormat
	}
	if v := binary.BigEndian.Uint32(header[2:6]); v != k.version {
		return nil, fmt.Errorf("%w: stream sealed with version %d, key is version %d", ErrKeyVersion, v, k.version)
	}
	return streamAEAD(k, place, header)
}

// Writer encrypts a blob stream; Close must be called to write the last
// chunk.
type Writer struct {
	dst     io.Writer
	aead    cipher.AEAD
	buf     []byte // plaintext of the chunk being filled
	out     []byte
	counter uint64
	nonce   [12]byte
	err     error
	closed  bool
}

// NewWriter starts an encrypted blob stream on dst under k, bound to place.
func NewWriter(dst io.Writer, k *Key, place Place) (*Writer, error) {
	header, aead, err := newStream(k, place)
	if err != nil {
		return nil, err
	}
	if _, err := dst.Write(header); err != nil {
		return nil, err
	}
	return &Writer{dst: dst, aead: aead, buf: make([]byte, 0, ChunkSize), out: make([]byte, 0, ChunkSize+chunkOverhead)}, nil
}

// Write encrypts p. A full chunk is written only once more data follows it,
// so that the last chunk is always marked as such.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("keyring: write to a closed stream")
	}
	n := 0
	for len(p) > 0 {
		if len(w.buf) == ChunkSize {
			if err := w.flush(false); err != nil {
				return n, err
			}
		}
		k := copy(w.buf[len(w.buf):ChunkSize], p)
		w.buf = w.buf[:len(w.buf)+k]
		p, n = p[k:], n+k
	}
	return n, nil
}

func (w *Writer) flush(last bool) error {
	chunkNonce(&w.nonce, w.counter, last)
	w.out = w.aead.Seal(w.out[:0], w.nonce[:], w.buf, nil)
	if _, err := w.dst.Write(w.out); err != nil {
		w.err = err
		return err
	}
	w.counter++
	w.buf = w.buf[:0]
	return nil
}

// Close writes the last chunk. It does not close the destination.
func (w *Writer) Close() error {
	if w.err != nil || w.closed {
		return w.err
	}
	w.closed = true
	return w.flush(true)
}

// Reader decrypts a blob stream. It returns plaintext only after the chunk
// that holds it has been authenticated; a tampered or truncated stream ends
// in ErrOpen, never in silently short data.
type Reader struct {
	src     *bufio.Reader
	aead    cipher.AEAD
	in      []byte
	plain   []byte // decrypted, not yet returned
	counter uint64
	nonce   [12]byte
	done    bool
	err     error
}

// NewReader starts decrypting a blob stream from src with k for place.
func NewReader(src io.Reader, k *Key, place Place) (*Reader, error) {
	header := make([]byte, streamHeaderLen)
	if _, err := io.ReadFull(src, header); err != nil {
		return nil, fmt.Errorf("%w: short header", ErrFormat)
	}
	aead, err := openStream(k, place, header)
	if err != nil {
		return nil, err
	}
	return &Reader{src: bufio.NewReaderSize(src, ChunkSize+chunkOverhead+1), aead: aead, in: make([]byte, ChunkSize+chunkOverhead)}, nil
}

// StreamKeyVersion reads the key version from a stream's first bytes.
func StreamKeyVersion(header []byte) (uint32, error) {
	if len(header) < 6 || header[0] != streamMagic || header[1] != streamFormat {
		return 0, ErrFormat
	}
	return binary.BigEndian.Uint32(header[2:6]), nil
}

func (r *Reader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		r.err = r.next()
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

// next reads and opens one chunk.
func (r *Reader) next() error {
	n, err := io.ReadFull(r.src, r.in)
	last := false
	switch {
	case err == nil:
		_, perr := r.src.Peek(1)
		last = errors.Is(perr, io.EOF)
		if perr != nil && !last {
			return perr
		}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		last = true
	default:
		return err
	}
	if n < chunkOverhead {
		return ErrOpen // truncated: no complete last chunk
	}
	chunkNonce(&r.nonce, r.counter, last)
	pt, oerr := r.aead.Open(r.in[:0], r.nonce[:], r.in[:n], nil)
	if oerr != nil {
		return ErrOpen
	}
	if last && len(pt) == 0 && r.counter > 0 {
		return ErrOpen // only an empty blob has an empty last chunk
	}
	r.counter++
	r.plain, r.done = pt, last
	return nil
}
