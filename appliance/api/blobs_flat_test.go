//go:build !race

package api_test

// TestBlob200MBFlatMemory streams 200 MB through sealing and the store:
// under the race detector that takes minutes of make test's ten, so it is
// built without it, and make test runs it in a run of its own without
// -race (the code it drives runs under -race in the other blob tests).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/custos/custos/appliance/blobs"
)

// TestBlob200MBFlatMemory (acceptance 5): a 200 MB recording goes in and
// out over real HTTP; the SHA-256 of what comes back is the one of what
// went in (and the one the server recorded), and the process's peak heap
// grows by far less than the blob — the server (node, store, API and this
// client in one process) never holds it.
func TestBlob200MBFlatMemory(t *testing.T) {
	const size = 200 << 20
	e := blobEnv(t, blobs.Config{})
	base := e.serve(t)
	client := &http.Client{}
	baseline := heapNow()
	stop := make(chan struct{})
	peak := heapPeak(stop)

	in := newStream(42, size)
	req, _ := http.NewRequest("POST", base+"/v1/tenants/acme/blobs?subject=guest-1", in)
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+e.ownerKey("acme"))
	req.Header.Set("Content-Type", "audio/wav")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var b blobs.Blob
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 || json.Unmarshal(body, &b) != nil {
		t.Fatalf("upload: %d %s", res.StatusCode, body)
	}
	sent := hex.EncodeToString(in.h.Sum(nil))
	if b.SHA256 != sent || b.Size != size {
		t.Fatalf("recorded %s (%d bytes), sent %s", b.SHA256, b.Size, sent)
	}

	req, _ = http.NewRequest("GET", base+"/v1/tenants/acme/blobs/"+b.ID, nil)
	req.Header.Set("Authorization", "Bearer "+e.ownerKey("acme"))
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || n != size {
		t.Fatalf("download: %d, %d bytes, %v", res.StatusCode, n, err)
	}
	close(stop)
	p := <-peak
	growth, live := int64(p[0])-int64(baseline[0]), int64(p[1])-int64(baseline[1])
	if got := hex.EncodeToString(h.Sum(nil)); got != sent {
		t.Fatalf("downloaded SHA-256 %s, uploaded %s", got, sent)
	}
	t.Logf("200 MB blob in and out: peak heap growth %.1f MB, peak live heap growth %.1f MB (baselines %.1f, %.1f MB)",
		float64(growth)/(1<<20), float64(live)/(1<<20), float64(baseline[0])/(1<<20), float64(baseline[1])/(1<<20))
	// The bounds are fixed, not a share of the blob. What the process
	// keeps (the live heap at each collection) is a few chunk
	// transactions, the raft log cache's newest entries and buffers; the
	// heap as a whole also holds the garbage the store's libraries leave
	// between collections (raft-boltdb encodes each entry into a fresh
	// buffer, bbolt allocates the pages it writes), which the collector's
	// pacing lets grow to about the live heap again.
	if live > 40<<20 || growth > 100<<20 {
		t.Fatalf("streaming a %d MB blob grew the live heap by %d MB and the heap by %d MB", size>>20, live>>20, growth>>20)
	}
}
