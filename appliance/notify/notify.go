// Package notify speaks systemd's service notification protocol
// (sd_notify(3)): a Type=notify unit learns from the node that it is ready
// (READY=1), what it is doing (STATUS=…), that it is stopping (STOPPING=1),
// and that it still works (WATCHDOG=1, at least once per WatchdogSec=).
//
// The protocol is one datagram of newline-separated KEY=value lines sent to
// the unixgram socket named in NOTIFY_SOCKET (a path, or an abstract
// socket when it starts with '@'). That is a few lines of the standard
// library, as Miniflux does it, so no module is added for it: a
// maintained one (coreos/go-systemd's daemon) reads the process
// environment itself, and this package reads only what it is given.
//
// # No global state
//
// [FromEnviron] takes the environment and the process id as arguments,
// so tests run in parallel with their own sockets and the node never reads
// os.Environ behind its caller's back. A nil *Notifier is valid and sends
// nothing: outside systemd (no NOTIFY_SOCKET) every call is a no-op.
//
// # Watchdog
//
// systemd sets WATCHDOG_USEC when the unit has WatchdogSec=, and
// WATCHDOG_PID to the process it expects the pings from; a process whose
// pid is not WATCHDOG_PID (a child that inherited the environment) must not
// ping, so [Notifier.WatchdogInterval] is 0 for it. The interval returned
// is a third of WATCHDOG_USEC, so one missed ping (an election, a slow
// check) does not get the service killed; what decides whether to ping is
// the caller's: the node pings only while its health check passes
// (appliance/node, "Supervision").
package notify

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Env names the variables FromEnviron reads.
const (
	EnvSocket      = "NOTIFY_SOCKET"
	EnvWatchdogUS  = "WATCHDOG_USEC"
	EnvWatchdogPID = "WATCHDOG_PID"
)

// The states a service sends (sd_notify(3)).
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// ErrEnviron is a malformed NOTIFY_SOCKET, WATCHDOG_USEC or WATCHDOG_PID.
var ErrEnviron = errors.New("notify: bad environment")

// Notifier sends notifications to the service manager's socket.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration // WATCHDOG_USEC, 0 when off or not for this pid
}

// FromEnviron returns the Notifier the environment describes for process
// pid, or nil (a valid Notifier that sends nothing) when NOTIFY_SOCKET is
// not set. environ holds "KEY=value" entries, as from os.Environ; the first
// of duplicates wins.
func FromEnviron(environ []string, pid int) (*Notifier, error) {
	get := func(key string) (string, bool) {
		for _, kv := range environ {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				return v, true
			}
		}
		return "", false
	}
	sock, ok := get(EnvSocket)
	if !ok || sock == "" {
		return nil, nil
	}
	if !strings.HasPrefix(sock, "/") && !strings.HasPrefix(sock, "@") {
		return nil, fmt.Errorf("%w: %s=%q is neither a path nor an abstract socket", ErrEnviron, EnvSocket, sock)
	}
	n := &Notifier{addr: &net.UnixAddr{Name: sock, Net: "unixgram"}}
	usec, ok := get(EnvWatchdogUS)
	if !ok {
		return n, nil
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 || us > uint64(1<<63-1)/uint64(time.Microsecond) {
		return nil, fmt.Errorf("%w: %s=%q", ErrEnviron, EnvWatchdogUS, usec)
	}
	if p, ok := get(EnvWatchdogPID); ok {
		want, err := strconv.Atoi(p)
		if err != nil || want <= 0 {
			return nil, fmt.Errorf("%w: %s=%q", ErrEnviron, EnvWatchdogPID, p)
		}
		if want != pid {
			return n, nil // the pings are expected from another process
		}
	}
	n.watchdog = time.Duration(us) * time.Microsecond
	return n, nil
}

// WatchdogInterval is how often the service should ping: a third of
// WatchdogSec=, or 0 when the watchdog is off for this process.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog / 3
}

// Send sends one notification of the given lines ("READY=1",
// "STATUS=…"). A nil Notifier sends nothing. A line may not hold a
// newline: it would end the line early and could forge another state.
func (n *Notifier) Send(lines ...string) error {
	if n == nil || len(lines) == 0 {
		return nil
	}
	for _, l := range lines {
		if strings.ContainsRune(l, '\n') {
			return fmt.Errorf("notify: line %q holds a newline", l)
		}
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify: dial %s: %w", n.addr.Name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("notify: send to %s: %w", n.addr.Name, err)
	}
	return nil
}

// Status is the STATUS= line of s (newlines replaced by spaces), for
// Send.
func Status(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}
