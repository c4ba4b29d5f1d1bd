package api

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
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
func QuietListener(ln net.Listener) net.Listener { return quietListener{ln} }

type quietListener struct{ net.Listener }

func (l quietListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	q := &quietConn{Conn: c}
	if tc, ok := c.(*tls.Conn); ok {
		// fasthttp learns that a connection is TLS from its Handshake and
		// ConnectionState methods.
		return &quietTLSConn{quietConn: q, tls: tc}, nil
	}
	return q, nil
}

// quietConn turns a read deadline that passes before the connection's
// first byte into io.EOF.
type quietConn struct {
	net.Conn
	started atomic.Bool // a byte has been read
}

func (c *quietConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.started.Store(true)
		return n, err
	}
	if err != nil && !c.started.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, io.EOF
	}
	return n, err
}

// quietTLSConn is a quietConn over a TLS connection.
type quietTLSConn struct {
	*quietConn
	tls *tls.Conn
}

func (c *quietTLSConn) Handshake() error                     { return c.tls.Handshake() }
func (c *quietTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }
