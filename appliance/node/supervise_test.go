package node_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/node"
	"github.com/custos/custos/appliance/notify"
)

// notifySocket is the test's end of NOTIFY_SOCKET, as systemd's manager
// listens on it.
type notifySocket struct {
	t    *testing.T
	conn *net.UnixConn
	path string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{t: t, conn: c, path: path}
}

// next returns the next datagram's lines.
func (s *notifySocket) next() []string {
	s.t.Helper()
	buf := make([]byte, 4096)
	if err := s.conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		s.t.Fatal(err)
	}
	m, err := s.conn.Read(buf)
	if err != nil {
		s.t.Fatalf("no notification: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(buf[:m]), "\n"), "\n")
}

// until reads datagrams until one holds want, and returns that one.
func (s *notifySocket) until(want string) []string {
	s.t.Helper()
	for {
		lines := s.next()
		for _, l := range lines {
			if l == want {
				return lines
			}
		}
	}
}

// A node with a Notifier tells the service manager it is ready only once
// its API answers, with a STATUS line of its raft state; pings the
// watchdog while its check passes; and says STOPPING=1 when it closes.
func TestNodeNotifiesSystemd(t *testing.T) {
	sock := listenNotify(t)
	nt, err := notify.FromEnviron([]string{"NOTIFY_SOCKET=" + sock.path, "WATCHDOG_USEC=300000"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(context.Background(), devConfig(t), node.Options{Notifier: nt})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			closeNode(t, n)
		}
	}()

	if first := sock.next(); len(first) != 1 || !strings.HasPrefix(first[0], "STATUS=starting: ") {
		t.Fatalf("first notification %q, want a starting STATUS", first)
	}
	ready := sock.until(notify.Ready)
	if err := n.Check(context.Background()); err != nil {
		t.Fatalf("ready, and the check fails: %v", err)
	}
	if len(ready) != 2 || !strings.HasPrefix(ready[1], "STATUS=raft Leader, term ") || !strings.HasSuffix(ready[1], ", leader dev") {
		t.Fatalf("ready notification %q, want READY=1 and the raft state", ready)
	}
	for range 3 {
		sock.until(notify.Watchdog)
	}
	closed = true
	closeNode(t, n)
	sock.until(notify.Stopping)
}

// Without a Notifier the node sends nothing and needs no socket; Check
// works all the same.
func TestCheckWithoutNotifier(t *testing.T) {
	n, err := node.Start(context.Background(), devConfig(t), node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNode(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
