package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/apispec"
	"github.com/custos/custos/internal/testkit"
)

// Node is one node of a test cluster: its config and its current
// process.
type Node struct {
	ID          string
	APIAddr     string
	ClusterAddr string
	DataDir     string
	ConfigPath  string
	StdoutPath  string
	StderrPath  string
	// Netns is the network namespace the node runs in ("" = the test's
	// own: loopback addresses), see Options.Netns.
	Netns string
	Proc  *Proc
	API   *client.Client
	plain bool // serves plain HTTP (Options.Plain)
	// Env is added to the environment of the node's server process
	// (set it between NewCluster and Boot, or before a Start).
	Env []string
}

// Cluster is a three-node cluster of real custos processes on loopback,
// each serving its API over TLS with a certificate issued from the
// cluster CA (see tls.go); with Options.Single, a cluster of one node.
type Cluster struct {
	t         testing.TB
	Bin       string
	Dir       string
	Nodes     []*Node
	Token     string // operator token
	JoinToken string
	// SealIdentity is the seal identity file operator init wrote (what
	// the operators keep offline).
	SealIdentity string
	spec         *apispec.Validator
	owners       owners
	ca           clusterCA // the cluster CA, which clients trust (see tls.go)
}

// Options are what a test may change of its cluster.
type Options struct {
	// Extra is TOML appended to every node's configuration (after the
	// [cluster] table, so it should open a table).
	Extra string
	// Netns, when set, runs node i in the network namespace Netns.Name(i),
	// on Netns.Addr(i), and every command and request of the harness to a
	// node from inside its namespace. It must have three nodes.
	Netns *Netns
	// Plain serves the API over plain HTTP (api.insecure_http = true)
	// instead of TLS.
	Plain bool
	// Single makes a cluster of one node (n1, initialized and started,
	// no joins): a production node over TLS where a test needs one
	// server and not replication, such as the web UI's browser tests.
	Single bool
}

// NewCluster writes the three nodes' configurations, each followed by
// extra (TOML, such as "[log]\nlevel = \"warn\"\n"); nothing runs yet.
func NewCluster(t testing.TB, bin, extra string) *Cluster {
	t.Helper()
	return newCluster(t, bin, Options{Extra: extra})
}

