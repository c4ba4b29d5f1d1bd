package keyring

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

// TestChunksInteroperate: a stream written by Writer opens chunk by chunk
// with Chunks, and chunks sealed by Chunks read back with Reader; any
// chunk opened at the wrong counter, last flag, place or header fails.
func TestChunksInteroperate(t *testing.T) {
	k := mustKey(t, 3)
	place := Place{Tenant: "acme", RecordID: "b1", Field: "content", Version: 1}
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17} {
		plain := make([]byte, size)
		rand.Read(plain)

		// Chunks -> Reader.
		c, err := NewChunks(k, place)
		if err != nil {
			t.Fatal(err)
		}
		n := ChunkCount(int64(size))
		stream := c.Header()
		var sealed [][]byte
		for i := uint64(0); i < n; i++ {
			end := min(int(i+1)*ChunkSize, size)
			ct, err := c.Seal(nil, i, i == n-1, plain[int(i)*ChunkSize:end])
			if err != nil {
				t.Fatal(err)
			}
			sealed = append(sealed, ct)
			stream = append(stream, ct...)
		}
		r, err := NewReader(bytes.NewReader(stream), k, place)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: Reader of a Chunks stream: %v, equal %v", size, err, bytes.Equal(got, plain))
		}

		// Random access with OpenChunks; wrong counter, flag, place fail.
		o, err := OpenChunks(k, place, c.Header())
		if err != nil {
			t.Fatal(err)
		}
		for i := n; i > 0; i-- {
			j := i - 1
			pt, err := o.Open(nil, j, j == n-1, sealed[j])
			end := min(int(j+1)*ChunkSize, size)
			if err != nil || !bytes.Equal(pt, plain[int(j)*ChunkSize:end]) {
				t.Fatalf("size %d chunk %d: %v", size, j, err)
			}
			if _, err := o.Open(nil, j, j != n-1, sealed[j]); !errors.Is(err, ErrOpen) {
				t.Fatalf("size %d chunk %d with the wrong last flag: %v", size, j, err)
			}
			if _, err := o.Open(nil, j+1, j == n-1, sealed[j]); !errors.Is(err, ErrOpen) {
				t.Fatalf("size %d chunk %d at another counter: %v", size, j, err)
			}
		}
		other := place
		other.RecordID = "b2"
		if o2, err := OpenChunks(k, other, c.Header()); err != nil {
			t.Fatal(err)
		} else if _, err := o2.Open(nil, 0, n == 1, sealed[0]); !errors.Is(err, ErrOpen) {
			t.Fatalf("chunk moved to another blob: %v", err)
		}

		// Writer -> Chunks.
		var buf bytes.Buffer
		w, err := NewWriter(&buf, k, place)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(plain)
		w.Close()
		ws := buf.Bytes()
		o3, err := OpenChunks(k, place, ws[:streamHeaderLen])
		if err != nil {
			t.Fatal(err)
		}
		body := ws[streamHeaderLen:]
		var back []byte
		for i := uint64(0); i < n; i++ {
			l := min(ChunkSize+chunkOverhead, len(body))
			if back, err = o3.Open(back, i, i == n-1, body[:l]); err != nil {
				t.Fatalf("size %d: chunk %d of a Writer stream: %v", size, i, err)
			}
			body = body[l:]
		}
		if !bytes.Equal(back, plain) || len(body) != 0 {
			t.Fatalf("size %d: Writer stream through Chunks differs", size)
		}
	}
	if _, err := OpenChunks(k, Place{}, []byte("short")); !errors.Is(err, ErrFormat) {
		t.Fatalf("short header: %v", err)
	}
	c, _ := NewChunks(k, place)
	if _, err := c.Seal(nil, 0, false, make([]byte, 10)); err == nil {
		t.Fatal("a short chunk that is not the last was sealed")
	}
}
