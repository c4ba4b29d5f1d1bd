package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/apispec"
)

// NewAPIClient is a client of one node's API with token whose every
// exchange, when spec is not nil, is checked against openapi.json and a
// mismatch reported to tb. addr is a URL or host:port (HTTPS); the node
// of a test cluster is trusted by its cluster CA. Its idle connections
// are closed when the test ends.
func NewAPIClient(tb testing.TB, addr, token string, timeout time.Duration, spec *apispec.Validator) *client.Client {
	return NewAPIClientVia(tb, addr, token, timeout, spec, nil)
}

// NewAPIClientVia is NewAPIClient with the client's connections opened by
// dial (nil: the default dialer), such as a Dialer into the node's network
// namespace.
func NewAPIClientVia(tb testing.TB, addr, token string, timeout time.Duration, spec *apispec.Validator, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *client.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second, DialContext: dial}
	if ca, ok := caOf(addr); ok {
		tr.TLSClientConfig = &tls.Config{RootCAs: ca.roots, MinVersion: tls.VersionTLS12}
	}
	tb.Cleanup(tr.CloseIdleConnections)
	var rt http.RoundTripper = tr
	if spec != nil {
		rt = &specCheck{tb: tb, spec: spec, next: tr}
	}
	return client.New(addr, client.Options{Token: token, HTTPClient: &http.Client{Timeout: timeout, Transport: rt}})
}

// specCheck is a transport that checks every exchange against the API's
// description: real processes, real sockets, and the exchange must match
// just as in the API package's tests (requests refused with a 4xx are
// checked as responses only; binary bodies, such as an audit export, for
// their media type only). It reads each answer in full.
type specCheck struct {
	tb   testing.TB
	spec *apispec.Validator
	next http.RoundTripper
}

func (s *specCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	var sent []byte
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		if sent, err = io.ReadAll(body); err != nil {
			return nil, err
		}
	}
	resp, err := s.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	s.spec.Check(s.tb, req, sent, resp, data)
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, nil
}
