package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/appliance/identity/password"
	"github.com/custos/custos/appliance/ratelimit"
	"github.com/custos/custos/internal/tenancy"
)

// live rebuilds the env's app with opts and serves it on a loopback
// listener until the test ends; it returns the API's root URL. Requests
// sent with call come from a real connection, so the API sees the source
// address the client dialled from (the app trusts no forwarding header).
func (e *env) live(t *testing.T, opts api.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.app = e.server(e.deps(), opts)
	go func() { _ = e.app.Listener(ln) }()
	t.Cleanup(func() { _ = e.app.Shutdown() })
	return "http://" + ln.Addr().String()
}

// call sends a request to the live API at base from the loopback address
// src (Linux routes all of 127.0.0.0/8 to the loopback interface, so
// each address is a distinct source) and checks the exchange against
// openapi.json as doOn does. No Authorization unless opts add one.
func (e *env) call(t *testing.T, base, src, method, target, body string, opts ...reqOpt) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DisableKeepAlives: true, // one connection per request: its source is src
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", method, target, src, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	spec.Check(t, req, []byte(body), res, b)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// withBackoff rebuilds the env's accounts as the node wires them: the
// node's password hasher (argon2id with the OWASP parameters, bounded
// concurrency), bo as the login backoff, and the env's clock (e.now,
// which advance moves) for sessions, codes and the backoff.
func (e *env) withBackoff(t *testing.T, bo *ratelimit.Backoff) {
	t.Helper()
	h, err := password.NewHasher(password.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.accounts, err = accounts.New(tenancy.New(e.store), accounts.Options{Keys: e.keys, Hasher: h, Signer: e.signer, Backoff: bo, Now: e.now}); err != nil {
		t.Fatal(err)
	}
	e.app = e.server(e.deps(), api.Options{})
}
