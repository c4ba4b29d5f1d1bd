package api_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/internal/testkit"
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
		base, _ := startQuiet(t, timeout, useTLS, nil)
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

// A graceful shutdown does not wait for a connection on which no request
// has begun: closing the listener closes it (fasthttp counts it active
// until its read timeout, here an hour, so without that the shutdown
// would end only at its deadline, with an error). A request under way on
// another connection is answered before the server stops.
func TestQuietListenerShutdownClosesUnusedConnections(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			entered, release := make(chan struct{}), make(chan struct{})
			dial, app := startQuiet(t, time.Hour, useTLS, func(app *fiber.App) {
				app.Get("/slow", func(c *fiber.Ctx) error {
					close(entered)
					<-release
					return c.SendString("done")
				})
			})
			unused := dial()
			defer unused.Close()
			busy := dial()
			defer busy.Close()
			if _, err := io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			<-entered
			// The unused connection is accepted before the shutdown.
			testkit.Poll(t, 10*time.Second, "two open connections", func() error {
				if n := app.Server().GetOpenConnectionsCount(); n != 2 {
					return fmt.Errorf("%d open connections", n)
				}
				return nil
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard against a hang
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- app.ShutdownWithContext(ctx) }()

			_ = unused.SetReadDeadline(time.Now().Add(time.Minute))
			// Closed without a byte: an end of stream, or over TLS a reset
			// (the server closes with the client's last handshake message
			// unread, as TLS 1.3 lets a client send it and go on).
			if got, err := io.ReadAll(unused); len(got) > 0 || (err != nil && !(useTLS && errors.Is(err, syscall.ECONNRESET))) {
				t.Fatalf("the unused connection: read %q, %v; want it closed without a byte", clipBytes(got), err)
			}
			close(release)
			_ = busy.SetReadDeadline(time.Now().Add(time.Minute))
			line, err := bufio.NewReader(busy).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
				t.Fatalf("the request under way at shutdown: %q, %v; want its answer", line, err)
			}
			if err := <-done; err != nil {
				t.Fatalf("shutdown: %v", err)
			}
		})
	}
}

// startQuiet serves an app on a QuietListener (over TLS when useTLS) with
// read and idle timeouts of d and the routes routes adds (nil: none), and
// returns a dialer of connections to it and the app.
func startQuiet(t *testing.T, d time.Duration, useTLS bool, routes func(*fiber.App)) (func() net.Conn, *fiber.App) {
	t.Helper()
	app := api.NewApp(nil)
	if routes != nil {
		routes(app)
	}
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
	dial := func() net.Conn {
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
	return dial, app
}

func clipBytes(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
