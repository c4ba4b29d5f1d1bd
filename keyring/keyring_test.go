package keyring

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"testing"
)

func mustKey(t testing.TB, v uint32) *Key {
	t.Helper()
	k, err := NewKey(v)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var home = Place{Tenant: "acme", Collection: "guests", RecordID: "g-1", Field: "email", Version: 3}

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustKey(t, 1)
	for _, size := range []int{0, 1, 100, 1024, 1 << 20} {
		pt := make([]byte, size)
		rand.Read(pt)
		ct, err := Seal(k, home, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(pt)+SealOverhead {
			t.Fatalf("size %d: sealed %d bytes, want %d", size, len(ct), len(pt)+SealOverhead)
		}
		got, err := Open(k, home, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("size %d: open: %v", size, err)
		}
	}
}

// A sealed value moved to any other place, or opened with another key or
// key version, does not open.
func TestSealBindsPlace(t *testing.T) {
	k := mustKey(t, 1)
	ct, err := Seal(k, home, []byte("guest@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	moved := func(f func(*Place)) Place { p := home; f(&p); return p }
	cases := []struct {
		name  string
		place Place
	}{
		{"other tenant", moved(func(p *Place) { p.Tenant = "globex" })},
		{"other collection", moved(func(p *Place) { p.Collection = "calls" })},
		{"other record", moved(func(p *Place) { p.RecordID = "g-2" })},
		{"other field", moved(func(p *Place) { p.Field = "phone" })},
		{"other version", moved(func(p *Place) { p.Version = 4 })},
		// Length-prefixed parts: shifting bytes between parts is another place.
		{"shifted boundary", moved(func(p *Place) { p.Tenant, p.Collection = "acmeg", "uests" })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open(k, tc.place, ct); !errors.Is(err, ErrOpen) {
				t.Fatalf("opened at %+v: %v", tc.place, err)
			}
		})
	}
	if _, err := Open(mustKey(t, 1), home, ct); !errors.Is(err, ErrOpen) {
		t.Fatalf("another key of the same version opened it: %v", err)
	}
	if _, err := Open(mustKey(t, 2), home, ct); !errors.Is(err, ErrKeyVersion) {
		t.Fatalf("another key version: %v", err)
	}
	// The key version in the header is authenticated: editing it fails.
	forged := bytes.Clone(ct)
	forged[5] = 2
	if _, err := Open(mustKeyFrom(t, 2, k.raw[:]), home, forged); !errors.Is(err, ErrOpen) {
		t.Fatalf("edited key version opened: %v", err)
	}
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x40
		if _, err := Open(k, home, bad); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
}

func TestWrapUnwrap(t *testing.T) {
	kek := mustKey(t, 7)
	dek := mustKey(t, 3)
	ctx := KeyContext{Tenant: "acme", Subject: "guest-42"}
	w, err := Wrap(kek, ctx, dek)
	if err != nil {
		t.Fatal(err)
	}
	if kv, v, err := WrappedVersions(w); err != nil || kv != 7 || v != 3 {
		t.Fatalf("versions %d %d %v", kv, v, err)
	}
	got, err := Unwrap(kek, ctx, w)
	if err != nil || got.raw != dek.raw || got.Version() != 3 {
		t.Fatalf("unwrap: %v", err)
	}
	for _, other := range []KeyContext{{Tenant: "globex", Subject: "guest-42"}, {Tenant: "acme", Subject: "guest-43"}, {Tenant: "acme"}} {
		if _, err := Unwrap(kek, other, w); !errors.Is(err, ErrOpen) {
			t.Fatalf("unwrapped for %+v: %v", other, err)
		}
	}
	if bytes.Contains(w, dek.raw[:]) {
		t.Fatal("wrapped key contains the key")
	}
}

func encryptBlob(t testing.TB, k *Key, p Place, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, k, p)
	if err != nil {
		t.Fatal(err)
	}
	// Uneven writes exercise the chunk buffering.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+len(rest)%7919)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decryptBlob(k *Key, p Place, blob []byte) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(blob), k, p)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestStreamRoundTrip(t *testing.T) {
	k := mustKey(t, 1)
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3 * ChunkSize, 3*ChunkSize + 17} {
		data := make([]byte, size)
		rand.Read(data)
		blob := encryptBlob(t, k, home, data)
		chunks := max(1, (size+ChunkSize-1)/ChunkSize)
		if want := streamHeaderLen + size + chunks*chunkOverhead; len(blob) != want {
			t.Fatalf("size %d: %d bytes, want %d", size, len(blob), want)
		}
		got, err := decryptBlob(k, home, blob)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: %v", size, err)
		}
	}
}

