package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2EDevNode is the acceptance path of a new operator: start a dev
// node, check it with `custos status` and curl, create a tenant and list
// it, see the errors a client sees, dump the config, stop it with SIGTERM.
func TestE2EDevNode(t *testing.T) {
	bin := e2e.Binary(t)
	dir := t.TempDir()
	stdoutPath, stderrPath := filepath.Join(dir, "dev.stdout.log"), filepath.Join(dir, "dev.log")
	e2e.DumpOnFailure(t, stdoutPath, stderrPath)
	e2e.CheckNoRaces(t, stderrPath)
	addr := e2e.FreePort(t)

	p := e2e.StartProc(t, "dev", bin, stdoutPath, stderrPath, "server", "--dev", "--dev-listen-address", addr)

	// Cold start: process start to the first healthy /v1/sys/health.
	hc := &http.Client{Timeout: 2 * time.Second}
	var coldStart time.Duration
	testkit.Poll(t, 30*time.Second, "dev node healthy", func() error {
		if p.Exited() {
			return testkit.Permanent(fmt.Errorf("dev node exited:\n%s", e2e.Tail(stderrPath, 30)))
		}
		resp, err := hc.Get("http://" + addr + "/v1/sys/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: HTTP %d", resp.StatusCode)
		}
		coldStart = time.Since(p.Started)
		return nil
	})
	t.Logf("cold start (process start to first healthy /v1/sys/health): %v", coldStart.Round(time.Millisecond))

	// The banner names the API address and the token.
	var apiURL, token string
	testkit.Poll(t, 30*time.Second, "dev banner", func() error {
		for _, line := range e2e.ReadLines(stdoutPath) {
			if v, ok := strings.CutPrefix(line, "  API:"); ok {
				apiURL = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "  Token:"); ok {
				token = strings.TrimSpace(v)
			}
		}
		if apiURL == "" || token == "" {
			return fmt.Errorf("no API/Token lines yet in stdout:\n%s", e2e.Tail(stdoutPath, 20))
		}
		return nil
	})
	if apiURL != "http://"+addr {
		t.Errorf("banner API = %q, want http://%s", apiURL, addr)
	}
	cli := func(args ...string) e2e.CLIResult {
		t.Helper()
		return e2e.RunCLI(t, bin, append([]string{"--addr", apiURL, "--token", token}, args...)...)
	}

	// custos status.
	r := cli("status")
	if r.Code != 0 {
		t.Fatalf("custos status: %v", r)
	}
	for _, want := range []string{"dev", "local", "Leader"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("custos status output lacks %q:\n%s", want, r.Stdout)
		}
	}
	r = cli("status", "--format", "json")
	var st client.Status
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil {
		t.Fatalf("custos status --format json: %v", r)
	}
	if st.NodeID != "dev" || st.Region != "local" || st.State != "Leader" || st.LeaderID != "dev" {
		t.Errorf("status = %+v, want node dev, region local, leader dev", st)
	}

	// curl /v1/sys/health, without a token.
	resp, err := hc.Get(apiURL + "/v1/sys/health")
	if err != nil {
		t.Fatalf("GET /v1/sys/health: %v", err)
	}
	var h client.Health
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("GET /v1/sys/health: HTTP %d, decode: %v", resp.StatusCode, err)
	}
	if h.Status != "ok" || h.Role != "leader" || h.NodeID != "dev" || h.LeaderID != "dev" {
		t.Errorf("health = %+v, want ok, leader, dev", h)
	}
	if got := resp.Header.Get("X-Custos-Role"); got != "leader" {
		t.Errorf("X-Custos-Role = %q, want leader", got)
	}

	// A tenant in the cluster's region, then the list.
	r = cli("tenant", "create", "acme", "--region", "local", "--display-name", "Acme Hotels")
	if r.Code != 0 || !strings.Contains(r.Stdout, "acme") {
		t.Fatalf("tenant create acme: %v", r)
	}
	r = cli("tenant", "list")
	if r.Code != 0 || !strings.Contains(r.Stdout, "acme") || !strings.Contains(r.Stdout, "Acme Hotels") {
		t.Fatalf("tenant list does not show acme: %v", r)
	}
	r = cli("tenant", "get", "acme", "--format", "json")
	var ten client.Tenant
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &ten) != nil {
		t.Fatalf("tenant get acme: %v", r)
	}
	if ten.ID != "acme" || ten.Region != "local" || ten.DisplayName != "Acme Hotels" {
		t.Errorf("tenant = %+v", ten)
	}
	// An API key bound to a role (custos apikey create --role): it reads
	// what its role reads and is refused what the role does not hold.
	r = cli("apikey", "create", "acme", "--name", "front desk", "--role", "foh", "--format", "json")
	var desk client.APIKey
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &desk) != nil || desk.Role != "foh" || desk.Permissions != nil || desk.Token == "" {
		t.Fatalf("apikey create --role foh: %v", r)
	}
	if r = cli("apikey", "list", "acme"); r.Code != 0 || !strings.Contains(r.Stdout, "role foh") {
		t.Errorf("apikey list does not show the role: %v", r)
	}
	if r = cli("apikey", "create", "acme", "--name", "x", "--role", "operator"); r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "role") {
		t.Errorf("apikey create --role operator: %v", r)
	}
	// A key confined to an attribute scope (custos apikey create --scope):
	// several values, by repeating the flag or with commas.
	r = cli("apikey", "create", "acme", "--name", "villa a", "--role", "concierge", "--scope", "property=villa-c", "--scope", "property=villa-a", "--format", "json")
	var villa client.APIKey
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &villa) != nil || strings.Join(villa.Scopes["property"], ",") != "villa-a,villa-c" || villa.Role != "concierge" {
		t.Fatalf("apikey create --scope: %v", r)
	}
	if r = cli("apikey", "list", "acme"); r.Code != 0 || !strings.Contains(r.Stdout, "role concierge property=villa-a,villa-c") {
		t.Errorf("apikey list does not show the scope: %v", r)
	}
	for _, bad := range [][]string{{"--role", "concierge", "--scope", "property"}, {"--permissions", "read", "--scope", "property=villa-a"}} {
		if r = cli(append([]string{"apikey", "create", "acme", "--name", "x"}, bad...)...); r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "scope") {
			t.Errorf("apikey create %v: %v", bad, r)
		}
	}
	deskCLI := func(args ...string) e2e.CLIResult {
		return e2e.RunCLI(t, bin, append([]string{"--addr", apiURL, "--token", desk.Token}, args...)...)
	}
	if r = deskCLI("collection", "list", "acme"); r.Code != 0 {
		t.Errorf("the foh key lists collections: %v", r)
	}
	if r = deskCLI("apikey", "list", "acme"); r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "403") && !strings.Contains(strings.ToLower(r.Stdout+r.Stderr), "forbidden") {
		t.Errorf("the foh key lists API keys: %v", r)
	}
	// Its keys were created with it; rotate, wait for the rewrap, purge.
	if ten.KeyProvider != "age" {
		t.Errorf("tenant key_provider = %q, want age", ten.KeyProvider)
	}
	r = cli("keyring", "status", "acme")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Current KEK") || !strings.Contains(r.Stdout, "age") {
		t.Fatalf("keyring status acme: %v", r)
	}
	r = cli("keyring", "rotate", "acme", "--wait", "30s", "--format", "json")
	var ks struct {
		CurrentKEK uint32 `json:"current_kek"`
		Pending    int    `json:"rewrap_pending"`
		Rewrapping bool   `json:"rewrapping"`
		DataKeys   int    `json:"data_keys"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &ks) != nil {
		t.Fatalf("keyring rotate acme: %v", r)
	}
	if ks.CurrentKEK != 2 || ks.Pending != 0 || ks.Rewrapping || ks.DataKeys != 1 {
		t.Errorf("after keyring rotate --wait: %+v", ks)
	}
	r = cli("keyring", "purge-cache", "acme")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Purged acme") {
		t.Errorf("keyring purge-cache acme: %v", r)
	}
	r = cli("keyring", "rotate", "nobody")
	if r.Code != 1 || !strings.HasPrefix(r.Stderr, "error: ") {
		t.Errorf("keyring rotate of an unknown tenant: %v", r)
	}

	// The same id again: a conflict, one line on stderr.
	r = cli("tenant", "create", "acme")
	if r.Code != 1 || !strings.HasPrefix(r.Stderr, "error: ") || strings.Count(strings.TrimRight(r.Stderr, "\n"), "\n") != 0 {
		t.Errorf("tenant create acme again: want exit 1 and one error line, got %v", r)
	}

	// Another region: refused, one line on stderr naming the region.
	r = cli("tenant", "create", "x", "--region", "mars")
	if r.Code != 1 {
		t.Errorf("tenant create --region mars: exit %d, want 1\n%v", r.Code, r)
	}
	errLine := strings.TrimRight(r.Stderr, "\n")
	if !strings.HasPrefix(errLine, "error: ") || strings.Contains(errLine, "\n") {
		t.Errorf("tenant create --region mars: stderr is not one `error:` line: %q", r.Stderr)
	}
	if !strings.Contains(errLine, "region") || !strings.Contains(errLine, "mars") {
		t.Errorf("tenant create --region mars: error does not mention the region: %q", errLine)
	}
	if r.Stdout != "" {
		t.Errorf("tenant create --region mars: unexpected stdout %q", r.Stdout)
	}

	// No token, and a wrong token: 401 problem+json.
	for _, tok := range []string{"", "wrong-token"} {
		req, _ := http.NewRequest("GET", apiURL+"/v1/tenants", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET /v1/tenants: %v", err)
		}
		var prob client.Problem
		err = json.NewDecoder(resp.Body).Decode(&prob)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: HTTP %d, want 401", tok, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			t.Errorf("token %q: Content-Type %q, want application/problem+json", tok, ct)
		}
		if err != nil || prob.Status != http.StatusUnauthorized || prob.Title == "" {
			t.Errorf("token %q: problem body %+v (decode: %v)", tok, prob, err)
		}
	}
	r = e2e.RunCLI(t, bin, "--addr", apiURL, "tenant", "list")
	if r.Code != 1 || !strings.HasPrefix(r.Stderr, "error: ") {
		t.Errorf("tenant list without a token: want exit 1 and an error line, got %v", r)
	}

	// --config-dump redacts the dev token.
	r = e2e.RunCLI(t, bin, "server", "--dev", "--config-dump", "--dev-token", "s3cret")
	if r.Code != 0 {
		t.Errorf("server --config-dump: %v", r)
	}
	if strings.Contains(r.Stdout, "s3cret") || strings.Contains(r.Stderr, "s3cret") {
		t.Errorf("server --config-dump shows the dev token:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stdout, "dev_token") || !strings.Contains(r.Stdout, `region = "local"`) {
		t.Errorf("server --config-dump output lacks dev_token or region:\n%s", r.Stdout)
	}

	// SIGTERM: a graceful exit 0.
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopStart := time.Now()
	code, ok := p.Wait(15 * time.Second)
	if !ok {
		t.Fatalf("dev node did not exit within 15s of SIGTERM")
	}
	if code != 0 {
		t.Errorf("dev node exited %d after SIGTERM, want 0", code)
	}
	t.Logf("graceful stop after SIGTERM: %v", time.Since(stopStart).Round(time.Millisecond))
}

// TestE2EThreeNodeCluster forms a cluster with the CLI the way the runbook
// does (init, start, join, start), writes through one follower, reads
// through the other, and removes a peer (twice: removal is idempotent).
func TestE2EThreeNodeCluster(t *testing.T) {
	bin := e2e.Binary(t)
	start := time.Now()
	c := e2e.StartCluster(t, bin)
	t.Logf("cluster of three formed in %v", time.Since(start).Round(time.Millisecond))

	// custos status shows a leader, the same on every node.
	var leaderID string
	testkit.Poll(t, 30*time.Second, "status shows a leader on every node", func() error {
		leaderID = ""
		for _, n := range c.Nodes {
			r := c.CLI(n, "status", "--format", "json")
			if r.Code != 0 {
				return fmt.Errorf("%s: status: %v", n.ID, r)
			}
			var st client.Status
			if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
				return fmt.Errorf("%s: status output: %v", n.ID, err)
			}
			if st.LeaderID == "" || (leaderID != "" && st.LeaderID != leaderID) {
				return fmt.Errorf("%s: leader %q (others say %q)", n.ID, st.LeaderID, leaderID)
			}
			leaderID = st.LeaderID
			if len(st.Peers) != 3 {
				return fmt.Errorf("%s: %d peers", n.ID, len(st.Peers))
			}
		}
		return nil
	})
	r := c.CLI(c.Nodes[0], "status")
	if r.Code != 0 || !strings.Contains(r.Stdout, leaderID) {
		t.Fatalf("custos status: %v", r)
	}
	t.Logf("leader: %s", leaderID)

	var followers []*e2e.Node
	for _, n := range c.Nodes {
		if n.ID != leaderID {
			followers = append(followers, n)
		}
	}
	if len(followers) != 2 {
		t.Fatalf("leader %q is not one of the nodes", leaderID)
	}

	// Write through one follower, read (linearizable) through the other.
	r = c.CLI(followers[0], "tenant", "create", "globex", "--region", "local", "--display-name", "Globex")
	if r.Code != 0 {
		t.Fatalf("tenant create through follower %s: %v", followers[0].ID, r)
	}
	r = c.CLI(followers[1], "tenant", "get", "globex", "--format", "json")
	var ten client.Tenant
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &ten) != nil {
		t.Fatalf("tenant get through follower %s: %v", followers[1].ID, r)
	}
	if ten.ID != "globex" || ten.DisplayName != "Globex" || ten.Region != "local" {
		t.Errorf("tenant read through %s = %+v", followers[1].ID, ten)
	}
	r = c.CLI(followers[1], "tenant", "list")
	if r.Code != 0 || !strings.Contains(r.Stdout, "globex") {
		t.Errorf("tenant list through %s: %v", followers[1].ID, r)
	}

	t.Logf("write through a follower, read through the other: done at %v", time.Since(start).Round(time.Millisecond))

	// Keys: rotate through a follower (the leader's janitor rewraps), then
	// purge through the other follower: every node drops its cached keys.
	r = c.CLI(followers[0], "keyring", "rotate", "globex", "--wait", "30s")
	if r.Code != 0 || !strings.Contains(r.Stdout, "KEK 2") {
		t.Fatalf("keyring rotate through %s: %v", followers[0].ID, r)
	}
	cached := func(n *e2e.Node) (int, error) {
		r := c.CLI(n, "status", "--format", "json")
		var st struct {
			Keyring struct {
				Sealed     bool `json:"sealed"`
				CachedKeys int  `json:"cached_keys"`
			} `json:"keyring"`
		}
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil {
			return 0, fmt.Errorf("%s: status: %v", n.ID, r)
		}
		if st.Keyring.Sealed {
			return 0, fmt.Errorf("%s is sealed", n.ID)
		}
		return st.Keyring.CachedKeys, nil
	}
	if n, err := cached(followers[0]); err != nil || n == 0 {
		t.Fatalf("%s holds %d keys after rotating (%v)", followers[0].ID, n, err)
	}
	r = c.CLI(followers[1], "keyring", "purge-cache", "globex")
	if r.Code != 0 {
		t.Fatalf("keyring purge-cache through %s: %v", followers[1].ID, r)
	}
	testkit.Poll(t, 20*time.Second, "every node dropped globex's keys", func() error {
		for _, n := range c.Nodes {
			if k, err := cached(n); err != nil || k != 0 {
				return fmt.Errorf("%s holds %d keys (%v)", n.ID, k, err)
			}
		}
		return nil
	})

	// Remove n3, twice; then two peers remain. Ask n1 or n2, whichever
	// is not n3.
	ask := c.Nodes[0]
	for i := 0; i < 2; i++ {
		r = c.CLI(ask, "operator", "raft", "remove-peer", "n3")
		if r.Code != 0 {
			t.Fatalf("remove-peer n3 (#%d): %v", i+1, r)
		}
	}
	testkit.Poll(t, 30*time.Second, "two peers after removing n3", func() error {
		for _, n := range c.Nodes[:2] {
			r := c.CLI(n, "operator", "raft", "list-peers", "--format", "json")
			if r.Code != 0 {
				return fmt.Errorf("%s: list-peers: %v", n.ID, r)
			}
			var out client.PeerList
			if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
				return err
			}
			if len(out.Peers) != 2 {
				return fmt.Errorf("%s: %d peers: %s", n.ID, len(out.Peers), r.Stdout)
			}
			for _, p := range out.Peers {
				if p.ID == "n3" {
					return fmt.Errorf("%s: n3 still listed", n.ID)
				}
			}
		}
		return nil
	})
	t.Logf("n3 removed at %v", time.Since(start).Round(time.Millisecond))
	// Every membership change is in the system chain.
	r = c.CLI(c.Nodes[0], "audit", "list", "--action", "cluster.", "--format", "json")
	for _, want := range []string{`"cluster.init"`, `"cluster.join"`, `"cluster.add_voter"`, `"cluster.remove_peer"`, `"node:n2"`, `"node:n3"`} {
		if r.Code != 0 || !strings.Contains(r.Stdout, want) {
			t.Fatalf("audit list lacks %s: %v", want, r)
		}
	}
	// Stop the removed node; the two remaining still serve writes.
	c.Kill(c.Nodes[2])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testkit.Poll(t, 30*time.Second, "write after removal", func() error {
		r, err := c.Nodes[0].API.Send(ctx, "POST", "/v1/tenants", map[string]string{"id": "initech", "display_name": "Initech", "region": "local"})
		if err != nil {
			return err
		}
		if r.Status != http.StatusCreated && r.Status != http.StatusConflict {
			return fmt.Errorf("HTTP %d: %s", r.Status, r.Body)
		}
		return nil
	})
	r = c.CLI(c.Nodes[1], "tenant", "get", "initech")
	if r.Code != 0 {
		t.Errorf("tenant get initech through n2: %v", r)
	}
}
