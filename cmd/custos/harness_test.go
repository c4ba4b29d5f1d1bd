package main

// The end-to-end harness: it builds the custos binary once per test binary
// run and drives real processes over loopback, the way an operator would.
// Everything it starts is killed in t.Cleanup; logs go to files in
// t.TempDir() and their last lines are printed when a test fails.
//
// Tests poll with deadlines; they sleep only inside poll loops.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/apispec"
)

// binDir holds the binaries built for this run; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// A build is one `go build` of this package, made at most once per run.
type build struct {
	once sync.Once
	path string
	err  error
}

var (
	raceBuild  build
	plainBuild build
)

// custosBinary returns the path of the custos binary, built once per run
// with the race detector, so the end-to-end and fault tests also hunt data
// races in the server under real concurrency (checkNoRaces reads the
// logs). On a two-core machine the race build cuts the kill-the-leader
// test's write throughput by about 2.5x (some 4,000 writes instead of
// 10,000) but not its duration (about 20s either way: its phases are
// bounded by time), and recovery times stay under about 1.2s.
// CUSTOS_E2E_RACE=0 builds without it.
func custosBinary(t testing.TB) string {
	t.Helper()
	race := os.Getenv("CUSTOS_E2E_RACE") != "0"
	b, name, args := &plainBuild, "custos", []string{"build", "-o"}
	if race {
		b, name, args = &raceBuild, "custos-race", []string{"build", "-race", "-o"}
	}
	b.once.Do(func() {
		if binDir == "" {
			d, err := os.MkdirTemp("", "custos-e2e-bin-*")
			if err != nil {
				b.err = err
				return
			}
			binDir = d
		}
		b.path = filepath.Join(binDir, name)
		start := time.Now()
		cmd := exec.Command("go", append(args, b.path, ".")...)
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
			return
		}
		t.Logf("built %s in %v", name, time.Since(start).Round(time.Millisecond))
	})
	if b.err != nil {
		t.Fatalf("build custos: %v", b.err)
	}
	return b.path
}

// freePort returns a loopback address whose port was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	return freePorts(t, 1)[0]
}

// freePorts returns n distinct loopback addresses whose ports were free a
// moment ago. The listeners stay open until all n are chosen: closed one
// by one, the kernel may hand out the same port twice.
func freePorts(t testing.TB, n int) []string {
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

// poll calls cond every interval until it returns nil or the deadline
// passes; then it fails the test with the last error.
func poll(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := pollErr(timeout, cond); err != nil {
		var perm permanent
		if errors.As(err, &perm) {
			t.Fatalf("%s: %v", what, err)
		}
		t.Fatalf("%s: not within %v: %v", what, timeout, err)
	}
}

// permanent marks an error that no amount of waiting will cure (a process
// died): poll gives up at once.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// pollErr is poll without the test: it returns the last error on timeout,
// or at once if the error is permanent.
func pollErr(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	interval := 20 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
		if interval < 200*time.Millisecond {
			interval += 10 * time.Millisecond
		}
	}
}

// ---- processes ----

// proc is one run of a long-lived custos process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, valid after done

	mu      sync.Mutex
	stopped bool // SIGSTOPped and not yet continued
}

