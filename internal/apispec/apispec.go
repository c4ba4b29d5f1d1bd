// Package apispec checks HTTP exchanges with the API against its OpenAPI
// description (appliance/api/openapi.json, served at /v1/openapi.json), so
// that the hand-written description and the code cannot drift apart
// unnoticed. It is test support: the API package's tests and the
// end-to-end tests pass every request they make through a [Validator].
//
// It lives in the module's top-level internal directory rather than under
// appliance/ because the end-to-end tests in cmd/custos use it too, and Go
// lets only packages under an internal directory's parent import it.
//
// What is checked, for one request and its response:
//   - the path and method name an operation of the description; if none
//     does, the answer must be the documented 404 or 405 problem (fiber
//     answers unknown routes itself, without a token);
//   - the response status is one the operation documents (an undocumented
//     status fails: there is no "default" response), its documented
//     headers are present and well formed, and its Content-Type is one the
//     operation documents;
//   - JSON bodies (application/json, application/problem+json) match the
//     schema; other bodies (gzip bundles, blobs, text) are checked for
//     their media type only, since their schema says nothing more than
//     "bytes" and they may be large;
//   - the request matches the operation (parameters, body schema), unless
//     the server refused it as the client's fault (4xx): tests send bad
//     input on purpose, and a refusal is then the right answer, whether or
//     not the description can express the rule that was broken. A request
//     the server accepted must be one the description allows.
//
// Security requirements are not checked: the tests exercise tokens
// themselves, and the description can only say which schemes apply.
package apispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/custos/custos/appliance/api"
)

// Validator checks requests and responses against the description. It is
// safe for concurrent use: after Load it only reads the document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// Load parses and validates the API's description and prepares a router
// over its paths.
func Load() (*Validator, error) {
	doc, err := LoadDoc(context.Background())
	if err != nil {
		return nil, err
	}
	// Route on the path alone: the description's server is relative ("/"),
	// and requests in tests go to whatever address the node listens on.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("apispec: build router: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// LoadDoc parses the API's description and validates it as an OpenAPI
// document.
func LoadDoc(ctx context.Context) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPISpec())
	if err != nil {
		return nil, fmt.Errorf("apispec: load openapi.json: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("apispec: openapi.json is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
}

// New is Load for tests: it stops the test if the description does not
// load.
func New(tb testing.TB) *Validator {
	tb.Helper()
	v, err := Load()
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// Check fails tb when the exchange does not match the description; see
// Validate. req's own body is not read (it has usually been sent):
// reqBody is the body that was sent, respBody the body that was received.
func (v *Validator) Check(tb testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	tb.Helper()
	if err := v.Validate(req, reqBody, resp, respBody); err != nil {
		tb.Errorf("OpenAPI: %s %s -> %d: %v\nresponse body: %s", req.Method, req.URL.RequestURI(), resp.StatusCode, err, clip(respBody))
	}
}

// Validate reports how the exchange departs from the description, or nil.
func (v *Validator) Validate(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	if !standardMethod(req.Method) {
		// fiber answers a method name that is not an HTTP method at all
		// itself, in plain text, before any route: outside the API.
		return nil
	}
	ctx := context.Background()
	rreq := cloneWithBody(ctx, req, reqBody)
	route, params, err := v.router.FindRoute(rreq)
	head := req.Method == http.MethodHead
	if errors.Is(err, routers.ErrMethodNotAllowed) && head {
		// fiber answers HEAD for every GET route: the description lists
		// HEAD only where it matters (blobs), and the GET operation
		// documents the rest.
		rreq.Method = http.MethodGet
		route, params, err = v.router.FindRoute(rreq)
	}
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		return v.unrouted(resp, respBody, http.StatusNotFound, "NotFound", head)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return v.unrouted(resp, respBody, http.StatusMethodNotAllowed, "MethodNotAllowed", head)
	case err != nil:
		return fmt.Errorf("find the operation: %w", err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
		SkipSettingDefaults: true,
		MultiError:          true,
	}
	in := &openapi3filter.RequestValidationInput{Request: rreq, PathParams: params, Route: route, Options: opts}
	var errs []error
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("the server accepted a request the description does not allow: %w", err))
		}
	}
	if err := v.response(ctx, in, route, resp, respBody, head); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// response checks the response against the operation.
func (v *Validator) response(ctx context.Context, in *openapi3filter.RequestValidationInput, route *routers.Route, resp *http.Response, body []byte, head bool) error {
	ref := route.Operation.Responses.Status(resp.StatusCode)
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("status %d is not documented for %s %s", resp.StatusCode, route.Method, route.Path)
	}
	ct := resp.Header.Get("Content-Type")
	decode := false
	switch {
	case head:
		if len(body) > 0 {
			return errors.New("a HEAD response has a body")
		}
	case len(ref.Value.Content) == 0:
		if len(body) > 0 {
			return fmt.Errorf("status %d documents no body, but the response has %d bytes of %q", resp.StatusCode, len(body), ct)
		}
	default:
		if ref.Value.Content.Get(ct) == nil {
			return fmt.Errorf("Content-Type %q is not documented for status %d of %s %s", ct, resp.StatusCode, route.Method, route.Path)
		}
		decode = isJSON(ct)
	}
	// ValidateResponse skips HEAD requests entirely; check their status
	// and headers as the GET's (or the HEAD operation's) without a body.
	rin := *in
	if in.Request.Method == http.MethodHead {
		r := *in.Request
		r.Method = http.MethodGet
		rin.Request = &r
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &rin,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			ExcludeResponseBody:   !decode,
			MultiError:            true,
		},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("the response does not match the description: %w", err)
	}
	return nil
}

// unrouted checks the answer to a request no operation describes: the
// documented problem response named name (404 or 405), with its headers.
func (v *Validator) unrouted(resp *http.Response, body []byte, status int, name string, head bool) error {
	if resp.StatusCode != status {
		return fmt.Errorf("no operation of the description matches, yet the status is %d (want %d %s): the route is missing from openapi.json", resp.StatusCode, status, http.StatusText(status))
	}
	ref := v.doc.Components.Responses[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("the description has no components.responses.%s", name)
	}
	// Validate against a synthetic operation that has only this response.
	op := openapi3.NewOperation()
	op.Responses = openapi3.NewResponses(openapi3.WithStatus(status, ref))
	route := &routers.Route{Spec: v.doc, Path: "(unrouted)", Method: http.MethodGet, Operation: op, PathItem: &openapi3.PathItem{}}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	in := &openapi3filter.RequestValidationInput{Request: req, Route: route}
	return v.response(context.Background(), in, route, resp, body, head)
}

// cloneWithBody copies req with body as its (unread) body.
func cloneWithBody(ctx context.Context, req *http.Request, body []byte) *http.Request {
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	if len(body) == 0 {
		r.Body = http.NoBody
	}
	return r
}

func standardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return true
	}
	return false
}

// isJSON: application/json and the +json types (problem+json).
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func clip(b []byte) string {
	if len(b) > 2048 {
		return string(b[:2048]) + "…"
	}
	return string(b)
}
