package notify_test

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/notify"
)

func TestFromEnviron(t *testing.T) {
	const pid = 4242
	tests := []struct {
		name     string
		environ  []string
		nilN     bool
		watchdog time.Duration // WatchdogInterval
		bad      bool
	}{
		{name: "no socket", environ: []string{"HOME=/root"}, nilN: true},
		{name: "empty socket", environ: []string{"NOTIFY_SOCKET="}, nilN: true},
		{name: "path", environ: []string{"NOTIFY_SOCKET=/run/systemd/notify"}},
		{name: "abstract", environ: []string{"NOTIFY_SOCKET=@/org/freedesktop/systemd1/notify/123"}},
		{name: "relative path", environ: []string{"NOTIFY_SOCKET=notify"}, bad: true},
		{name: "watchdog", environ: []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=30000000"}, watchdog: 10 * time.Second},
		{name: "watchdog for this pid", environ: []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=3000000", "WATCHDOG_PID=4242"}, watchdog: time.Second},
		{name: "watchdog for another pid", environ: []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=3000000", "WATCHDOG_PID=1"}},
		{name: "watchdog without socket", environ: []string{"WATCHDOG_USEC=3000000"}, nilN: true},
		{name: "first of duplicates", environ: []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=3000000", "WATCHDOG_USEC=x"}, watchdog: time.Second},
		{name: "zero usec", environ: []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=0"}, bad: true},
		{name: "negative usec", environ: []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=-1"}, bad: true},
		{name: "usec overflows", environ: []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=9223372036854775807"}, bad: true},
		{name: "bad pid", environ: []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=1", "WATCHDOG_PID=x"}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := notify.FromEnviron(tt.environ, pid)
			if tt.bad {
				if !errors.Is(err, notify.ErrEnviron) {
					t.Fatalf("err = %v, want ErrEnviron", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (n == nil) != tt.nilN {
				t.Fatalf("notifier = %v, want nil %v", n, tt.nilN)
			}
			if got := n.WatchdogInterval(); got != tt.watchdog {
				t.Fatalf("WatchdogInterval = %v, want %v", got, tt.watchdog)
			}
		})
	}
}

// listen opens a unixgram socket as systemd's manager does and returns
// it with its NOTIFY_SOCKET value.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:m])
}

func TestSend(t *testing.T) {
	for _, sock := range []string{filepath.Join(t.TempDir(), "notify"), "@custos-notify-test-" + strings.ReplaceAll(t.Name(), "/", "-")} {
		t.Run(sock[:1], func(t *testing.T) {
			c := listen(t, sock)
			n, err := notify.FromEnviron([]string{"NOTIFY_SOCKET=" + sock}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Send(notify.Ready, notify.Status("raft Leader\n(term 2)")); err != nil {
				t.Fatal(err)
			}
			if got, want := receive(t, c), "READY=1\nSTATUS=raft Leader (term 2)\n"; got != want {
				t.Fatalf("datagram %q, want %q", got, want)
			}
			if err := n.Send(notify.Stopping); err != nil {
				t.Fatal(err)
			}
			if got := receive(t, c); got != "STOPPING=1\n" {
				t.Fatalf("datagram %q", got)
			}
			if err := n.Send("STATUS=a\nREADY=1"); err == nil {
				t.Fatal("a line with a newline was sent")
			}
		})
	}
}

func TestNilSendsNothing(t *testing.T) {
	var n *notify.Notifier
	if err := n.Send(notify.Ready); err != nil {
		t.Fatal(err)
	}
	if n.WatchdogInterval() != 0 {
		t.Fatal("nil notifier has a watchdog")
	}
}

func TestSendWithoutListener(t *testing.T) {
	n, err := notify.FromEnviron([]string{"NOTIFY_SOCKET=" + filepath.Join(t.TempDir(), "gone")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Send(notify.Ready); err == nil {
		t.Fatal("send to a missing socket succeeded")
	}
}

func FuzzFromEnviron(f *testing.F) {
	f.Add("/run/notify", "30000000", "1", 1)
	f.Add("@abstract", "1", "", 7)
	f.Add("x", "-5", "y", 0)
	f.Fuzz(func(t *testing.T, sock, usec, pid string, self int) {
		environ := []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=" + usec}
		if pid != "" {
			environ = append(environ, "WATCHDOG_PID="+pid)
		}
		n, err := notify.FromEnviron(environ, self)
		if err != nil {
			if n != nil {
				t.Fatal("a notifier and an error")
			}
			return
		}
		if n.WatchdogInterval() < 0 {
			t.Fatalf("negative interval from %q", usec)
		}
	})
}