// startProc starts bin with args, appending stdout and stderr to the given
// files (so a restarted node keeps one log). The process is SIGKILLed at
// cleanup if it is still alive.
func startProc(t testing.TB, name, bin, stdoutPath, stderrPath string, args ...string) *proc {
	t.Helper()
	open := func(p string) *os.File {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatalf("%s: open log: %v", name, err)
		}
		return f
	}
	stdout, stderr := open(stdoutPath), open(stderrPath)
	fmt.Fprintf(stderr, "==== %s: start %s %s\n", time.Now().Format("15:04:05.000"), name, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = cleanEnv()
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		stdout.Close()
		stderr.Close()
		t.Fatalf("%s: start: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// cleanEnv is the environment of the test without CUSTOS_ variables, so a
// developer's shell cannot change what the tests run. A race-enabled binary
// sleeps a second at exit by default (GORACE atexit_sleep_ms), which would
// add a second to every CLI call and every stop; races are still reported
// (and make the exit status 66) without it.
func cleanEnv() []string {
	var env []string
	gorace := false
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GORACE=") {
			gorace = true
		}
		if !strings.HasPrefix(kv, "CUSTOS_") {
			env = append(env, kv)
		}
	}
	if !gorace {
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return env
}

// checkNoRaces fails the test if any of the log files holds a report of
// the race detector (the e2e tests run race-enabled binaries).
func checkNoRaces(t testing.TB, files ...string) {
	t.Cleanup(func() {
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if i := bytes.Index(data, []byte("WARNING: DATA RACE")); i >= 0 {
				end := min(len(data), i+4000)
				t.Errorf("%s: the race detector reported a data race:\n%s", filepath.Base(f), data[i:end])
			}
		}
	})
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process if it is still running. It goes through
// os.Process, which (on Linux, through a pidfd) never signals another
// process that reused the pid of one already reaped.
func (p *proc) signal(sig syscall.Signal) error {
	if p.exited() {
		return fmt.Errorf("%s: already exited", p.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch sig {
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %v: %w", p.name, sig, err)
	}
	return nil
}

// kill SIGKILLs the process (continuing it first if it is stopped) and
// waits for it to exit.
func (p *proc) kill() {
	if p.exited() {
		return
	}
	p.mu.Lock()
	if p.stopped {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		p.stopped = false
	}
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) (code int, ok bool) {
	if !p.exited() {
		select {
		case <-p.done:
		case <-time.After(d):
			return 0, false
		}
	}
	if p.err == nil {
		return 0, true
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), true
	}
	return -1, true
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dumpOnFailure prints the last 50 lines of each file when the test has
// failed.
func dumpOnFailure(t testing.TB, files ...string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, f := range files {
			t.Logf("---- last 50 lines of %s ----\n%s", filepath.Base(f), tail(f, 50))
		}
	})
}

// ---- the CLI ----

// cliResult is one finished CLI invocation.
type cliResult struct {
	stdout, stderr string
	code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCLI runs one short-lived custos command and waits (at most a minute)
// for it to finish.
func runCLI(t testing.TB, bin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("custos %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("custos %s: did not finish within a minute", strings.Join(args, " "))
	}
	return r
}

// ---- HTTP ----

// newAPIClient is a client of one node's API with token whose every
// exchange, when spec is not nil, is checked against openapi.json and a
// mismatch reported to tb. Its idle connections are closed when the test
// ends.
func newAPIClient(tb testing.TB, addr, token string, timeout time.Duration, spec *apispec.Validator) *client.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	tb.Cleanup(tr.CloseIdleConnections)
	var rt http.RoundTripper = tr
	if spec != nil {
		rt = &specCheck{tb: tb, spec: spec, next: tr}
	}
	return client.New(addr, client.Options{Token: token, HTTPClient: &http.Client{Timeout: timeout, Transport: rt}})
}

// specCheck is a transport that checks every exchange against the API's
// description: real processes, real sockets, and the exchange must match
// just as in the API package's tests (requests refused with a 4xx are
// checked as responses only; binary bodies, such as an audit export, for
// their media type only). It reads each answer in full.
type specCheck struct {
	tb   testing.TB
	spec *apispec.Validator
	next http.RoundTripper
}

func (s *specCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	var sent []byte
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		if sent, err = io.ReadAll(body); err != nil {
			return nil, err
		}
	}
	resp, err := s.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	s.spec.Check(s.tb, req, sent, resp, data)
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, nil
}

// ---- clusters ----

// clusterNode is one node of a test cluster: its config and its current
// process.
type clusterNode struct {
	id          string
	apiAddr     string
	clusterAddr string
	dataDir     string
	cfgPath     string
	stdoutPath  string
	stderrPath  string
	proc        *proc
	api         *client.Client
}

