package apispec

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

const (
	tenantJSON   = `{"id":"acme","display_name":"Acme","region":"local","state":"active","regulation":"gdpr","time_zone":"UTC","dpdp_response_days":30,"retention_days":365,"created_at":"2026-01-02T15:04:05Z","updated_at":"2026-01-02T15:04:05Z"}`
	notFoundJSON = `{"type":"https://custos.dev/problems/not-found","title":"Not found","status":404,"detail":"No endpoint has this path.","instance":"/nope","request_id":"r1"}`
)

// answer builds a response as the server would send it.
func answer(status int, ct, body string, headers ...string) *http.Response {
	h := http.Header{}
	h.Set("X-Request-Id", "r1")
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{StatusCode: status, Header: h}
}

// TestValidate checks that the validator both accepts what the API does
// and catches each kind of drift, so that a passing API test means the
// exchange was really checked.
func TestValidate(t *testing.T) {
	v := New(t)
	cases := []struct {
		name         string
		method, path string
		reqBody      string
		reqCT        string
		resp         *http.Response
		respBody     string
		wantErr      string // "" means valid
	}{
		{name: "a documented answer", method: "GET", path: "/v1/tenants/acme",
			resp: answer(200, "application/json", tenantJSON), respBody: tenantJSON},
		{name: "a missing required property", method: "GET", path: "/v1/tenants/acme",
			resp: answer(200, "application/json", `{"id":"acme"}`), respBody: `{"id":"acme"}`, wantErr: "doesn't match"},
		{name: "an undocumented property", method: "GET", path: "/v1/tenants/acme",
			resp: answer(200, "application/json", ""), respBody: strings.TrimSuffix(tenantJSON, "}") + `,"secret":"x"}`, wantErr: "secret"},
		{name: "an undocumented status", method: "GET", path: "/v1/tenants/acme",
			resp: answer(418, "application/problem+json", ""), respBody: `{}`, wantErr: "418 is not documented"},
		{name: "an undocumented content type", method: "GET", path: "/v1/tenants/acme",
			resp: answer(200, "text/html", ""), respBody: tenantJSON, wantErr: "Content-Type"},
		{name: "a missing required header", method: "POST", path: "/v1/tenants", reqBody: `{"id":"acme","display_name":"Acme"}`, reqCT: "application/json",
			resp: answer(201, "application/json", ""), respBody: tenantJSON, wantErr: "Location"},
		{name: "an accepted request the description forbids", method: "GET", path: "/v1/tenants?limit=501",
			resp: answer(200, "application/json", ""), respBody: `{"tenants":[]}`, wantErr: "accepted a request"},
		{name: "a refused request is not checked as a request", method: "GET", path: "/v1/tenants?limit=501",
			resp: answer(400, "application/problem+json", ""), respBody: `{"type":"https://custos.dev/problems/validation","title":"Invalid parameter","status":400,"detail":"d","instance":"/v1/tenants","request_id":"r1"}`},
		{name: "a problem of the wrong slug for its status", method: "GET", path: "/v1/tenants/acme",
			resp: answer(404, "application/problem+json", ""), respBody: `{"type":"https://custos.dev/problems/conflict","title":"Conflict","status":404,"detail":"d","instance":"/v1/tenants/acme","request_id":"r1"}`, wantErr: "doesn't match"},
		{name: "an unknown route answered 404", method: "GET", path: "/nope",
			resp: answer(404, "application/problem+json", ""), respBody: notFoundJSON},
		{name: "an unknown route answered 200", method: "GET", path: "/v1/undocumented",
			resp: answer(200, "application/json", ""), respBody: `{}`, wantErr: "missing from openapi.json"},
		{name: "a wrong method without Allow", method: "PUT", path: "/v1/tenants",
			resp: answer(405, "application/problem+json", ""), respBody: `{"type":"https://custos.dev/problems/method-not-allowed","title":"Method not allowed","status":405,"detail":"d","instance":"/v1/tenants","request_id":"r1"}`, wantErr: "Allow"},
		{name: "HEAD of a GET route", method: "HEAD", path: "/v1/tenants/acme",
			resp: answer(200, "application/json", "")},
		{name: "a body where none is documented", method: "DELETE", path: "/v1/tenants/acme",
			resp: answer(204, "text/plain", ""), respBody: "x", wantErr: "documents no body"},
		{name: "a binary body is checked for its media type only", method: "GET", path: "/v1/sys/audit/export",
			resp: answer(200, "application/gzip", "", "Content-Disposition", `attachment; filename="audit-system.tar.gz"`), respBody: "\x1f\x8b not really gzip"},
		{name: "a blob upload of any media type", method: "POST", path: "/v1/tenants/acme/blobs?subject=s1", reqBody: "RIFF....WAVE", reqCT: "audio/wav",
			resp:     answer(201, "application/json", "", "Location", "/v1/tenants/acme/blobs/b1"),
			respBody: `{"id":"b1","subject":"s1","content_type":"audio/wav","size":12,"sha256":"` + strings.Repeat("ab", 32) + `","created_at":"2026-01-02T15:04:05Z"}`},
		{name: "a method fiber answers itself", method: "BREW", path: "/v1/tenants",
			resp: answer(400, "text/plain", ""), respBody: "Invalid http method"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.path, nil)
			if c.reqCT != "" {
				req.Header.Set("Content-Type", c.reqCT)
			}
			err := v.Validate(req, []byte(c.reqBody), c.resp, []byte(c.respBody))
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("unexpected mismatch: %v", err)
			case c.wantErr != "" && err == nil:
				t.Errorf("no mismatch found, want one about %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Errorf("mismatch %v, want one about %q", err, c.wantErr)
			}
		})
	}
}
