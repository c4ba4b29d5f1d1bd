package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
)

// seen is what the test server saw of one request.
type seen struct {
	method, path, query string
	header              http.Header
	body                string
	length              int64
}

// serve starts a server that records each request and answers with
// answer; it returns a client of it with token "tok".
func serve(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*client.Client, *[]seen) {
	t.Helper()
	var got []seen
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header, string(b), r.ContentLength})
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "https://") + "/" // no scheme (HTTPS), a trailing slash: both normalized
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return client.New(addr, client.Options{Token: "tok", Timeout: 5 * time.Second, RootCAs: roots}), &got
}

func jsonAnswer(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestTypedCallSendsTokenJSONAndEscapedPath(t *testing.T) {
	c, got := serve(t, jsonAnswer(201, `{"id":"a b","display_name":"A","region":"r","state":"active","created_at":"x"}`))
	ten, err := c.CreateTenant(context.Background(), client.NewTenant{ID: "a b", DisplayName: "A"})
	if err != nil || ten.ID != "a b" || ten.State != "active" {
		t.Fatalf("CreateTenant: %+v %v", ten, err)
	}
	r := (*got)[0]
	if r.method != "POST" || r.path != "/v1/tenants" || r.body != `{"id":"a b","display_name":"A"}` ||
		r.header.Get("Authorization") != "Bearer tok" || r.header.Get("Content-Type") != "application/json" ||
		r.header.Get("Accept") != "application/json" || r.header.Get("X-Request-Id") != "" {
		t.Fatalf("request: %+v", r)
	}
	if _, err := c.WithRequestID("req-7").Tenant(context.Background(), "a b"); err != nil {
		t.Fatal(err)
	}
	if r := (*got)[1]; r.path != "/v1/tenants/a b" || r.header.Get("X-Request-Id") != "req-7" || r.body != "" || r.header.Get("Content-Type") != "" {
		t.Fatalf("request: %+v", r)
	}
}

func TestErrorsCarryTheProblem(t *testing.T) {
	const problem = `{"type":"https://custos.dev/problems/not-found","title":"Not found","status":404,"detail":"no tenant acme","instance":"/v1/tenants/acme","request_id":"r1"}`
	c, _ := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(404)
		io.WriteString(w, problem)
	})
	_, err := c.Tenant(context.Background(), "acme")
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 404 || e.Problem == nil || e.Problem.Slug() != "not-found" || e.Problem.RequestID != "r1" {
		t.Fatalf("error: %#v", err)
	}
	if err.Error() != "Not found (404): no tenant acme" {
		t.Fatalf("message: %q", err)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"title":"Conflict","status":409}`, "Conflict (409)"},
		{`<html>bad gateway</html>`, "DELETE /v1/tenants/acme: HTTP 409"},
	} {
		c, _ := serve(t, jsonAnswer(409, tc.body))
		if err := c.DeleteTenant(context.Background(), "acme"); err == nil || err.Error() != tc.want {
			t.Errorf("body %s: error %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestSendReturnsAnyStatus(t *testing.T) {
	c, got := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Request-Id", "r9")
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(503)
		io.WriteString(w, `{}`)
	})
	r, err := c.Send(context.Background(), "GET", "/v1/sys/health", nil)
	if err != nil || r.Status != 503 || r.ContentType() != "application/problem+json" || r.RequestID() != "r9" || string(r.Body) != "{}" {
		t.Fatalf("Send: %+v %v", r, err)
	}
	// A raw body goes as it is, with the headers asked for.
	raw := `{"a":1, "a":2}`
	if _, err := c.Send(context.Background(), "PATCH", "/v1/x", json.RawMessage(raw), client.Header{Name: "If-Match", Value: `"1"`}); err != nil {
		t.Fatal(err)
	}
	if r := (*got)[1]; r.body != raw || r.header.Get("If-Match") != `"1"` || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("raw request: %+v", r)
	}
}

func TestUnreachableSaysWhere(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = client.New(addr, client.Options{}).Status(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "cannot reach https://"+addr+": ") || strings.Contains(err.Error(), `"https://`) {
		t.Fatalf("error: %v", err)
	}
}