// cluster is a three-node cluster of real custos processes on loopback.
type cluster struct {
	t         testing.TB
	bin       string
	dir       string
	nodes     []*clusterNode
	token     string // operator token
	joinToken string
}

// newCluster writes the three nodes' configurations, each followed by
// extra (TOML, such as "[log]\nlevel = \"warn\"\n"); nothing runs yet.
func newCluster(t testing.TB, bin, extra string) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: bin, dir: t.TempDir()}
	ports := freePorts(t, 6)
	for i := 1; i <= 3; i++ {
		n := &clusterNode{
			id:          fmt.Sprintf("n%d", i),
			apiAddr:     ports[2*i-2],
			clusterAddr: ports[2*i-1],
		}
		n.dataDir = filepath.Join(c.dir, n.id)
		n.cfgPath = filepath.Join(c.dir, n.id+".toml")
		n.stdoutPath = filepath.Join(c.dir, n.id+".stdout.log")
		n.stderrPath = filepath.Join(c.dir, n.id+".log")
		c.nodes = append(c.nodes, n)
	}
	for i, n := range c.nodes {
		cfg := fmt.Sprintf(`node_id = %q
region = "local"
data_dir = %q
[api]
listen_address = %q
[cluster]
listen_address = %q
heartbeat_timeout = "300ms"
election_timeout = "300ms"
leader_lease_timeout = "150ms"
apply_timeout = "3s"
`, n.id, n.dataDir, n.apiAddr, n.clusterAddr)
		if i > 0 {
			cfg += fmt.Sprintf("join = [%q]\n", c.nodes[0].clusterAddr)
		}
		cfg += extra
		if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		dumpOnFailure(t, n.stderrPath)
		checkNoRaces(t, n.stderrPath)
	}
	keepOnFailure(t, c.dir)
	return c
}

// keepOnFailure copies dir (node logs and data directories) to a new
// directory under the system's temporary directory when the test has
// failed, so a failure can be examined after t.TempDir is gone. It runs
// after the processes are killed (cleanups run last-registered first, and
// the processes start later).
func keepOnFailure(t testing.TB, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dst, err := os.MkdirTemp("", "custos-e2e-failed-*")
		if err != nil {
			t.Logf("keep %s: %v", dir, err)
			return
		}
		if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
			t.Logf("keep %s: %v", dir, err)
			return
		}
		t.Logf("logs and data directories kept in %s", dst)
	})
}

// startCluster initializes n1 with the CLI, starts it, joins n2 and n3 with
// the CLI and starts them, and waits until all three are voters and every
// node knows the leader.
func startCluster(t testing.TB, bin string) *cluster {
	t.Helper()
	return startClusterWith(t, bin, "")
}