func newCluster(t testing.TB, bin string, o Options) *Cluster {
	t.Helper()
	extra, plain := o.Extra, o.Plain
	c := &Cluster{t: t, Bin: bin, Dir: t.TempDir()}
	count := 3
	if o.Single {
		if o.Netns != nil {
			t.Fatal("e2e: a single-node cluster runs without network namespaces")
		}
		count = 1
	}
	var ports []string
	if o.Netns == nil {
		ports = FreePorts(t, 2*count)
	} else {
		// Each namespace is the node's own: fixed ports are free there.
		for i := range 3 {
			ports = append(ports, net.JoinHostPort(o.Netns.Addr(i), "8200"), net.JoinHostPort(o.Netns.Addr(i), "8201"))
		}
	}
	for i := 1; i <= count; i++ {
		n := &Node{
			ID:          fmt.Sprintf("n%d", i),
			plain:       plain,
			APIAddr:     ports[2*i-2],
			ClusterAddr: ports[2*i-1],
		}
		if o.Netns != nil {
			n.Netns = o.Netns.Name(i - 1)
		}
		n.DataDir = filepath.Join(c.Dir, n.ID)
		n.ConfigPath = filepath.Join(c.Dir, n.ID+".toml")
		n.StdoutPath = filepath.Join(c.Dir, n.ID+".stdout.log")
		n.StderrPath = filepath.Join(c.Dir, n.ID+".log")
		c.Nodes = append(c.Nodes, n)
	}
	for i, n := range c.Nodes {
		cfg := fmt.Sprintf(`node_id = %q
region = "local"
data_dir = %q
[api]
listen_address = %q
[cluster]
listen_address = %q
heartbeat_timeout = "500ms"
election_timeout = "500ms"
leader_lease_timeout = "250ms"
apply_timeout = "3s"
`, n.ID, n.DataDir, n.APIAddr, n.ClusterAddr)
		if plain {
			cfg = strings.Replace(cfg, "[cluster]\n", "insecure_http = true\n[cluster]\n", 1)
		}
		if i > 0 {
			cfg += fmt.Sprintf("join = [%q]\n", c.Nodes[0].ClusterAddr)
		}
		cfg += extra
		if err := os.WriteFile(n.ConfigPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		DumpOnFailure(t, n.StderrPath)
		CheckNoRaces(t, n.StderrPath)
		CheckNoSecrets(t, c.secrets, n.StderrPath)
	}
	keepOnFailure(t, c.Dir)
	return c
}

// secrets are the credentials the cluster's harness holds: the operator
// and join tokens and the tenants' Owner keys (CheckNoSecrets).
func (c *Cluster) secrets() []string {
	return append([]string{c.Token, c.JoinToken}, c.owners.tokens()...)
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

// StartCluster initializes n1 with the CLI, starts it, joins n2 and n3 with
// the CLI and starts them, and waits until all three are voters and every
// node knows the leader.
func StartCluster(t testing.TB, bin string) *Cluster {
	t.Helper()
	return StartClusterWith(t, bin, "")
}

// StartClusterWith is StartCluster with extra TOML appended to every node's
// configuration (after the [cluster] table, so it should open a table).
func StartClusterWith(t testing.TB, bin, extra string) *Cluster {
	t.Helper()
	return StartClusterOpts(t, bin, Options{Extra: extra})
}

// StartPlainClusterWith is StartClusterWith with every API serving plain
// HTTP (api.insecure_http = true): the baseline of the TLS benchmark.
func StartPlainClusterWith(t testing.TB, bin, extra string) *Cluster {
	t.Helper()
	return StartClusterOpts(t, bin, Options{Extra: extra, Plain: true})
}

// StartClusterOpts is StartCluster with options.
func StartClusterOpts(t testing.TB, bin string, o Options) *Cluster {
	t.Helper()
	c := newCluster(t, bin, o)
	c.Boot()
	return c
}

// Boot is StartCluster's work on a cluster NewCluster wrote: init, start,
// join, start, and wait until every node is a voter.
func (c *Cluster) Boot() {
	t := c.t
	t.Helper()
	plain := c.Nodes[0].plain
	n1 := c.Nodes[0]
	r := c.RunOn(n1, "operator", "init", "--config", n1.ConfigPath, "--format", "json")
	if r.Code != 0 {
		t.Fatalf("operator init: %v", r)
	}
	var initOut struct {
		OperatorToken string `json:"operator_token"`
		JoinToken     string `json:"join_token"`
		NodeID        string `json:"node_id"`
		Region        string `json:"region"`
		SealIdentity  string `json:"seal_identity"`
		CACertFile    string `json:"ca_cert_file"`
		CACert        string `json:"ca_cert"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &initOut); err != nil {
		t.Fatalf("operator init output: %v\n%s", err, r.Stdout)
	}
	if initOut.OperatorToken == "" || initOut.JoinToken == "" || initOut.NodeID != "n1" || initOut.Region != "local" || initOut.SealIdentity == "" {
		t.Fatalf("operator init output incomplete: %s", r.Stdout)
	}
	if fi, err := os.Stat(initOut.SealIdentity); err != nil {
		t.Fatalf("seal identity: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Fatalf("seal identity %s has mode %v, want 0600", initOut.SealIdentity, fi.Mode().Perm())
	}
	c.Token, c.JoinToken, c.SealIdentity = initOut.OperatorToken, initOut.JoinToken, initOut.SealIdentity
	if caPEM, err := os.ReadFile(initOut.CACertFile); err != nil || initOut.CACert == "" || string(caPEM) != initOut.CACert {
		t.Fatalf("operator init's CA certificate %q: %v (printed %q)", initOut.CACertFile, err, initOut.CACert)
	}
	if !plain {
		c.TrustCA(initOut.CACertFile)
	}
	spec := apispec.New(t)
	c.spec = spec
	for _, n := range c.Nodes {
		n.API = NewAPIClientVia(t, n.URL(), c.Token, 10*time.Second, spec, Dialer(n.Netns))
	}
	c.Start(n1)
	c.WaitHealthy(n1, 30*time.Second)
	for _, n := range c.Nodes[1:] {
		r := c.RunOn(n, "operator", "join", "--config", n.ConfigPath, "--join-token", c.JoinToken)
		if r.Code != 0 {
			t.Fatalf("operator join %s: %v", n.ID, r)
		}
		// The runbook's step: copy the seal identity to the new node.
		copySealIdentity(t, initOut.SealIdentity, n.DataDir)
		c.Start(n)
	}
	testkit.Poll(t, 60*time.Second, fmt.Sprintf("%d voters", len(c.Nodes)), func() error {
		r := c.CLI(n1, "operator", "raft", "list-peers", "--format", "json")
		if r.Code != 0 {
			return fmt.Errorf("list-peers: %v", r)
		}
		var out client.PeerList
		if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
			return fmt.Errorf("list-peers output: %v: %s", err, r.Stdout)
		}
		voters := 0
		for _, p := range out.Peers {
			if p.Voter {
				voters++
			}
		}
		if voters != len(c.Nodes) {
			return fmt.Errorf("%d voters: %s", voters, r.Stdout)
		}
		return nil
	})
	for _, n := range c.Nodes {
		c.WaitHealthy(n, 30*time.Second)
	}
}

// Start starts n's server process (again, after a kill: same config, same
// data directory, same log files).
func (c *Cluster) Start(n *Node) {
	c.t.Helper()
	argv := Command(n.Netns, c.Bin, "server", "--config", n.ConfigPath)
	n.Proc = StartProcEnv(c.t, n.ID, argv[0], n.Env, n.StdoutPath, n.StderrPath, argv[1:]...)
}

// Kill SIGKILLs n's process and waits for it to be gone.
func (c *Cluster) Kill(n *Node) {
	c.t.Helper()
	if err := n.Proc.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill -9 %s: %v", n.ID, err)
	}
	if _, ok := n.Proc.Wait(10 * time.Second); !ok {
		c.t.Fatalf("%s did not exit after SIGKILL", n.ID)
	}
}

// CheckAlive returns a permanent error if n's process exited on its own.
func (c *Cluster) CheckAlive(n *Node) error {
	if n.Proc.Exited() {
		code, _ := n.Proc.Wait(0)
		return testkit.Permanent(fmt.Errorf("%s exited unexpectedly (code %d); log tail:\n%s", n.ID, code, Tail(n.StderrPath, 30)))
	}
	return nil
}

// CheckAllAlive is checkAlive for every node that has been started.
func (c *Cluster) CheckAllAlive() error {
	for _, n := range c.Nodes {
		if n.Proc == nil {
			continue
		}
		if err := c.CheckAlive(n); err != nil {
			return err
		}
	}
	return nil
}

// WaitHealthy waits until n answers /v1/sys/health with 200.
func (c *Cluster) WaitHealthy(n *Node, d time.Duration) {
	c.t.Helper()
	testkit.Poll(c.t, d, n.ID+" healthy", func() error {
		if err := c.CheckAlive(n); err != nil {
			return err
		}
		_, err := n.API.Health(context.Background())
		return err
	})
}

// Leader returns the node that reports itself leader with the highest term
// among the live nodes, or an error.
func (c *Cluster) Leader() (*Node, client.Status, error) {
	var best *Node
	var bestSt client.Status
	var errs []error
	for _, n := range c.Nodes {
		if n.Proc == nil {
			continue
		}
		if n.Proc.Exited() {
			errs = append(errs, fmt.Errorf("%s: not running", n.ID))
			continue
		}
		st, err := n.API.Status(context.Background())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.ID, err))
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

// WaitLeader waits until some live node is leader.
func (c *Cluster) WaitLeader(d time.Duration) *Node {
	c.t.Helper()
	var l *Node
	testkit.Poll(c.t, d, "a leader", func() error {
		var err error
		l, _, err = c.Leader()
		return err
	})
	return l
}

// WaitCaughtUp samples the leader's commit index, then waits until each
// given node has applied at least that index. If whole is set, the sample
// is taken only once the leader has committed its whole log, so that a
// fresh leader's no-op, and everything before it, is included; use it
// when no writes are running.
func (c *Cluster) WaitCaughtUp(d time.Duration, whole bool, nodes ...*Node) {
	c.t.Helper()
	var commit uint64
	testkit.Poll(c.t, d, "leader commit index", func() error {
		_, lst, err := c.Leader()
		if err != nil {
			return err
		}
		if whole && lst.CommitIndex < lst.LastLogIndex {
			return fmt.Errorf("leader %s: commit %d < last log %d", lst.NodeID, lst.CommitIndex, lst.LastLogIndex)
		}
		commit = lst.CommitIndex
		return nil
	})
	testkit.Poll(c.t, d, fmt.Sprintf("nodes applied index >= %d", commit), func() error {
		for _, n := range nodes {
			if err := c.CheckAlive(n); err != nil {
				return err
			}
			st, err := n.API.Status(context.Background())
			if err != nil {
				return fmt.Errorf("%s: %w", n.ID, err)
			}
			if st.AppliedIndex < commit {
				return fmt.Errorf("%s applied %d < leader commit %d", n.ID, st.AppliedIndex, commit)
			}
		}
		return nil
	})
}

// Others returns the nodes other than l.
func (c *Cluster) Others(l *Node) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

// CLI runs a CLI command against node n with the operator token.
func (c *Cluster) CLI(n *Node, args ...string) CLIResult {
	c.t.Helper()
	return c.RunOn(n, append([]string{"--addr", n.URL(), "--ca-cert", c.ca.file, "--token", c.Token}, args...)...)
}

// RunOn runs a CLI command where node n runs (inside its network
// namespace, if it has one), without adding an address or token.
func (c *Cluster) RunOn(n *Node, args ...string) CLIResult {
	c.t.Helper()
	argv := Command(n.Netns, append([]string{c.Bin}, args...)...)
	return RunCLI(c.t, argv[0], argv[1:]...)
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