func TestStreamDetectsTampering(t *testing.T) {
	k := mustKey(t, 1)
	data := make([]byte, 3*ChunkSize+100)
	rand.Read(data)
	blob := encryptBlob(t, k, home, data)
	enc := ChunkSize + chunkOverhead
	chunk := func(i int) []byte { return blob[streamHeaderLen+i*enc : min(len(blob), streamHeaderLen+(i+1)*enc)] }
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	header := blob[:streamHeaderLen]
	other := encryptBlob(t, k, home, data)
	cases := []struct {
		name string
		blob []byte
	}{
		{"truncated at a chunk boundary", blob[:streamHeaderLen+3*enc]},
		{"truncated mid-chunk", blob[:len(blob)-5]},
		{"only the header", header},
		{"chunks reordered", join(header, chunk(1), chunk(0), chunk(2), chunk(3))},
		{"chunk dropped", join(header, chunk(0), chunk(2), chunk(3))},
		{"chunk duplicated", join(header, chunk(0), chunk(0), chunk(1), chunk(2), chunk(3))},
		{"data appended", join(blob, []byte{0})},
		{"chunk from another stream", join(header, chunk(0), other[streamHeaderLen+enc:streamHeaderLen+2*enc], chunk(2), chunk(3))},
		{"bit flipped", func() []byte { b := bytes.Clone(blob); b[streamHeaderLen+enc+10] ^= 1; return b }()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decryptBlob(k, home, tc.blob)
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("err = %v (%d bytes read), want ErrOpen", err, len(got))
			}
		})
	}
	moved := home
	moved.RecordID = "g-2"
	if _, err := decryptBlob(k, moved, blob); !errors.Is(err, ErrOpen) {
		t.Fatalf("blob opened at another record: %v", err)
	}
}

// A 50 MB blob streams through with memory bounded by a few chunks.
func TestStream50MBBoundedMemory(t *testing.T) {
	k := mustKey(t, 1)
	const size = 50 << 20
	pr, pw := io.Pipe()
	srcHash, dstHash := sha256.New(), sha256.New()
	go func() {
		w, err := NewWriter(pw, k, home)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		src := io.TeeReader(io.LimitReader(rand.Reader, size), srcHash)
		if _, err := io.Copy(w, src); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(w.Close())
	}()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := NewReader(pr, k, home)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(dstHash, r)
	if err != nil || n != size {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	runtime.ReadMemStats(&after)
	if !bytes.Equal(srcHash.Sum(nil), dstHash.Sum(nil)) {
		t.Fatal("plaintext differs after the round trip")
	}
	// Heap in use stays far below the blob's size (a few 64 KiB chunks).
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 8<<20 {
		t.Fatalf("heap in use grew by %d bytes for a %d-byte blob", grew, size)
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := keyFrom(1, bytes.Repeat([]byte{7}, KeySize))
	ct, _ := Seal(k, home, []byte("seed"))
	f.Add(ct)
	f.Add([]byte{sealMagic, sealFormat, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if pt, err := Open(k, home, data); err == nil {
			// Only a genuine ciphertext opens.
			if again, err := Open(k, home, data); err != nil || !bytes.Equal(pt, again) {
				t.Fatal("open is not deterministic")
			}
		}
		_, _ = SealedKeyVersion(data)
	})
}

func FuzzUnwrap(f *testing.F) {
	kek, _ := keyFrom(1, bytes.Repeat([]byte{9}, KeySize))
	dek, _ := keyFrom(2, bytes.Repeat([]byte{5}, KeySize))
	w, _ := Wrap(kek, KeyContext{Tenant: "acme"}, dek)
	f.Add(w)
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := Unwrap(kek, KeyContext{Tenant: "acme"}, data); err == nil && k.raw != dek.raw {
			t.Fatal("unwrapped a different key")
		}
	})
}

func FuzzStreamReader(f *testing.F) {
	k, _ := keyFrom(1, bytes.Repeat([]byte{3}, KeySize))
	f.Add(encryptBlob(f, k, home, []byte("hello")))
	f.Add(encryptBlob(f, k, home, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), k, home)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, r)
	})
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func mustKeyFrom(t testing.TB, v uint32, raw []byte) *Key {
	t.Helper()
	k, err := keyFrom(v, raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Seal's epochs are ordinary XAES-256-GCM: a value sealed with a fully
// random nonce opens, and the prefix changes once an epoch is used up.
func TestSealEpochs(t *testing.T) {
	k := mustKey(t, 1)
	a, _ := Seal(k, home, []byte("a"))
	b, _ := Seal(k, home, []byte("b"))
	nonceA, nonceB := a[sealHeaderLen:sealHeaderLen+24], b[sealHeaderLen:sealHeaderLen+24]
	if !bytes.Equal(nonceA[:12], nonceB[:12]) || bytes.Equal(nonceA[12:], nonceB[12:]) {
		t.Fatal("within an epoch: same prefix and distinct random suffixes expected")
	}
	k.epoch.used.Store(epochMessages)
	c, _ := Seal(k, home, []byte("c"))
	if bytes.Equal(c[sealHeaderLen:sealHeaderLen+12], nonceA[:12]) {
		t.Fatal("epoch not renewed after epochMessages messages")
	}
	for _, ct := range [][]byte{a, b, c} {
		if _, err := Open(k, home, ct); err != nil {
			t.Fatal(err)
		}
	}
	// Interoperability: a fully random nonce, sealed by the bare XAES.
	header := []byte{sealMagic, sealFormat, 0, 0, 0, 1}
	nonce := make([]byte, 24)
	rand.Read(nonce)
	ct, err := k.x.seal(append(bytes.Clone(header), nonce...), nonce, []byte("plain xaes"), home.ad("custos/seal/v1", header))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := Open(k, home, ct); err != nil || string(pt) != "plain xaes" {
		t.Fatalf("bare XAES ciphertext: %q %v", pt, err)
	}
}