// startClusterWith is startCluster with extra TOML appended to every node's
// configuration (after the [cluster] table, so it should open a table).
func startClusterWith(t testing.TB, bin, extra string) *cluster {
	t.Helper()
	c := newCluster(t, bin, extra)
	n1 := c.nodes[0]
	r := runCLI(t, bin, "operator", "init", "--config", n1.cfgPath, "--format", "json")
	if r.code != 0 {
		t.Fatalf("operator init: %v", r)
	}
	var initOut struct {
		OperatorToken string `json:"operator_token"`
		JoinToken     string `json:"join_token"`
		NodeID        string `json:"node_id"`
		Region        string `json:"region"`
		SealIdentity  string `json:"seal_identity"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &initOut); err != nil {
		t.Fatalf("operator init output: %v\n%s", err, r.stdout)
	}
	if initOut.OperatorToken == "" || initOut.JoinToken == "" || initOut.NodeID != "n1" || initOut.Region != "local" || initOut.SealIdentity == "" {
		t.Fatalf("operator init output incomplete: %s", r.stdout)
	}
	if fi, err := os.Stat(initOut.SealIdentity); err != nil {
		t.Fatalf("seal identity: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Fatalf("seal identity %s has mode %v, want 0600", initOut.SealIdentity, fi.Mode().Perm())
	}
	c.token, c.joinToken = initOut.OperatorToken, initOut.JoinToken
	spec := apispec.New(t)
	for _, n := range c.nodes {
		n.api = newAPIClient(t, n.apiAddr, c.token, 10*time.Second, spec)
	}
	c.start(n1)
	c.waitHealthy(n1, 30*time.Second)
	for _, n := range c.nodes[1:] {
		r := runCLI(t, bin, "operator", "join", "--config", n.cfgPath, "--join-token", c.joinToken)
		if r.code != 0 {
			t.Fatalf("operator join %s: %v", n.id, r)
		}
		// The runbook's step: copy the seal identity to the new node.
		copySealIdentity(t, initOut.SealIdentity, n.dataDir)
		c.start(n)
	}
	poll(t, 60*time.Second, "three voters", func() error {
		r := runCLI(t, bin, "--addr", n1.apiAddr, "--token", c.token, "operator", "raft", "list-peers", "--format", "json")
		if r.code != 0 {
			return fmt.Errorf("list-peers: %v", r)
		}
		var out client.PeerList
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			return fmt.Errorf("list-peers output: %v: %s", err, r.stdout)
		}
		voters := 0
		for _, p := range out.Peers {
			if p.Voter {
				voters++
			}
		}
		if voters != 3 {
			return fmt.Errorf("%d voters: %s", voters, r.stdout)
		}
		return nil
	})
	for _, n := range c.nodes {
		c.waitHealthy(n, 30*time.Second)
	}
	return c
}

// start starts n's server process (again, after a kill: same config, same
// data directory, same log files).
func (c *cluster) start(n *clusterNode) {
	c.t.Helper()
	n.proc = startProc(c.t, n.id, c.bin, n.stdoutPath, n.stderrPath, "server", "--config", n.cfgPath)
}

// kill SIGKILLs n's process and waits for it to be gone.
func (c *cluster) kill(n *clusterNode) {
	c.t.Helper()
	if err := n.proc.signal(syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill -9 %s: %v", n.id, err)
	}
	if _, ok := n.proc.wait(10 * time.Second); !ok {
		c.t.Fatalf("%s did not exit after SIGKILL", n.id)
	}
}

// checkAlive returns a permanent error if n's process exited on its own.
func (c *cluster) checkAlive(n *clusterNode) error {
	if n.proc.exited() {
		code, _ := n.proc.wait(0)
		return permanent{fmt.Errorf("%s exited unexpectedly (code %d); log tail:\n%s", n.id, code, tail(n.stderrPath, 30))}
	}
	return nil
}

// checkAllAlive is checkAlive for every node that has been started.
func (c *cluster) checkAllAlive() error {
	for _, n := range c.nodes {
		if n.proc == nil {
			continue
		}
		if err := c.checkAlive(n); err != nil {
			return err
		}
	}
	return nil
}

// waitHealthy waits until n answers /v1/sys/health with 200.
func (c *cluster) waitHealthy(n *clusterNode, d time.Duration) {
	c.t.Helper()
	poll(c.t, d, n.id+" healthy", func() error {
		if err := c.checkAlive(n); err != nil {
			return err
		}
		_, err := n.api.Health(context.Background())
		return err
	})
}

// leader returns the node that reports itself leader with the highest term
// among the live nodes, or an error.
func (c *cluster) leader() (*clusterNode, client.Status, error) {
	var best *clusterNode
	var bestSt client.Status
	var errs []error
	for _, n := range c.nodes {
		if n.proc == nil {
			continue
		}
		if n.proc.exited() {
			errs = append(errs, fmt.Errorf("%s: not running", n.id))
			continue
		}
		st, err := n.api.Status(context.Background())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.id, err))
			continue
		}
		if st.State == "Leader" && (best == nil || st.Term > bestSt.Term) {
			best, bestSt = n, st
		}
	}
	if best == nil {
		return nil, client.Status{}, fmt.Errorf("no node reports itself leader: %v", errors.Join(errs...))
	}
	return best, bestSt, nil
}

// waitLeader waits until some live node is leader.
func (c *cluster) waitLeader(d time.Duration) *clusterNode {
	c.t.Helper()
	var l *clusterNode
	poll(c.t, d, "a leader", func() error {
		var err error
		l, _, err = c.leader()
		return err
	})
	return l
}

// waitCaughtUp samples the leader's commit index, then waits until each
// given node has applied at least that index. If whole is set, the sample
// is taken only once the leader has committed its whole log, so that a
// fresh leader's no-op, and everything before it, is included; use it
// when no writes are running.
func (c *cluster) waitCaughtUp(d time.Duration, whole bool, nodes ...*clusterNode) {
	c.t.Helper()
	var commit uint64
	poll(c.t, d, "leader commit index", func() error {
		_, lst, err := c.leader()
		if err != nil {
			return err
		}
		if whole && lst.CommitIndex < lst.LastLogIndex {
			return fmt.Errorf("leader %s: commit %d < last log %d", lst.NodeID, lst.CommitIndex, lst.LastLogIndex)
		}
		commit = lst.CommitIndex
		return nil
	})
	poll(c.t, d, fmt.Sprintf("nodes applied index >= %d", commit), func() error {
		for _, n := range nodes {
			if err := c.checkAlive(n); err != nil {
				return err
			}
			st, err := n.api.Status(context.Background())
			if err != nil {
				return fmt.Errorf("%s: %w", n.id, err)
			}
			if st.AppliedIndex < commit {
				return fmt.Errorf("%s applied %d < leader commit %d", n.id, st.AppliedIndex, commit)
			}
		}
		return nil
	})
}

// others returns the nodes other than l.
func (c *cluster) others(l *clusterNode) []*clusterNode {
	var out []*clusterNode
	for _, n := range c.nodes {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

// cli runs a CLI command against node n with the operator token.
func (c *cluster) cli(n *clusterNode, args ...string) cliResult {
	c.t.Helper()
	return runCLI(c.t, c.bin, append([]string{"--addr", "http://" + n.apiAddr, "--token", c.token}, args...)...)
}

// readLines reads a file's lines (for banners written to stdout).
func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// copySealIdentity copies the cluster's seal identity into a node's data
// directory (its default keyring.seal_identity), mode 0600.
func copySealIdentity(t testing.TB, from, dataDir string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatalf("seal identity: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "seal.age"), b, 0o600); err != nil {
		t.Fatalf("seal identity: %v", err)
	}
}

// devNode is a dev-mode custos process with a fixed operator token.
type devNode struct {
	bin, addr, token       string
	dir                    string
	stdoutPath, stderrPath string
	proc                   *proc
}

// startDevNode starts `custos server --dev` on a free port with token and
// waits until it is healthy.
func startDevNode(t *testing.T, bin, token string) *devNode {
	t.Helper()
	d := &devNode{bin: bin, addr: freePort(t), token: token, dir: t.TempDir()}
	d.stdoutPath, d.stderrPath = filepath.Join(d.dir, "dev.stdout.log"), filepath.Join(d.dir, "dev.log")
	dumpOnFailure(t, d.stdoutPath, d.stderrPath)
	checkNoRaces(t, d.stderrPath)
	d.proc = startProc(t, "dev", bin, d.stdoutPath, d.stderrPath, "server", "--dev", "--dev-listen-address", d.addr, "--dev-token", token)
	poll(t, 30*time.Second, "dev node healthy", d.healthy)
	return d
}

// healthy is nil when /v1/sys/health answers 200.
func (d *devNode) healthy() error {
	if d.proc.exited() {
		return permanent{fmt.Errorf("dev node exited:\n%s", tail(d.stderrPath, 30))}
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + d.addr + "/v1/sys/health")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: HTTP %d", resp.StatusCode)
	}
	return nil
}

// cli runs the CLI against the node with its token.
func (d *devNode) cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLI(t, d.bin, append([]string{"--addr", "http://" + d.addr, "--token", d.token}, args...)...)
}
