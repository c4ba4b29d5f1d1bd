package api

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
)

// QuietListener wraps the API's listener so that a connection on which no
// request ever arrived is closed without a word when the server's read
// timeout ends it, as fasthttp already does for an idle keep-alive
// connection between two requests. Serve the app on it:
// app.Listener(api.QuietListener(ln)).
//
// Why: fasthttp (v1.51) waits for a connection's first request under
// ReadTimeout, not IdleTimeout, and when that deadline passes before a
// single byte has come it treats the timeout as a failed request and
// writes an error response before closing: fiber maps the timeout to 408
// and our problem mapping to 400 bad-request, sent with Connection: close.
// HTTP clients open connections they do not use at once (Go's transport
// dials a spare one when all are busy and parks it in its idle pool), so
// a client saw a 400 it had not asked for on a connection it had not used
// yet ("unsolicited response on idle HTTP channel"), and a client that
// sends its request just as the deadline passes reads that 400 as the
// answer to it. From a later request on, fasthttp peeks for the next
// request's first byte under IdleTimeout and closes quietly when none
// comes: this wrapper gives the first request the same treatment, by
// reporting a read deadline that passes before the connection's first
// byte as the end of the stream (io.EOF), which fasthttp ends quietly. A
// request that has started and then stalls still gets its 408/400: the
// client is waiting for an answer.
//
// Closing the listener also closes every connection on which no request
// has begun. fasthttp (v1.51) marks a connection active as soon as it
// starts waiting for its first request, so its graceful shutdown waited
// for such a connection until the read timeout (30 s) — longer than the
// node's drain (10 s): a node stopped by SIGTERM while a client held an
// unused connection (Go's transport parks spare ones) exited with
// "context deadline exceeded" and status 1 (TestE2ESystemdNotify, about
// one run in four). net/http's Shutdown closes such connections too. A
// connection whose request is under way is left to finish. (fasthttp
// v1.79 waits for a first byte before marking a connection active and
// closes new idle ones on shutdown itself, after a 5 s grace; moving to
// it changes how it parses a chunked body sent with Content-Length: -1,
// which TestBlobBadInput sends, so it is a change of its own.)
func QuietListener(ln net.Listener) net.Listener {
	return &quietListener{Listener: ln, unstarted: make(map[*quietConn]struct{})}
}

type quietListener struct {
	net.Listener

	mu        sync.Mutex
	closed    bool
	unstarted map[*quietConn]struct{} // accepted, no byte read yet
}

func (l *quietListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	q := &quietConn{Conn: c, l: l}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.unstarted[q] = struct{}{}
	l.mu.Unlock()
	if tc, ok := c.(*tls.Conn); ok {
		// fasthttp learns that a connection is TLS from its Handshake and
		// ConnectionState methods.
		return &quietTLSConn{quietConn: q, tls: tc}, nil
	}
	return q, nil
}

// Close closes the listener, then every connection that has not begun a
// request.
func (l *quietListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	idle := l.unstarted
	l.unstarted = map[*quietConn]struct{}{}
	l.mu.Unlock()
	for c := range idle {
		_ = c.Conn.Close()
	}
	return err
}

// forget drops c from the unstarted connections.
func (l *quietListener) forget(c *quietConn) {
	l.mu.Lock()
	delete(l.unstarted, c)
	l.mu.Unlock()
}

// quietConn turns a read deadline that passes before the connection's
// first byte into io.EOF.
type quietConn struct {
	net.Conn
	l       *quietListener
	started atomic.Bool // a byte has been read
}

func (c *quietConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		// Load first: every read passes here, the first one only
		// changes the flag.
		if !c.started.Load() && !c.started.Swap(true) {
			c.l.forget(c)
		}
		return n, err
	}
	if err != nil && !c.started.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, io.EOF
	}
	return n, err
}

func (c *quietConn) Close() error {
	if !c.started.Load() {
		c.l.forget(c)
	}
	return c.Conn.Close()
}

// quietTLSConn is a quietConn over a TLS connection.
type quietTLSConn struct {
	*quietConn
	tls *tls.Conn
}

func (c *quietTLSConn) Handshake() error                     { return c.tls.Handshake() }
func (c *quietTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }
