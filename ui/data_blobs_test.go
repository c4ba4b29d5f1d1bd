package ui_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/uitest"
)

func sum(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

// uploadForm is the blobs page's form as a browser sends it: the CSRF
// token and the text fields first, the file last.
func uploadForm(t *testing.T, b *uitest.Browser, tenant string, fields [][2]string, name, contentType string, content []byte) *uitest.Page {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	_ = w.WriteField("csrf", b.CSRF)
	for _, f := range fields {
		_ = w.WriteField(f[0], f[1])
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name))
	h.Set("Content-Type", contentType)
	part, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(content)
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, b.N.URL+"/ui/t/"+tenant+"/blobs", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Origin", b.N.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.Do(t, req)
}

// TestDataBlobs: the list (empty, then with data and a subject filter),
// an upload through the multipart form (streamed to the API with its
// content type and subject), the blob's page with an <audio> element
// whose source honours Range (206 with the right bytes, 416 outside),
// a consent refusal shown with its problem, and a delete that needs the
// typed id.
func TestDataBlobs(t *testing.T) {
	n := uitest.Start(t)
	api := n.Tenant(t, "acme")
	b := n.SignInAt(t, n.User(t, "acme", "olga", "owner", nil, true), "/ui/t/acme/data")
	ctx := context.Background()

	p := b.Get(t, "/ui/t/acme/blobs").Must(t, http.StatusOK)
	if !strings.Contains(p.Text(), "No recording or file") || !contains(p.Actions(), "POST /tenants/:id/blobs") {
		t.Fatalf("empty list: %s %v", p.Text(), p.Actions())
	}
	content := []byte("ID3 0123456789abcdefghijklmnopqrstuvwxyz — a recording")
	p = uploadForm(t, b, "acme", [][2]string{{"subject", "guest-9"}, {"kind", ""}}, "call.mp3", "audio/mpeg", content).Must(t, http.StatusOK)
	if !strings.HasPrefix(p.Path, "/ui/t/acme/blobs/") || !strings.Contains(p.Text(), "Uploaded") {
		t.Fatalf("upload: %s: %s", p.Path, p.Text())
	}
	id := strings.TrimPrefix(strings.SplitN(p.Path, "?", 2)[0], "/ui/t/acme/blobs/")
	meta, err := api.BlobMetadata(ctx, "acme", id)
	if err != nil || meta.Subject != "guest-9" || meta.ContentType != "audio/mpeg" || meta.Size != int64(len(content)) {
		t.Fatalf("uploaded: %+v %v", meta, err)
	}
	var stored bytes.Buffer
	if err := api.DownloadBlob(ctx, "acme", id, &stored); err != nil || !bytes.Equal(stored.Bytes(), content) {
		t.Fatalf("stored %q (%v), want %q", stored.Bytes(), err, content)
	}
	audio := p.Elements("audio")
	if len(audio) != 1 || uitest.Attr(audio[0], "src") != "/ui/t/acme/blobs/"+id+"/content" {
		t.Fatalf("blob page: %d audio elements: %s", len(audio), p.Body)
	}
	src := uitest.Attr(audio[0], "src")
	get := func(rng string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, n.URL+src, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := b.HC.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct {
		rng, contentRange string
		status            int
		want              []byte
	}{
		{"", "", http.StatusOK, content},
		{"bytes=4-13", fmt.Sprintf("bytes 4-13/%d", len(content)), http.StatusPartialContent, content[4:14]},
		{"bytes=-6", fmt.Sprintf("bytes %d-%d/%d", len(content)-6, len(content)-1, len(content)), http.StatusPartialContent, content[len(content)-6:]},
		{"bytes=10-", fmt.Sprintf("bytes 10-%d/%d", len(content)-1, len(content)), http.StatusPartialContent, content[10:]},
		{fmt.Sprintf("bytes=%d-", len(content)), fmt.Sprintf("bytes */%d", len(content)), http.StatusRequestedRangeNotSatisfiable, nil},
	} {
		resp := get(tc.rng)
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Range") != tc.contentRange {
			t.Errorf("Range %q: HTTP %d Content-Range %q, want %d %q", tc.rng, resp.StatusCode, resp.Header.Get("Content-Range"), tc.status, tc.contentRange)
		}
		if tc.want != nil && !bytes.Equal(got, tc.want) {
			t.Errorf("Range %q: %q, want %q", tc.rng, got, tc.want)
		}
		if tc.status != 416 && (resp.Header.Get("Content-Type") != "audio/mpeg" || resp.Header.Get("Accept-Ranges") != "bytes") {
			t.Errorf("Range %q: headers %v", tc.rng, resp.Header)
		}
	}

	// A list of the subject's, and of another subject's (none).
	p = b.Get(t, "/ui/t/acme/blobs?subject=guest-9").Must(t, http.StatusOK)
	if !contains(p.Links(), "/ui/t/acme/blobs/"+id) {
		t.Fatalf("subject filter: %v", p.Links())
	}
	if p := b.Get(t, "/ui/t/acme/blobs?subject=guest-10").Must(t, http.StatusOK); contains(p.Links(), "/ui/t/acme/blobs/"+id) {
		t.Fatalf("another subject's list holds the blob")
	}

	// A kind whose purpose the subject has not allowed: refused with the
	// API's problem, the form kept.
	if _, err := api.CreatePurpose(ctx, "acme", client.NewPurpose{ID: "quality", Description: "Call quality", Basis: "consent"}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PutBlobKind(ctx, "acme", "call-recording", []string{"quality"}); err != nil {
		t.Fatal(err)
	}
	p = uploadForm(t, b, "acme", [][2]string{{"subject", "guest-9"}, {"kind", "call-recording"}}, "call2.mp3", "audio/mpeg", bytes.Repeat([]byte("x"), 200<<10))
	if p.Status != http.StatusForbidden || !strings.Contains(p.Text(), "Request id") || !strings.Contains(p.Text(), "quality") {
		t.Fatalf("consent refusal: %s: %s", p, p.Text())
	}
	// No CSRF token: refused before anything is stored.
	bad := *b
	bad.CSRF = "AAAAAAAAAAAAAAAAAAAAAAAAAA"
	if p := uploadForm(t, &bad, "acme", nil, "x.txt", "text/plain", []byte("x")); p.Status != http.StatusForbidden {
		t.Fatalf("upload without the token: %s", p)
	}
	if page, _ := api.Blobs(ctx, "acme", "", 50, ""); len(page.Blobs) != 1 {
		t.Fatalf("%d blobs after refused uploads", len(page.Blobs))
	}

	// Delete: the typed id is required.
	if p := b.Post(t, "/ui/t/acme/blobs/"+id+"/delete", map[string][]string{"confirm": {"nope"}}); p.Status != http.StatusBadRequest {
		t.Fatalf("delete without confirmation: %s", p)
	}
	b.Post(t, "/ui/t/acme/blobs/"+id+"/delete", map[string][]string{"confirm": {id}}).Must(t, http.StatusOK)
	if _, err := api.BlobMetadata(ctx, "acme", id); err == nil {
		t.Fatal("the blob outlived its deletion")
	}
}
