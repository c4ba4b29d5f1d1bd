package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Netns is a network of its own for a test cluster: each node runs in its
// own network namespace, with one address on a bridge that lives in a
// further namespace (the hub), so that a test can cut one node off the
// others — its bridge port goes down, packets to and from it are dropped,
// and no connection is closed or reset: the silence of a real partition,
// which a kill -9 or a closed socket does not give. Every address is
// inside a namespace the test created (10.77.0.0/24 there); nothing is
// configured in the host's namespace. The test's own clients reach a node
// by dialing from inside its namespace (Dialer), and commands run there
// with `ip netns exec`.
//
// It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's ip;
// NewNetns skips the test, saying why, when either is missing.
type Netns struct {
	t      testing.TB
	prefix string
	hub    string
	nodes  []string // namespace of node i
	addrs  []string // address of node i
}

// netnsSubnet is the nodes' subnet inside the test's namespaces (node i
// has .i+1). Every test has its own hub, so tests do not collide.
const netnsSubnet = "10.77.0."

// NewNetns creates the namespaces of n nodes and the hub, and deletes them
// when the test ends.
func NewNetns(t testing.TB, n int) *Netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN): this test runs only as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespaces need iproute2's ip, which is not installed")
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	nn := &Netns{t: t, prefix: "cx" + hex.EncodeToString(b[:])}
	nn.hub = nn.prefix + "-hub"
	t.Cleanup(nn.delete)
	nn.ip("netns", "add", nn.hub)
	nn.ip("-n", nn.hub, "link", "add", "br0", "type", "bridge")
	nn.ip("-n", nn.hub, "link", "set", "br0", "up")
	for i := range n {
		ns := fmt.Sprintf("%s-n%d", nn.prefix, i+1)
		addr := fmt.Sprintf("%s%d", netnsSubnet, i+1)
		nn.ip("netns", "add", ns)
		nn.nodes, nn.addrs = append(nn.nodes, ns), append(nn.addrs, addr)
		port := nn.port(i)
		nn.ip("-n", nn.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		nn.ip("-n", nn.hub, "link", "set", port, "master", "br0", "up")
		nn.ip("-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
		nn.ip("-n", ns, "link", "set", "eth0", "up")
		nn.ip("-n", ns, "link", "set", "lo", "up")
	}
	return nn
}

func (nn *Netns) port(i int) string { return fmt.Sprintf("p%d", i+1) }

// Name is node i's namespace.
func (nn *Netns) Name(i int) string { return nn.nodes[i] }

// Addr is node i's address (no port).
func (nn *Netns) Addr(i int) string { return nn.addrs[i] }

// Cut isolates node i: its bridge port goes down.
func (nn *Netns) Cut(i int) { nn.ip("-n", nn.hub, "link", "set", nn.port(i), "down") }

// Heal reconnects node i.
func (nn *Netns) Heal(i int) { nn.ip("-n", nn.hub, "link", "set", nn.port(i), "up") }

// Command returns args run inside namespace ns (`ip netns exec`, which
// execs the command: its pid is the command's).
func Command(ns string, args ...string) []string {
	if ns == "" {
		return args
	}
	return append([]string{"ip", "netns", "exec", ns}, args...)
}

func (nn *Netns) ip(args ...string) {
	nn.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		nn.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (nn *Netns) delete() {
	for _, ns := range append(nn.nodes, nn.hub) {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
			nn.t.Logf("ip netns del %s: %v: %s", ns, err, out)
		}
	}
}

// Dialer returns a dial function that opens its connections inside
// namespace ns ("" = the test's own): the socket is made on an OS thread
// switched into the namespace, and keeps the namespace for its life. The
// thread is never switched back: the goroutine ends locked to it, and Go
// then ends the thread instead of reusing it.
func Dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if ns == "" {
		return d.DialContext
	}
	path := filepath.Join("/run/netns", ns)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			f, err := os.Open(path)
			if err != nil {
				ch <- result{nil, fmt.Errorf("namespace %s: %w", ns, err)}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				ch <- result{nil, fmt.Errorf("enter namespace %s: %w", ns, err)}
				return
			}
			c, err := d.DialContext(ctx, network, addr)
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}
