package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/raftstore"
)

// blobEnv is an env with tenant acme, a guests collection and record g1.
func blobEnv(t testing.TB, cfg blobs.Config) *env {
	t.Helper()
	e := newEnvStoreCfg(t, cfg)
	for _, s := range []struct{ method, path, body string }{
		{"POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`},
		{"PUT", "/v1/tenants/acme/collections/guests", guestsV1},
		{"POST", "/v1/tenants/acme/collections/guests/records", `{"id":"g1","subject":"guest-1","fields":{"email":"jane@example.com"}}`},
	} {
		if r := e.do(s.method, s.path, s.body); r.status >= 300 {
			t.Fatalf("setup %s %s: %d %s", s.method, s.path, r.status, r.body)
		}
	}
	return e
}

// newEnvStoreCfg is newEnv with a blob configuration.
func newEnvStoreCfg(t testing.TB, cfg blobs.Config) *env {
	t.Helper()
	e := newEnv(t, api.Options{})
	e.blobCfg = cfg
	e.app = e.server(e.deps(), api.Options{})
	return e
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

func (e *env) upload(t testing.TB, query, contentType string, data []byte) (response, blobs.Blob) {
	t.Helper()
	r := e.do("POST", "/v1/tenants/acme/blobs"+query, string(data), withHeader("Content-Type", contentType))
	var b blobs.Blob
	if r.status == http.StatusCreated {
		r.json(t, &b)
	}
	return r, b
}

func TestBlobRoundTrip(t *testing.T) {
	e := blobEnv(t, blobs.Config{})
	for i, size := range []int{0, 1, 1000, 64 << 10, 64<<10 + 1, 3*(64<<10) + 123, 2<<20 + 7} {
		data := randomBytes(uint64(i), size)
		sum := sha256.Sum256(data)
		r, b := e.upload(t, "?subject=guest-1&collection=guests&record=g1", "audio/wav", data)
		if r.status != http.StatusCreated {
			t.Fatalf("size %d: upload %d %s", size, r.status, r.body)
		}
		if b.Size != int64(size) || b.SHA256 != hex.EncodeToString(sum[:]) || b.ContentType != "audio/wav" || b.Subject != "guest-1" || b.Record != "g1" || b.Collection != "guests" {
			t.Fatalf("size %d: metadata %+v", size, b)
		}
		if loc := r.header.Get("Location"); loc != "/v1/tenants/acme/blobs/"+b.ID {
			t.Fatalf("Location %q", loc)
		}
		g := e.do("GET", "/v1/tenants/acme/blobs/"+b.ID, "")
		if g.status != 200 || !bytes.Equal(g.body, data) {
			t.Fatalf("size %d: download %d, %d bytes, equal %v", size, g.status, len(g.body), bytes.Equal(g.body, data))
		}
		for h, want := range map[string]string{"Content-Type": "audio/wav", "Accept-Ranges": "bytes", "ETag": `"` + b.SHA256 + `"`,
			"Custos-Content-Sha256": b.SHA256, "Content-Length": fmt.Sprint(size), "Cache-Control": "no-store"} {
			if got := g.header.Get(h); got != want {
				t.Errorf("size %d: %s %q, want %q", size, h, got, want)
			}
		}
	}
}

func TestBlobRanges(t *testing.T) {
	e := blobEnv(t, blobs.Config{})
	const size = 200_000 // four chunks, the last short
	data := randomBytes(7, size)
	_, b := e.upload(t, "?subject=guest-1", "audio/ogg", data)
	etag := `"` + b.SHA256 + `"`
	cases := []struct {
		name, rng, ifRange string
		status             int
		from, to           int // inclusive; for 206
		contentRange       string
	}{
		{"first byte", "bytes=0-0", "", 206, 0, 0, "bytes 0-0/200000"},
		{"within a chunk", "bytes=10-99", "", 206, 10, 99, "bytes 10-99/200000"},
		{"across chunks", "bytes=65530-131080", "", 206, 65530, 131080, "bytes 65530-131080/200000"},
		{"chunk boundary", "bytes=65536-65536", "", 206, 65536, 65536, "bytes 65536-65536/200000"},
		{"open ended", "bytes=199990-", "", 206, 199990, 199999, "bytes 199990-199999/200000"},
		{"end past size", "bytes=199000-999999", "", 206, 199000, 199999, "bytes 199000-199999/200000"},
		{"suffix", "bytes=-500", "", 206, 199500, 199999, "bytes 199500-199999/200000"},
		{"suffix longer than blob", "bytes=-900000", "", 206, 0, 199999, "bytes 0-199999/200000"},
		{"If-Range matches", "bytes=5-9", etag, 206, 5, 9, "bytes 5-9/200000"},
		{"If-Range differs: whole", "bytes=5-9", `"other"`, 200, 0, 199999, ""},
		{"multiple ranges: whole", "bytes=0-1,5-6", "", 200, 0, 199999, ""},
		{"malformed: whole", "bytes=x-y", "", 200, 0, 199999, ""},
		{"other unit: whole", "items=0-1", "", 200, 0, 199999, ""},
		{"start past end", "bytes=200000-", "", 416, 0, 0, "bytes */200000"},
		{"empty suffix", "bytes=-0", "", 416, 0, 0, "bytes */200000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := []reqOpt{withHeader("Range", c.rng)}
			if c.ifRange != "" {
				opts = append(opts, withHeader("If-Range", c.ifRange))
			}
			r := e.do("GET", "/v1/tenants/acme/blobs/"+b.ID, "", opts...)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if got := r.header.Get("Content-Range"); got != c.contentRange {
				t.Errorf("Content-Range %q, want %q", got, c.contentRange)
			}
			if c.status == 416 {
				checkProblem(t, r, 416, "range-not-satisfiable", "")
				return
			}
			if !bytes.Equal(r.body, data[c.from:c.to+1]) {
				t.Errorf("body of %d bytes differs from bytes %d-%d", len(r.body), c.from, c.to)
			}
		})
	}
}

func TestBlobHeadMetadataListSubjectDelete(t *testing.T) {
	e := blobEnv(t, blobs.Config{})
	var ids []string
	for i := range 5 {
		subject := "guest-1"
		if i%2 == 1 {
			subject = "guest-2"
		}
		_, b := e.upload(t, "?subject="+subject, "application/pdf", randomBytes(uint64(i), 1000+i))
		ids = append(ids, b.ID)
	}
	before := e.chainSizes()["tenant:acme"]
	h := e.do("HEAD", "/v1/tenants/acme/blobs/"+ids[0], "")
	if h.status != 200 || len(h.body) != 0 || h.header.Get("Content-Length") != "1000" || h.header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("HEAD: %d %q %v", h.status, h.body, h.header)
	}
	if after := e.chainSizes()["tenant:acme"]; after != before {
		t.Fatalf("HEAD was audited (%d -> %d entries)", before, after)
	}
	g := e.do("GET", "/v1/tenants/acme/blobs/"+ids[0], "")
	if after := e.chainSizes()["tenant:acme"]; g.status != 200 || after != before+1 {
		t.Fatalf("GET: %d, chain %d -> %d (want one blob.read entry)", g.status, before, after)
	}
	m := e.do("GET", "/v1/tenants/acme/blobs/"+ids[1]+"/metadata", "")
	var meta blobs.Blob
	m.json(t, &meta)
	if m.status != 200 || meta.ID != ids[1] || meta.Subject != "guest-2" || meta.Size != 1001 {
		t.Fatalf("metadata: %d %s", m.status, m.body)
	}

	// Pagination over all, and the subject filter.
	var seen []string
	next := ""
	for page := 0; ; page++ {
		q := "?limit=2"
		if next != "" {
			q += "&after=" + next
		}
		r := e.do("GET", "/v1/tenants/acme/blobs"+q, "")
		var l struct {
			Blobs []blobs.Blob
			Next  string
		}
		r.json(t, &l)
		if r.status != 200 || len(l.Blobs) > 2 || page > 5 {
			t.Fatalf("page %d: %d %s", page, r.status, r.body)
		}
		for _, b := range l.Blobs {
			seen = append(seen, b.ID)
		}
		if next = l.Next; next == "" {
			break
		}
	}
	if len(seen) != 5 {
		t.Fatalf("pagination saw %v, want 5 distinct blobs", seen)
	}
	r := e.do("GET", "/v1/tenants/acme/blobs?subject=guest-2", "")
	if strings.Count(string(r.body), `"subject":"guest-2"`) != 2 || strings.Contains(string(r.body), "guest-1") {
		t.Fatalf("subject filter: %s", r.body)
	}
	s := e.do("GET", "/v1/tenants/acme/subjects/guest-1", "")
	if s.status != 200 || strings.Count(string(s.body), `"content_type":"application/pdf"`) != 3 || !strings.Contains(string(s.body), `"id":"g1"`) {
		t.Fatalf("subject overview: %d %s", s.status, s.body)
	}
	// A subject that holds only blobs is found; one with nothing is not.
	if s := e.do("GET", "/v1/tenants/acme/subjects/guest-2", ""); s.status != 200 {
		t.Fatalf("blob-only subject: %d %s", s.status, s.body)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/subjects/nobody", ""), 404, "not-found", "")

	// Delete: gone from every route, its chunks gone from the store.
	if d := e.do("DELETE", "/v1/tenants/acme/blobs/"+ids[1], ""); d.status != 204 {
		t.Fatalf("delete: %d %s", d.status, d.body)
	}
	for _, p := range []string{"", "/metadata"} {
		checkProblem(t, e.do("GET", "/v1/tenants/acme/blobs/"+ids[1]+p, ""), 404, "not-found", "")
	}
	checkProblem(t, e.do("DELETE", "/v1/tenants/acme/blobs/"+ids[1], ""), 404, "not-found", "")
	if chunkBucket(t, e.store, "acme", ids[1]) {
		t.Fatal("the deleted blob's chunks are still stored")
	}
	if !chunkBucket(t, e.store, "acme", ids[0]) {
		t.Fatal("the control blob has no chunks (the probe sees nothing)")
	}
	r = e.do("GET", "/v1/tenants/acme/blobs?subject=guest-2", "")
	if strings.Contains(string(r.body), ids[1]) {
		t.Fatalf("deleted blob still listed: %s", r.body)
	}
}

func chunkBucket(t *testing.T, store *raftstore.Store, tenant, id string) bool {
	t.Helper()
	var ok bool
	if err := store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		ok = r.BucketExists(tenancytest.Path(tenant, "blob_chunks", id))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ok
}

func pendingUploads(t *testing.T, store *raftstore.Store, tenant string) int {
	t.Helper()
	n := 0
	if err := store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		n = r.Count(tenancytest.Path(tenant, "blob_uploads"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// chunkBuckets counts the blob chunk buckets of tenant: those of finished
// blobs plus any left by an unfinished upload.
func chunkBuckets(t *testing.T, store *raftstore.Store, tenant string) int {
	t.Helper()
	n := 0
	if err := store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		n = r.BucketCount(tenancytest.Path(tenant, "blob_chunks"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBlobBadInput(t *testing.T) {
	e := blobEnv(t, blobs.Config{MaxSize: 100 << 10, ContentTypes: []string{"audio/*", "application/pdf"}})
	cases := []struct {
		name, query, contentType string
		size                     int
		extra                    []reqOpt
		status                   int
		slug, field              string
	}{
		{"too large", "?subject=guest-1", "audio/wav", 100<<10 + 1, nil, 413, "payload-too-large", ""},
		{"too large, several transactions in", "", "audio/wav", 3 << 20, nil, 413, "payload-too-large", ""},
		{"type not accepted", "", "image/png", 10, nil, 415, "unsupported-media-type", ""},
		{"no type", "", "", 10, nil, 415, "unsupported-media-type", ""},
		{"malformed type", "", "audio/", 10, nil, 415, "unsupported-media-type", ""},
		{"compressed", "", "audio/wav", 10, []reqOpt{withHeader("Content-Encoding", "gzip")}, 415, "unsupported-media-type", ""},
		{"bad subject", "?subject=a/b", "audio/wav", 10, nil, 400, "validation", "subject"},
		{"record without collection", "?record=g1", "audio/wav", 10, nil, 422, "validation", "record"},
		{"missing record", "?collection=guests&record=nope", "audio/wav", 10, nil, 422, "validation", "record"},
		{"missing collection", "?collection=nope&record=g1", "audio/wav", 10, nil, 422, "validation", "record"},
		{"unknown parameter", "?owner=globex", "audio/wav", 10, nil, 400, "validation", "owner"},
		{"tenant in the query", "?tenant=globex", "audio/wav", 10, nil, 400, "validation", "tenant"},
		{"digest differs", "", "audio/wav", 10, []reqOpt{withHeader("Custos-Content-SHA256", strings.Repeat("ab", 32))}, 422, "validation", "Custos-Content-SHA256"},
		{"digest malformed", "", "audio/wav", 10, []reqOpt{withHeader("Custos-Content-SHA256", "abc")}, 422, "validation", "sha256"},
		{"chunked: no length", "", "audio/wav", 10, []reqOpt{func(r *http.Request) { r.ContentLength, r.TransferEncoding = -1, []string{"chunked"} }}, 411, "length-required", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := append([]reqOpt{withHeader("Content-Type", c.contentType)}, c.extra...)
			r := e.do("POST", "/v1/tenants/acme/blobs"+c.query, string(randomBytes(1, c.size)), opts...)
			p := checkProblem(t, r, c.status, c.slug, "")
			if c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
				t.Errorf("errors %+v, want one naming %q", p.Errors, c.field)
			}
		})
	}
	if n := pendingUploads(t, e.store, "acme"); n != 0 {
		t.Fatalf("%d unfinished uploads left behind", n)
	}
	if n := chunkBuckets(t, e.store, "acme"); n != 0 {
		t.Fatalf("%d chunk buckets left behind by refused uploads", n)
	}
	r := e.do("GET", "/v1/tenants/acme/blobs", "")
	if r.status != 200 || !strings.Contains(string(r.body), `"blobs":[]`) {
		t.Fatalf("refused uploads are listed: %s", r.body)
	}
	data := randomBytes(9, 5000)
	sum := sha256.Sum256(data)
	if r, _ := e.upload(t, "", "audio/wav", data); r.status != 201 {
		t.Fatalf("control upload: %d %s", r.status, r.body)
	}
	ok := e.do("POST", "/v1/tenants/acme/blobs", string(data), withHeader("Content-Type", "audio/wav"), withHeader("Custos-Content-SHA256", strings.ToUpper(hex.EncodeToString(sum[:]))))
	if ok.status != 201 {
		t.Fatalf("upload with its right digest: %d %s", ok.status, ok.body)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/tenants/acme/blobs/nope"}, {"GET", "/v1/tenants/acme/blobs/a%2Fb"}, {"HEAD", "/v1/tenants/acme/blobs/nope"},
		{"DELETE", "/v1/tenants/acme/blobs/nope"}, {"GET", "/v1/tenants/acme/blobs/nope/metadata"}, {"GET", "/v1/tenants/nope/blobs"},
	} {
		r := e.do(c.method, c.path, "")
		if r.status != 404 {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=501", "?after=a/b", "?subject=a%20b", "?x=1"} {
		checkProblem(t, e.do("GET", "/v1/tenants/acme/blobs"+q, ""), 400, "validation", "")
	}
}

// TestBodyLimitStillHolds: bodies are streamed now, so the limit of every
// route but the upload is kept by the API itself.
func TestBodyLimitStillHolds(t *testing.T) {
	e := newEnv(t, api.Options{BodyLimit: 4 << 10})
	big := `{"id":"acme","display_name":"` + strings.Repeat("x", 8<<10) + `"}`
	checkProblem(t, e.do("POST", "/v1/tenants", big), 413, "payload-too-large", "")
	if r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`); r.status != 201 {
		t.Fatalf("a small body: %d %s", r.status, r.body)
	}
}

// serve runs the env's API on a loopback listener: real HTTP, for what
// app.Test cannot show (streaming, interrupted connections, memory).
func (e *env) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.serveOn(t, ln)
	return "http://" + ln.Addr().String()
}

// serveOn runs the env's API on ln until the test ends.
func (e *env) serveOn(t *testing.T, ln net.Listener) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- e.app.Listener(ln) }()
	t.Cleanup(func() {
		_ = e.app.Shutdown()
		<-done
	})
}

// TestInterruptedUploadLeavesNothing: a client that announces 8 MiB, sends
// 3 MiB (several chunk transactions) and goes away leaves no marker, no
// chunk and no blob behind, and the node serves the next upload.
func TestInterruptedUploadLeavesNothing(t *testing.T) {
	e := blobEnv(t, blobs.Config{})
	base := e.serve(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/tenants/acme/blobs?subject=guest-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n", e.ownerKey("acme"), 8<<20)
	if _, err := conn.Write(randomBytes(3, 3<<20)); err != nil {
		t.Fatal(err)
	}
	// Wait until the upload has stored chunks, then cut the connection.
	testkit.Eventually(t, "chunks stored", func() bool { return chunkBuckets(t, e.store, "acme") == 1 && pendingUploads(t, e.store, "acme") == 1 })
	conn.Close()
	testkit.Eventually(t, "the upload discarded", func() bool { return chunkBuckets(t, e.store, "acme") == 0 && pendingUploads(t, e.store, "acme") == 0 })
	r := e.do("GET", "/v1/tenants/acme/blobs", "")
	if !strings.Contains(string(r.body), `"blobs":[]`) {
		t.Fatalf("an interrupted upload is listed: %s", r.body)
	}
	data := randomBytes(4, 1<<20)
	req, _ := http.NewRequest("POST", base+"/v1/tenants/acme/blobs", bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+e.ownerKey("acme"))
	req.Header.Set("Content-Type", "audio/wav")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("upload after an interrupted one: %d", res.StatusCode)
	}
}

// stream is a deterministic pseudo-random body of n bytes that hashes what
// it hands out, so that 200 MB never sit in the test's memory.
type stream struct {
	r    *rand.ChaCha8
	left int64
	h    hash.Hash
}

func newStream(seed byte, n int64) *stream {
	return &stream{r: rand.NewChaCha8([32]byte{seed}), left: n, h: sha256.New()}
}

func (s *stream) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, _ := s.r.Read(p)
	s.h.Write(p[:n])
	s.left -= int64(n)
	return n, nil
}

// heapPeak samples the heap until stop is closed and returns the highest
// values seen of all heap objects (live and garbage not yet collected) and
// of the live heap (as of the latest collection).
func heapPeak(stop <-chan struct{}) <-chan [2]uint64 {
	out := make(chan [2]uint64, 1)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		var peak [2]uint64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			peak[0] = max(peak[0], s[0].Value.Uint64())
			peak[1] = max(peak[1], s[1].Value.Uint64())
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// heapNow collects and returns the heap objects and the live heap.
func heapNow() [2]uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return [2]uint64{s[0].Value.Uint64(), s[1].Value.Uint64()}
}
