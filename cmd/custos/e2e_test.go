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
)

// TestE2EDevNode is the acceptance path of a new operator: start a dev
// node, check it with `custos status` and curl, create a tenant and list
// it, see the errors a client sees, dump the config, stop it with SIGTERM.
func TestE2EDevNode(t *testing.T) {
	bin := custosBinary(t)
	dir := t.TempDir()
	stdoutPath, stderrPath := filepath.Join(dir, "dev.stdout.log"), filepath.Join(dir, "dev.log")
	dumpOnFailure(t, stdoutPath, stderrPath)
	checkNoRaces(t, stderrPath)
	addr := freePort(t)

	p := startProc(t, "dev", bin, stdoutPath, stderrPath, "server", "--dev", "--dev-listen-address", addr)

	// Cold start: process start to the first healthy /v1/sys/health.
	hc := &http.Client{Timeout: 2 * time.Second}
	var coldStart time.Duration
	poll(t, 30*time.Second, "dev node healthy", func() error {
		if p.exited() {
			return permanent{fmt.Errorf("dev node exited:\n%s", tail(stderrPath, 30))}
		}
		resp, err := hc.Get("http://" + addr + "/v1/sys/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: HTTP %d", resp.StatusCode)
		}
		coldStart = time.Since(p.started)
		return nil
	})
	t.Logf("cold start (process start to first healthy /v1/sys/health): %v", coldStart.Round(time.Millisecond))

	// The banner names the API address and the token.
	var apiURL, token string
	poll(t, 30*time.Second, "dev banner", func() error {
		for _, line := range readLines(stdoutPath) {
			if v, ok := strings.CutPrefix(line, "  API:"); ok {
				apiURL = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "  Token:"); ok {
				token = strings.TrimSpace(v)
			}
		}
		if apiURL == "" || token == "" {
			return fmt.Errorf("no API/Token lines yet in stdout:\n%s", tail(stdoutPath, 20))
		}
		return nil
	})
	if apiURL != "http://"+addr {
		t.Errorf("banner API = %q, want http://%s", apiURL, addr)
	}
	cli := func(args ...string) cliResult {
		t.Helper()
		return runCLI(t, bin, append([]string{"--addr", apiURL, "--token", token}, args...)...)
	}

	// custos status.
	r := cli("status")
	if r.code != 0 {
		t.Fatalf("custos status: %v", r)
	}
	for _, want := range []string{"dev", "local", "Leader"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("custos status output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = cli("status", "--format", "json")
	var st client.Status
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
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
	if r.code != 0 || !strings.Contains(r.stdout, "acme") {
		t.Fatalf("tenant create acme: %v", r)
	}
	r = cli("tenant", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "acme") || !strings.Contains(r.stdout, "Acme Hotels") {
		t.Fatalf("tenant list does not show acme: %v", r)
	}
	r = cli("tenant", "get", "acme", "--format", "json")
	var ten client.Tenant
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ten) != nil {
		t.Fatalf("tenant get acme: %v", r)
	}
	if ten.ID != "acme" || ten.Region != "local" || ten.DisplayName != "Acme Hotels" {
		t.Errorf("tenant = %+v", ten)
	}
	// Its keys were created with it; rotate, wait for the rewrap, purge.
	if ten.KeyProvider != "age" {
		t.Errorf("tenant key_provider = %q, want age", ten.KeyProvider)
	}
	r = cli("keyring", "status", "acme")
	if r.code != 0 || !strings.Contains(r.stdout, "Current KEK") || !strings.Contains(r.stdout, "age") {
		t.Fatalf("keyring status acme: %v", r)
	}
	r = cli("keyring", "rotate", "acme", "--wait", "30s", "--format", "json")
	var ks struct {
		CurrentKEK uint32 `json:"current_kek"`
		Pending    int    `json:"rewrap_pending"`
		Rewrapping bool   `json:"rewrapping"`
		DataKeys   int    `json:"data_keys"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ks) != nil {
		t.Fatalf("keyring rotate acme: %v", r)
	}
	if ks.CurrentKEK != 2 || ks.Pending != 0 || ks.Rewrapping || ks.DataKeys != 1 {
		t.Errorf("after keyring rotate --wait: %+v", ks)
	}
	r = cli("keyring", "purge-cache", "acme")
	if r.code != 0 || !strings.Contains(r.stdout, "Purged acme") {
		t.Errorf("keyring purge-cache acme: %v", r)
	}
	r = cli("keyring", "rotate", "nobody")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: ") {
		t.Errorf("keyring rotate of an unknown tenant: %v", r)
	}

	// The same id again: a conflict, one line on stderr.
	r = cli("tenant", "create", "acme")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: ") || strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") != 0 {
		t.Errorf("tenant create acme again: want exit 1 and one error line, got %v", r)
	}

	// Another region: refused, one line on stderr naming the region.
	r = cli("tenant", "create", "x", "--region", "mars")
	if r.code != 1 {
		t.Errorf("tenant create --region mars: exit %d, want 1\n%v", r.code, r)
	}
	errLine := strings.TrimRight(r.stderr, "\n")
	if !strings.HasPrefix(errLine, "error: ") || strings.Contains(errLine, "\n") {
		t.Errorf("tenant create --region mars: stderr is not one `error:` line: %q", r.stderr)
	}
	if !strings.Contains(errLine, "region") || !strings.Contains(errLine, "mars") {
		t.Errorf("tenant create --region mars: error does not mention the region: %q", errLine)
	}
	if r.stdout != "" {
		t.Errorf("tenant create --region mars: unexpected stdout %q", r.stdout)
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
		var prob struct {
			Type   string `json:"type"`
			Title  string `json:"title"`
			Status int    `json:"status"`
		}
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
	r = runCLI(t, bin, "--addr", apiURL, "tenant", "list")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: ") {
		t.Errorf("tenant list without a token: want exit 1 and an error line, got %v", r)
	}

	// --config-dump redacts the dev token.
	r = runCLI(t, bin, "server", "--dev", "--config-dump", "--dev-token", "s3cret")
	if r.code != 0 {
		t.Errorf("server --config-dump: %v", r)
	}
	if strings.Contains(r.stdout, "s3cret") || strings.Contains(r.stderr, "s3cret") {
		t.Errorf("server --config-dump shows the dev token:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "dev_token") || !strings.Contains(r.stdout, `region = "local"`) {
		t.Errorf("server --config-dump output lacks dev_token or region:\n%s", r.stdout)
	}

	// SIGTERM: a graceful exit 0.
	if err := p.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopStart := time.Now()
	code, ok := p.wait(15 * time.Second)
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
	bin := custosBinary(t)
	start := time.Now()
	c := startCluster(t, bin)
	t.Logf("cluster of three formed in %v", time.Since(start).Round(time.Millisecond))

	// custos status shows a leader, the same on every node.
	var leaderID string
	poll(t, 30*time.Second, "status shows a leader on every node", func() error {
		leaderID = ""
		for _, n := range c.nodes {
			r := c.cli(n, "status", "--format", "json")
			if r.code != 0 {
				return fmt.Errorf("%s: status: %v", n.id, r)
			}
			var st client.Status
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
				return fmt.Errorf("%s: status output: %v", n.id, err)
			}
			if st.LeaderID == "" || (leaderID != "" && st.LeaderID != leaderID) {
				return fmt.Errorf("%s: leader %q (others say %q)", n.id, st.LeaderID, leaderID)
			}
			leaderID = st.LeaderID
			if len(st.Peers) != 3 {
				return fmt.Errorf("%s: %d peers", n.id, len(st.Peers))
			}
		}
		return nil
	})
	r := c.cli(c.nodes[0], "status")
	if r.code != 0 || !strings.Contains(r.stdout, leaderID) {
		t.Fatalf("custos status: %v", r)
	}
	t.Logf("leader: %s", leaderID)

	var followers []*clusterNode
	for _, n := range c.nodes {
		if n.id != leaderID {
			followers = append(followers, n)
		}
	}
	if len(followers) != 2 {
		t.Fatalf("leader %q is not one of the nodes", leaderID)
	}

	// Write through one follower, read (linearizable) through the other.
	r = c.cli(followers[0], "tenant", "create", "globex", "--region", "local", "--display-name", "Globex")
	if r.code != 0 {
		t.Fatalf("tenant create through follower %s: %v", followers[0].id, r)
	}
	r = c.cli(followers[1], "tenant", "get", "globex", "--format", "json")
	var ten client.Tenant
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &ten) != nil {
		t.Fatalf("tenant get through follower %s: %v", followers[1].id, r)
	}
	if ten.ID != "globex" || ten.DisplayName != "Globex" || ten.Region != "local" {
		t.Errorf("tenant read through %s = %+v", followers[1].id, ten)
	}
	r = c.cli(followers[1], "tenant", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "globex") {
		t.Errorf("tenant list through %s: %v", followers[1].id, r)
	}

	t.Logf("write through a follower, read through the other: done at %v", time.Since(start).Round(time.Millisecond))

	// Keys: rotate through a follower (the leader's janitor rewraps), then
	// purge through the other follower: every node drops its cached keys.
	r = c.cli(followers[0], "keyring", "rotate", "globex", "--wait", "30s")
	if r.code != 0 || !strings.Contains(r.stdout, "KEK 2") {
		t.Fatalf("keyring rotate through %s: %v", followers[0].id, r)
	}
	cached := func(n *clusterNode) (int, error) {
		r := c.cli(n, "status", "--format", "json")
		var st struct {
			Keyring struct {
				Sealed     bool `json:"sealed"`
				CachedKeys int  `json:"cached_keys"`
			} `json:"keyring"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
			return 0, fmt.Errorf("%s: status: %v", n.id, r)
		}
		if st.Keyring.Sealed {
			return 0, fmt.Errorf("%s is sealed", n.id)
		}
		return st.Keyring.CachedKeys, nil
	}
	if n, err := cached(followers[0]); err != nil || n == 0 {
		t.Fatalf("%s holds %d keys after rotating (%v)", followers[0].id, n, err)
	}
	r = c.cli(followers[1], "keyring", "purge-cache", "globex")
	if r.code != 0 {
		t.Fatalf("keyring purge-cache through %s: %v", followers[1].id, r)
	}
	poll(t, 20*time.Second, "every node dropped globex's keys", func() error {
		for _, n := range c.nodes {
			if k, err := cached(n); err != nil || k != 0 {
				return fmt.Errorf("%s holds %d keys (%v)", n.id, k, err)
			}
		}
		return nil
	})

	// Remove n3, twice; then two peers remain. Ask n1 or n2, whichever
	// is not n3.
	ask := c.nodes[0]
	for i := 0; i < 2; i++ {
		r = c.cli(ask, "operator", "raft", "remove-peer", "n3")
		if r.code != 0 {
			t.Fatalf("remove-peer n3 (#%d): %v", i+1, r)
		}
	}
	poll(t, 30*time.Second, "two peers after removing n3", func() error {
		for _, n := range c.nodes[:2] {
			r := c.cli(n, "operator", "raft", "list-peers", "--format", "json")
			if r.code != 0 {
				return fmt.Errorf("%s: list-peers: %v", n.id, r)
			}
			var out client.PeerList
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				return err
			}
			if len(out.Peers) != 2 {
				return fmt.Errorf("%s: %d peers: %s", n.id, len(out.Peers), r.stdout)
			}
			for _, p := range out.Peers {
				if p.ID == "n3" {
					return fmt.Errorf("%s: n3 still listed", n.id)
				}
			}
		}
		return nil
	})
	t.Logf("n3 removed at %v", time.Since(start).Round(time.Millisecond))
	// Every membership change is in the system chain.
	r = c.cli(c.nodes[0], "audit", "list", "--action", "cluster.", "--format", "json")
	for _, want := range []string{`"cluster.init"`, `"cluster.join"`, `"cluster.add_voter"`, `"cluster.remove_peer"`, `"node:n2"`, `"node:n3"`} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("audit list lacks %s: %v", want, r)
		}
	}
	// Stop the removed node; the two remaining still serve writes.
	c.kill(c.nodes[2])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	poll(t, 30*time.Second, "write after removal", func() error {
		r, err := c.nodes[0].api.Send(ctx, "POST", "/v1/tenants", map[string]string{"id": "initech", "display_name": "Initech", "region": "local"})
		if err != nil {
			return err
		}
		if r.Status != http.StatusCreated && r.Status != http.StatusConflict {
			return fmt.Errorf("HTTP %d: %s", r.Status, r.Body)
		}
		return nil
	})
	r = c.cli(c.nodes[1], "tenant", "get", "initech")
	if r.code != 0 {
		t.Errorf("tenant get initech through n2: %v", r)
	}
}
