// Package e2e is the end-to-end harness: it builds the custos binary once
// per test binary run and drives real processes over loopback, the way an
// operator would (as etcd's tests/framework/e2e) — a node in dev mode
// (plain HTTP), a cluster of three initialized and joined with the CLI
// and serving its API over TLS from the cluster CA, which the harness's
// clients and CLI runs trust as an operator's would (tls.go), kill -9 and
// restarts on the same data directories, the CLI itself, and the API
// through appliance/client with every exchange checked against
// openapi.json. Everything it starts is killed in t.Cleanup; logs go to
// files in t.TempDir() and their last lines are printed when a test fails;
// a failed cluster test keeps its logs and data directories.
//
// Tests wait with internal/testkit's Poll, never by sleeping. A package
// whose tests use Binary runs them through Main, which removes the
// binaries at the end.
package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Package is the package of the custos command, which Binary builds.
const Package = "github.com/custos/custos/cmd/custos"

// builds are the binaries built in this test process. They are package
// state on purpose: building takes most of a minute, so every test of the
// run shares one build of each kind, and Main removes them at the end.
var builds struct {
	mu          sync.Mutex
	dir         string // the temporary directory holding them ("" = none yet)
	race, plain build
}

// A build is one `go build` of Package, made at most once per run.
type build struct {
	once sync.Once
	path string
	err  error
}

// Main runs the tests of m, removes the binaries Binary built, and exits
// with the tests' status: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	os.Exit(code)
}

// Binary returns the path of the custos binary, built once per run with
// the race detector, so the end-to-end and fault tests also hunt data
// races in the server under real concurrency (CheckNoRaces reads the
// logs). On a two-core machine the race build cuts the kill-the-leader
// test's write throughput by about 2.5x (some 4,000 writes instead of
// 10,000) but not its duration (about 20s either way: its phases are
// bounded by time), and recovery times stay under about 1.2s.
// CUSTOS_E2E_RACE=0 builds without it.
func Binary(t testing.TB) string {
	t.Helper()
	race := os.Getenv("CUSTOS_E2E_RACE") != "0"
	b, name, args := &builds.plain, "custos", []string{"build", "-o"}
	if race {
		b, name, args = &builds.race, "custos-race", []string{"build", "-race", "-o"}
	}
	b.once.Do(func() {
		dir, err := binDir()
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name)
		start := time.Now()
		cmd := exec.Command("go", append(args, b.path, Package)...)
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, out)
			return
		}
		t.Logf("built %s in %v", name, time.Since(start).Round(time.Millisecond))
	})
	if b.err != nil {
		t.Fatalf("build custos: %v", b.err)
	}
	return b.path
}

// binDir is the directory of the run's binaries, made on first use.
func binDir() (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir == "" {
		d, err := os.MkdirTemp("", "custos-e2e-bin-*")
		if err != nil {
			return "", err
		}
		builds.dir = d
	}
	return builds.dir, nil
}

// FreePort returns a loopback address whose port was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct loopback addresses whose ports were free a
// moment ago. The listeners stay open until all n are chosen: closed one
// by one, the kernel may hand out the same port twice.
func FreePorts(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}