func TestUploadAndDownloadStream(t *testing.T) {
	data := []byte("a blob of bytes")
	sum := sha256.Sum256(data)
	c, got := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			jsonAnswer(201, `{"id":"b1","size":15}`)(w, r)
			return
		}
		w.Write(data)
	})
	b, err := c.UploadBlob(context.Background(), "acme", client.BlobUpload{
		Body: bytes.NewReader(data), Size: int64(len(data)), ContentType: "text/plain", SHA256: sum[:], Subject: "s1",
	})
	if err != nil || b.ID != "b1" || b.Size != 15 {
		t.Fatalf("upload: %+v %v", b, err)
	}
	r := (*got)[0]
	if r.path != "/v1/tenants/acme/blobs" || r.query != "subject=s1" || r.body != string(data) || r.length != 15 ||
		r.header.Get("Content-Type") != "text/plain" || r.header.Get("Custos-Content-SHA256") != hex.EncodeToString(sum[:]) ||
		r.header.Get("Authorization") != "Bearer tok" {
		t.Fatalf("upload request: %+v", r)
	}
	var out bytes.Buffer
	if err := c.DownloadBlob(context.Background(), "acme", "b1", &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("download: %q %v", out.Bytes(), err)
	}
	if r := (*got)[1]; r.path != "/v1/tenants/acme/blobs/b1" || r.header.Get("Accept") != "*/*" {
		t.Fatalf("download request: %+v", r)
	}
}

func TestUploadWantsCreated(t *testing.T) {
	c, _ := serve(t, jsonAnswer(200, `{"id":"b1"}`))
	_, err := c.UploadBlob(context.Background(), "acme", client.BlobUpload{Body: http.NoBody, ContentType: "text/plain"})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 200 || e.Path != "/v1/tenants/acme/blobs" {
		t.Fatalf("upload answered 200: %v", err)
	}
}

func TestListQueries(t *testing.T) {
	c, got := serve(t, jsonAnswer(200, `{}`))
	ctx := context.Background()
	if _, err := c.Tenants(ctx, 10, "t5"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Audit(ctx, "", client.AuditFilter{Action: "tenant.", Limit: 100, After: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Blobs(ctx, "acme", "s1", 50, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindRecords(ctx, "acme", "guests", "email", `"a@b"`, 5); err != nil {
		t.Fatal(err)
	}
	if err := c.AuditExport(ctx, "acme", "2026-01-01T00:00:00Z", "", io.Discard); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/v1/tenants?after=t5&limit=10",
		"/v1/sys/audit?action=tenant.&after=7&limit=100",
		"/v1/tenants/acme/blobs?limit=50&subject=s1",
		"/v1/tenants/acme/collections/guests/records?field=email&limit=5&value=%22a%40b%22",
		"/v1/tenants/acme/audit/export?from=2026-01-01T00%3A00%3A00Z",
	}
	for i, w := range want {
		if g := (*got)[i].path + "?" + (*got)[i].query; g != w {
			t.Errorf("request %d: %s, want %s", i, g, w)
		}
	}
}

func TestLoadCACert(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots, err := client.LoadCACert(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(srv.URL, client.Options{RootCAs: roots}).Health(context.Background()); err != nil {
		t.Errorf("with the server's CA: %v", err)
	}
	if _, err := client.New(srv.URL, client.Options{}).Health(context.Background()); err == nil {
		t.Error("with the system's roots only: the server's certificate was accepted")
	}
	junk := filepath.Join(dir, "junk.crt")
	if err := os.WriteFile(junk, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{junk, filepath.Join(dir, "none.crt")} {
		if _, err := client.LoadCACert(p); err == nil {
			t.Errorf("LoadCACert(%s): no error", p)
		}
	}
}
