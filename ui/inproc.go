package ui

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/custos/custos/appliance/client"
)

// Dialer opens a new in-memory connection to the node's own API whose
// remote address, as the API sees it, is remote (the browser's): the API's
// rate limits and login backoff per source, and the source its audit
// entries record, are the browser's, not the node's.
type Dialer func(ctx context.Context, remote net.Addr) (net.Conn, error)

// apiBase is the URL the in-process client addresses; the dialer ignores
// it (there is no network), so it only names the API in error messages.
const apiBase = "http://custos-api.internal"

type remoteKey struct{}

// newTransport is the HTTP transport of the in-process client: every
// request on a connection of its own (no keep-alive: the next request may
// come from another browser, whose address the connection carries).
func newTransport(dial Dialer) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			remote, _ := ctx.Value(remoteKey{}).(net.Addr)
			if remote == nil {
				remote = &net.TCPAddr{IP: net.IPv4zero}
			}
			return dial(ctx, remote)
		},
		DisableKeepAlives:      true,
		DisableCompression:     true,
		ResponseHeaderTimeout:  2 * time.Minute,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// withRemote carries the browser's address to the dialer.
func withRemote(ctx context.Context, remote net.Addr) context.Context {
	return context.WithValue(ctx, remoteKey{}, remote)
}

// apiClient is the /v1 client acting with token (an access token, or in
// --dev the operator token) under the UI request's id.
func (u *UI) apiClient(token, requestID string) *client.Client {
	c := client.New(apiBase, client.Options{Token: token, HTTPClient: u.hc})
	if requestID != "" {
		c = c.WithRequestID(requestID)
	}
	return c
}
