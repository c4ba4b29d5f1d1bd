// Package client is the Go client of Custos's /v1 HTTP API: the one the
// custos CLI uses, and the end-to-end tests with it, so that what the
// tests drive is what operators run (as Vault's api package serves both
// its CLI and its tests).
//
// A Client holds a base address, an operator token (or a tenant API key)
// and an *http.Client. Typed methods cover the routes the CLI uses; Do,
// Send and Download reach any route. Every answer outside 2xx becomes an
// *Error carrying the RFC 9457 problem the server sent; transport failures
// are wrapped errors that say which address could not be reached.
//
// The package depends only on the standard library and the API's wire
// types; the audit entries and self-check reports the API returns are
// appliance/audit's own types, decoded as they are.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultAddress is the API address of a node started with the defaults
// (a dev node serves plain HTTP: http://127.0.0.1:8200).
const DefaultAddress = "https://127.0.0.1:8200"

// Options configure a Client.
type Options struct {
	// Token is sent as "Authorization: Bearer <Token>": an operator token
	// or a tenant API key ("" = none).
	Token string
	// HTTPClient sends the requests (nil = http.DefaultClient). Tests set
	// one with a transport that checks every exchange.
	HTTPClient *http.Client
	// RootCAs are the certificate authorities the server's certificate
	// must chain to — the cluster CA `custos operator init` prints, see
	// LoadCACert — instead of the system's (nil = the system's). Ignored
	// when HTTPClient is set: set its transport's TLSClientConfig instead.
	RootCAs *x509.CertPool
	// Certificates are presented to a server that asks for a client
	// certificate (mutual TLS): what an API key bound to a client
	// certificate needs. Ignored when HTTPClient is set.
	Certificates []tls.Certificate
	// Timeout bounds each JSON call (Do and the typed methods) on top of
	// its context (0 = only the context). Downloads and uploads stream for
	// as long as their context allows.
	Timeout time.Duration
}

// Client talks to one node's API. It is safe for concurrent use.
type Client struct {
	addr      string
	token     string
	requestID string
	hc        *http.Client
	timeout   time.Duration
}

// New returns a client of the API at address: a URL ("https://host:port";
// "http://host:port" for a dev node or one with api.insecure_http), or
// "host:port" for HTTPS.
func New(address string, o Options) *Client {
	if !strings.Contains(address, "://") {
		address = "https://" + address
	}
	hc := o.HTTPClient
	switch {
	case hc != nil:
	case o.RootCAs != nil || len(o.Certificates) > 0:
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: o.RootCAs, Certificates: o.Certificates, MinVersion: tls.VersionTLS12}
		hc = &http.Client{Transport: tr}
	default:
		hc = http.DefaultClient
	}
	return &Client{addr: strings.TrimRight(address, "/"), token: o.Token, hc: hc, timeout: o.Timeout}
}

// LoadCACert reads a PEM file of one or more CA certificates (the
// cluster CA: <data_dir>/tls/ca.crt of any node, printed by `custos
// operator init`) into a pool for Options.RootCAs.
func LoadCACert(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("ca certificate %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// Address is the base URL requests go to, without a trailing slash.
func (c *Client) Address() string { return c.addr }

// WithRequestID returns a copy of c that sends id as X-Request-Id, which
// the server echoes and records in audit entries and logs (1 to 128
// characters of [A-Za-z0-9._~:+/=-], else it makes up its own).
func (c *Client) WithRequestID(id string) *Client {
	cp := *c
	cp.requestID = id
	return &cp
}

// Response is an answer read in full, whatever its status.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// ContentType is the answer's Content-Type.
func (r *Response) ContentType() string { return r.Header.Get("Content-Type") }

// RequestID is the answer's X-Request-Id.
func (r *Response) RequestID() string { return r.Header.Get("X-Request-Id") }

// maxAnswer bounds the JSON answers read into memory (a page of 500
// records is far smaller).
const maxAnswer = 16 << 20

// Header is one request header Send adds (If-Match, say).
type Header struct{ Name, Value string }

// Send sends one request and returns the answer whatever its status: for
// tests and callers that judge the status themselves. body, if not nil,
// is sent as JSON: a json.RawMessage as it is (tests send malformed
// bodies too), anything else marshaled. Only a transport failure is an
// error.
func (c *Client) Send(ctx context.Context, method, path string, body any, headers ...Header) (*Response, error) {
	resp, err := c.send(ctx, method, path, body, "application/json", headers...)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// Do sends one request (body, if not nil, as JSON) and decodes a 2xx JSON
// answer into out (if not nil); any other answer is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.doWith(ctx, method, path, body, out)
}

// doWith is Do with request headers (If-Match, say).
func (c *Client) doWith(ctx context.Context, method, path string, body, out any, headers ...Header) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	r, err := c.Send(ctx, method, path, body, headers...)
	if err != nil {
		return err
	}
	if r.Status/100 != 2 {
		return answerError(method, path, r.Status, r.Body)
	}
	if out != nil && len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

// Download streams the body of a 2xx answer to GET path into w (exports
// and blobs can be large: no timeout but ctx's); any other answer is an
// *Error.
func (c *Client) Download(ctx context.Context, path string, w io.Writer) error {
	resp, err := c.send(ctx, "GET", path, nil, "*/*")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return answerError("GET", path, resp.StatusCode, data)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("download %s: %w", path, err)
	}
	return nil
}

// send sends a request with a JSON body (body not nil; see Send).
func (c *Client) send(ctx context.Context, method, path string, body any, accept string, headers ...Header) (*http.Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case json.RawMessage:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	for _, h := range headers {
		req.Header.Set(h.Name, h.Value)
	}
	return c.do(req)
}

// do adds the token and the request id to req and sends it.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.requestID != "" {
		req.Header.Set("X-Request-Id", c.requestID)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.addr, unwrapURL(err))
	}
	return resp, nil
}

// unwrapURL drops net/http's "Get \"url\":" prefix: the address is said
// once, by the caller.
func unwrapURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// pathEscape escapes one path segment (an id or a name).
func pathEscape(s string) string { return url.PathEscape(s) }
