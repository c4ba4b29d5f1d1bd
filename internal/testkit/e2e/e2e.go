// Package e2e is the end-to-end harness: it builds the custos binary once
// per test binary run and drives real processes over loopback, the way an
// operator would (as etcd's tests/framework/e2e) — a node in dev mode
// (plain HTTP), a cluster of three initialized and joined with the CLI
// and serving its API over TLS from the cluster CA, which the harness's
// clients and CLI runs trust as an operator's would (tls.go), kill -9 and
// restarts on the same data directories, the CLI itself, and the API
// through appliance/client with every exchange checked against
// openapi.json; for faults that need a real network, a cluster whose nodes
// run in network namespaces of their own (netns.go: a partition that drops
// packets instead of closing connections). Everything it starts is killed
// in t.Cleanup; logs go to
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
	mu   sync.Mutex
	dir  string            // the temporary directory holding them ("" = none yet)
	byID map[string]*build // by kind: race or not, version, commit
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

// Binary returns the path of the custos binary, built once per run.
// With CUSTOS_E2E_RACE=1 (`make e2e`, `make soak`) it is built with the
// race detector, so the end-to-end and fault tests also hunt data races
// in the server under real concurrency (CheckNoRaces reads the logs).
// `make test` builds it without: the race build made the end-to-end
// tests take 390 s instead of 224 s on a two-core machine (the nodes'
// password hashing and sealing run several times slower under the
// detector), which alone was most of make test's ten-minute budget; the
// in-process cluster tests of the same code run under -race there.
func Binary(t testing.TB) string {
	t.Helper()
	return BinaryVersion(t, "")
}

// BinaryVersion is Binary with main.version set to version (-ldflags -X;
// "" keeps the default): two builds of the same code that report
// different versions, such as the "old" and "new" of an upgrade test.
// Only the link step differs from Binary's build, and the build cache
// makes the rest free.
func BinaryVersion(t testing.TB, version string) string {
	t.Helper()
	race := os.Getenv("CUSTOS_E2E_RACE") == "1"
	name, args := "custos", []string{"build"}
	if race {
		name, args = "custos-race", []string{"build", "-race"}
	}
	if version != "" {
		name += "-" + version
		args = append(args, "-ldflags", "-X main.version="+version)
	}
	path, err := buildOnce(t, name, "", args)
	if err != nil {
		t.Fatalf("build custos: %v", err)
	}
	return path
}

// BinaryAt returns the custos binary built from commit rev of the
// repository the test runs in (its tree exported with git archive into a
// temporary directory), without the race detector and with -trimpath, as
// a release is built, and with main.version set to version: a real older
// release for an upgrade test. It needs git, the commit (a shallow clone
// may not have it) and that commit's modules in the module cache or
// reachable.
func BinaryAt(t testing.TB, rev, version string) (string, error) {
	t.Helper()
	name := "custos-" + version
	path, err := buildOnce(t, name, rev, []string{"build", "-trimpath", "-ldflags", "-X main.version=" + version})
	if err != nil {
		return "", fmt.Errorf("build custos at %s: %w", rev, err)
	}
	return path, nil
}

// buildOnce builds Package (of commit rev, or of the working tree when rev
// is "") with go args into the run's directory as name, once per run.
func buildOnce(t testing.TB, name, rev string, args []string) (string, error) {
	t.Helper()
	id := name + "@" + rev
	builds.mu.Lock()
	if builds.byID == nil {
		builds.byID = map[string]*build{}
	}
	b, ok := builds.byID[id]
	if !ok {
		b = &build{}
		builds.byID[id] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() {
		dir, err := binDir()
		if err != nil {
			b.err = err
			return
		}
		path := filepath.Join(dir, name)
		start := time.Now()
		cmd := exec.Command("go", append(args, "-o", path, Package)...)
		if rev != "" {
			if cmd.Dir, err = exportCommit(dir, rev); err != nil {
				b.err = err
				return
			}
		}
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, out)
			return
		}
		b.path = path
		t.Logf("built %s in %v", name, time.Since(start).Round(time.Millisecond))
	})
	return b.path, b.err
}

// exportCommit writes the tree of commit rev of the current repository
// into a new directory under dir and returns it.
func exportCommit(dir, rev string) (string, error) {
	src := filepath.Join(dir, "src-"+rev)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.Command("git", "archive", "--format=tar", rev)
	extract := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	extract.Stdin = pipe
	var stderr strings.Builder
	archive.Stderr = &stderr
	if err := extract.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		_ = extract.Wait()
		return "", fmt.Errorf("git archive %s: %w: %s", rev, err, stderr.String())
	}
	if err := extract.Wait(); err != nil {
		return "", fmt.Errorf("extract %s: %w", rev, err)
	}
	return src, nil
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
