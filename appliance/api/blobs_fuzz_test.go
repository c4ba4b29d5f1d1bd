package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/custos/custos/appliance/blobs"
)

// FuzzRange: whatever the Range header, a download never fails with a 5xx,
// and what it serves is consistent: 200 with the whole blob, 206 with
// exactly the bytes its Content-Range names, or 416 naming the size.
func FuzzRange(f *testing.F) {
	for _, s := range []string{"bytes=0-0", "bytes=-1", "bytes=5-", "bytes=70000-70100", "bytes=0-1,3-4", "bytes=-", "bytes= 1-2", "bytes=99999999999999999999-", "items=1-2", ""} {
		f.Add(s)
	}
	e := blobEnv(f, blobs.Config{})
	data := randomBytes(11, 150_000)
	r, b := e.upload(f, "", "audio/wav", data)
	if r.status != http.StatusCreated {
		f.Fatalf("setup upload: %d %s", r.status, r.body)
	}
	owner := e.asOwner("acme")
	f.Fuzz(func(t *testing.T, rng string) {
		req := func(r *http.Request) { r.Header.Set("Range", rng) }
		res := doOn(t, e.app, "GET", "/v1/tenants/acme/blobs/"+b.ID, "", owner, req)
		switch res.status {
		case http.StatusOK:
			if !bytes.Equal(res.body, data) {
				t.Fatalf("Range %q: 200 with %d bytes", rng, len(res.body))
			}
		case http.StatusPartialContent:
			var from, to, size int
			if _, err := fmt.Sscanf(res.header.Get("Content-Range"), "bytes %d-%d/%d", &from, &to, &size); err != nil || size != len(data) || from < 0 || to < from || to >= size {
				t.Fatalf("Range %q: Content-Range %q", rng, res.header.Get("Content-Range"))
			}
			if !bytes.Equal(res.body, data[from:to+1]) {
				t.Fatalf("Range %q: the body is not bytes %d-%d", rng, from, to)
			}
		case http.StatusRequestedRangeNotSatisfiable:
			if got := res.header.Get("Content-Range"); got != fmt.Sprintf("bytes */%d", len(data)) {
				t.Fatalf("Range %q: 416 with Content-Range %q", rng, got)
			}
		default:
			t.Fatalf("Range %q: %d %s", rng, res.status, res.body)
		}
	})
}
