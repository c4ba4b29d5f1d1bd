package api_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/raftstore"
)

// A connection the client opened and has not used yet, or has left idle
// after a request, is closed by the server without a byte when its
// timeout passes: before QuietListener, a fresh connection got an
// unsolicited 400 bad-request with Connection: close when fasthttp's
// ReadTimeout passed (issue 14). A request that has started and stalls
// still gets its answer. The app's timeouts are shortened on its own
// server; nothing is timed but the connection's own deadlines.
func TestQuietListenerClosesIdleConnectionsSilently(t *testing.T) {
	const timeout = 200 * time.Millisecond
	cases := []struct {
		name string
		send string // written at once; "" sends nothing
		// reply is what the server must write before closing: "" for
		// nothing, else the start of the response.
		reply string
		// keepAlive: send a whole request first, read its answer, then
		// stay idle.
		keepAlive bool
	}{
		{name: "fresh connection, no request", send: ""},
		{name: "idle keep-alive after a request", keepAlive: true},
		{name: "request started, then stalled", send: "GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n", reply: "HTTP/1.1 400"},
	}
	for _, useTLS := range []bool{false, true} {
		base := startQuiet(t, timeout, useTLS)
		for _, tc := range cases {
			name := tc.name
			if useTLS {
				name += " (TLS)"
			}
			t.Run(name, func(t *testing.T) {
				conn := base()
				defer conn.Close()
				br := bufio.NewReader(conn)
				if tc.keepAlive {
					if _, err := io.WriteString(conn, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
						t.Fatal(err)
					}
					_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
					line, err := br.ReadString('\n')
					if err != nil || !strings.HasPrefix(line, "HTTP/1.1 404") {
						t.Fatalf("first request: %q, %v", line, err)
					}
					// Discard the rest of that response: headers and a
					// Content-Length body.
					n := 0
					for {
						h, err := br.ReadString('\n')
						if err != nil {
							t.Fatal(err)
						}
						if h == "\r\n" {
							break
						}
						if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(k, "Content-Length") {
							n, _ = strconv.Atoi(strings.TrimSpace(v))
						}
					}
					if _, err := io.ReadFull(br, make([]byte, n)); err != nil {
						t.Fatal(err)
					}
				} else if tc.send != "" {
					if _, err := io.WriteString(conn, tc.send); err != nil {
						t.Fatal(err)
					}
				}
				// The server's own deadline ends the connection; ours is a
				// guard against a hang.
				_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				got, err := io.ReadAll(br)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("the server did not close the connection: %v", err)
				}
				switch {
				case tc.reply == "" && len(got) > 0:
					t.Fatalf("the server wrote %d bytes on an idle connection before closing it: %q", len(got), clipBytes(got))
				case tc.reply != "" && !strings.HasPrefix(string(got), tc.reply):
					t.Fatalf("stalled request: got %q, want a response starting %q", clipBytes(got), tc.reply)
				}
			})
		}
	}
}

// startQuiet serves an app on a QuietListener (over TLS when useTLS) with
// read and idle timeouts of d, and returns a dialer of connections to it.
func startQuiet(t *testing.T, d time.Duration, useTLS bool) func() net.Conn {
	t.Helper()
	app := api.NewApp(nil)
	app.Server().ReadTimeout, app.Server().IdleTimeout = d, d
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var clientTLS *tls.Config
	if useTLS {
		creds, err := raftstore.NewClusterCredentials("api")
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(creds.NodeCert, creds.NodeKey)
		if err != nil {
			t.Fatal(err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		// The test checks the server's timeouts, not its certificate.
		clientTLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13} //nolint:gosec // test of timeouts only
	}
	go func() { _ = app.Listener(api.QuietListener(ln)) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	addr := ln.Addr().String()
	return func() net.Conn {
		t.Helper()
		var c net.Conn
		var err error
		if clientTLS != nil {
			c, err = tls.Dial("tcp", addr, clientTLS)
		} else {
			c, err = net.Dial("tcp", addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

func clipBytes(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
