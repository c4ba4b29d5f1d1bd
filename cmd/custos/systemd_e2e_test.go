package main

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/e2e"
)

// notifyListener is systemd's end of NOTIFY_SOCKET: it records every
// datagram a node sends, and whether the node's API answered at the moment
// READY=1 arrived.
type notifyListener struct {
	conn *net.UnixConn
	path string

	mu       sync.Mutex
	lines    []notifyLine
	arrived  chan struct{} // a token per datagram
	apiReady error         // the API probe's result when READY=1 arrived
}

type notifyLine struct {
	at   time.Time
	line string
}

func listenNotify(t *testing.T, probe func() error) *notifyListener {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	l := &notifyListener{conn: c, path: path, arrived: make(chan struct{}, 1<<16)}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			m, err := c.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			lines := strings.Split(strings.TrimSuffix(string(buf[:m]), "\n"), "\n")
			var probed error
			if slices.Contains(lines, "READY=1") {
				probed = probe()
			}
			l.mu.Lock()
			for _, s := range lines {
				l.lines = append(l.lines, notifyLine{at: now, line: s})
			}
			if slices.Contains(lines, "READY=1") {
				l.apiReady = probed
			}
			l.mu.Unlock()
			l.arrived <- struct{}{}
		}
	}()
	return l
}

// since returns the lines received from index i on, and the next index.
func (l *notifyListener) since(i int) ([]notifyLine, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]notifyLine(nil), l.lines[i:]...), len(l.lines)
}

// waitFor waits up to d for a line from index from on that match
// accepts, and returns the index after it.
func (l *notifyListener) waitFor(t *testing.T, from int, d time.Duration, what string, match func(string) bool) int {
	t.Helper()
	deadline := time.After(d)
	for {
		lines, _ := l.since(from)
		for k, nl := range lines {
			if match(nl.line) {
				return from + k + 1
			}
		}
		select {
		case <-l.arrived:
		case <-deadline:
			all, _ := l.since(0)
			t.Fatalf("no %s within %v; received: %v", what, d, all)
		}
	}
}

func is(s string) func(string) bool { return func(l string) bool { return l == s } }

// TestE2ESystemdNotify runs a node of a real three-node cluster as
// systemd's Type=notify unit does (NOTIFY_SOCKET, WATCHDOG_USEC) and
// checks what it says: READY=1 only once its API answers (the test's probe
// at READY's arrival must get an HTTP answer), after the STATUS of its
// start; STATUS lines with the raft state; WATCHDOG=1 while it works;
// no WATCHDOG=1 once it is wedged — here: its two peers are killed, so it
// cannot complete a linearizable read (appliance/node, "Supervision") —
// and pings again once they are back; STOPPING=1 on SIGTERM, then a clean
// exit.
func TestE2ESystemdNotify(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.NewCluster(t, bin, "")
	n3 := c.Nodes[2]
	l := listenNotify(t, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := n3.API.Health(ctx)
		if _, answered := errors.AsType[*client.Error](err); answered {
			return nil // a 503 is an answer
		}
		return err
	})
	const watchdog = 1500 * time.Millisecond // pings every 500ms
	n3.Env = []string{"NOTIFY_SOCKET=" + l.path, "WATCHDOG_USEC=1500000"}
	c.Boot()

	i := l.waitFor(t, 0, 30*time.Second, "READY=1", is("READY=1"))
	first, _ := l.since(0)
	if !strings.HasPrefix(first[0].line, "STATUS=starting: ") {
		t.Fatalf("first line %q, want the STATUS of the start", first[0].line)
	}
	l.mu.Lock()
	apiReady := l.apiReady
	l.mu.Unlock()
	if apiReady != nil {
		t.Fatalf("READY=1 sent, and the API does not answer: %v", apiReady)
	}
	if st := first[i]; !strings.HasPrefix(st.line, "STATUS=raft ") || !strings.Contains(st.line, ", leader n") {
		t.Fatalf("after READY=1: %q, want the raft state with its leader", st.line)
	}
	for range 3 {
		i = l.waitFor(t, i, 10*time.Second, "WATCHDOG=1", is("WATCHDOG=1"))
	}

	// Wedge it: without its peers it cannot complete a linearizable read.
	c.Kill(c.Nodes[0])
	c.Kill(c.Nodes[1])
	i = l.waitFor(t, i, 30*time.Second, "an unhealthy STATUS", func(s string) bool {
		return strings.HasPrefix(s, "STATUS=unhealthy: ")
	})
	// The node pings every 500ms while it works; a whole WatchdogSec
	// without a ping is what makes systemd restart it.
	var quiet time.Duration
	for quiet < 2*watchdog {
		before := time.Now()
		select {
		case <-l.arrived:
		case <-time.After(watchdog):
		}
		lines, next := l.since(i)
		for _, nl := range lines {
			if nl.line == "WATCHDOG=1" {
				t.Fatalf("WATCHDOG=1 while the node has no quorum: %v", lines)
			}
		}
		i = next
		quiet += time.Since(before)
	}
	if n3.Proc.Exited() {
		t.Fatal("n3 exited")
	}

	// Its peers back: it works again.
	c.Start(c.Nodes[0])
	c.Start(c.Nodes[1])
	i = l.waitFor(t, i, 60*time.Second, "WATCHDOG=1 once the quorum is back", is("WATCHDOG=1"))

	if err := n3.Proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	l.waitFor(t, i, 30*time.Second, "STOPPING=1", is("STOPPING=1"))
	all, _ := l.since(0)
	for _, nl := range all {
		if nl.line != "WATCHDOG=1" {
			t.Logf("%s %s", nl.at.Format("15:04:05.000"), nl.line)
		}
	}
	if code, ok := n3.Proc.Wait(30 * time.Second); !ok || code != 0 {
		t.Fatalf("n3 after SIGTERM: exited %v, code %d", ok, code)
	}
}
