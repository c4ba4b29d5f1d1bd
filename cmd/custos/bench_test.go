//go:build bench

// The performance scenarios of `make bench`: a 3-process cluster on
// loopback driven over HTTP by keep-alive clients, and the dev node's cold
// start. They print their figures; BENCHMARKS.md records them. They assert
// nothing about speed (this machine is shared and noisy).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit/e2e"
)

// benchName is a display name of 200 four-byte runes: the tenant record
// (the put) is then about 1 KiB of JSON.
var benchName = strings.Repeat("\U00020000", 200)

// benchConfig is appended to every bench node's configuration. The rate
// limits are off: the scenarios measure what a node can serve, and their
// clients (64 or 256 on one API key, all from 127.0.0.1) would otherwise
// be held to the per-source and per-principal defaults.
const benchConfig = "[log]\nlevel = \"warn\"\n\n[ratelimit]\nenabled = false\n"

type benchStats struct {
	LogBatches uint64 `json:"log_batches"`
	LogNanos   uint64 `json:"log_nanos"`
	FSMBatches uint64 `json:"fsm_batches"`
	FSMNanos   uint64 `json:"fsm_nanos"`
	Proposals  uint64 `json:"proposals"`
}

func TestBenchCluster(t *testing.T) {
	t.Setenv("CUSTOS_E2E_RACE", "0")
	bin := e2e.Binary(t)
	c := e2e.StartClusterWith(t, bin, benchConfig)
	leader := c.WaitLeader(30 * time.Second)
	floor := fsyncFloor(t, c.Dir)
	out := &strings.Builder{}
	fmt.Fprintf(out, "fsync floor (4 KiB write + fdatasync, same disk): %.3f ms\n\n", floor)
	fmt.Fprintf(out, "%-8s %-8s %-8s %10s %9s %9s %7s %10s %12s %12s\n", "op", "target", "clients", "txn/s", "p50 ms", "p99 ms", "errors", "txn/fsync", "log-write ms", "fsm-commit ms")
	scenarios := []struct {
		op, target string
		concs      []int
	}{
		{"create", "leader", []int{1, 16, 64, 256}},
		{"create", "all", []int{64, 256}},
		{"patch", "leader", []int{1, 16, 64, 256}},
	}
	for _, sc := range scenarios {
		for _, conc := range sc.concs {
			nodes := []*e2e.Node{leader}
			if sc.target == "all" {
				nodes = c.Nodes
			}
			r := runLoad(t, c, leader, nodes, sc.op, conc, 8*time.Second)
			fmt.Fprintf(out, "%-8s %-8s %-8d %10.0f %9.2f %9.2f %7d %10.1f %12.2f %12.2f\n", sc.op, sc.target, conc, r.rate, r.p50, r.p99, r.errors, r.perFsync, r.logMs, r.fsmMs)
		}
	}
	fmt.Print("\n" + out.String())
	t.Log("\n" + out.String())
}

type loadResult struct {
	rate, p50, p99, perFsync float64
	perTxn                   float64 // runOps: acknowledged operations per transaction proposed
	logFsyncs, stateCommits  float64 // runOps: leader log writes and state commits per second
	logMs, fsmMs             float64 // leader: mean time of one log write, one state commit
	errors                   int64
}

// runLoad runs conc clients for d (after a 1s warm-up), each over its own
// keep-alive connection, in a loop of op:
//
//	create: POST /v1/tenants — one transaction: two conditions, the ~1 KiB
//	        registry record, the tenant's own bucket, an audit chain append;
//	patch:  PATCH /v1/tenants/{own} with a new ~1 KiB display name — a
//	        linearizable read, then one transaction: a version condition,
//	        one ~1 KiB put, one audit chain append (the issue's "1 KiB put +
//	        chain append").
func runLoad(t *testing.T, c *e2e.Cluster, leader *e2e.Node, nodes []*e2e.Node, op string, conc int, d time.Duration) loadResult {
	t.Helper()
	runID := time.Now().UnixNano() % 1e9
	var seq atomic.Int64
	body := func(id string) string { return fmt.Sprintf(`{"id":%q,"display_name":%q}`, id, benchName) }
	names := [2]string{benchName, strings.Repeat("\U00020001", 200)}
	send := func(hc *http.Client, method, url, body string) bool {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		drainBody(resp)
		return resp.StatusCode/100 == 2
	}
	return runOps(t, c, leader, nodes, conc, d, func(w int, hc *http.Client, n *e2e.Node) (func() bool, error) {
		if op != "patch" {
			return func() bool {
				return send(hc, "POST", n.URL()+"/v1/tenants", body(fmt.Sprintf("b%d-%d-%d", runID, w, seq.Add(1))))
			}, nil
		}
		own := fmt.Sprintf("p%d-%d", runID, w)
		if !send(hc, "POST", n.URL()+"/v1/tenants", body(own)) {
			return nil, fmt.Errorf("create %s for patching", own)
		}
		i := 0
		return func() bool {
			i++
			return send(hc, "PATCH", n.URL()+"/v1/tenants/"+own, fmt.Sprintf(`{"display_name":%q}`, names[i%2]))
		}, nil
	})
}

// drainBody reads and closes a response so its connection is reused.
func drainBody(resp *http.Response) {
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
}

// fsyncFloor measures the median time of a 4 KiB write + fdatasync in dir.
func fsyncFloor(t *testing.T, dir string) float64 {
	f, err := os.Create(filepath.Join(dir, "fsync-floor"))
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var ds []time.Duration
	for i := 0; i < 500; i++ {
		t0 := time.Now()
		if _, err := f.WriteAt(buf, int64(i%64)*4096); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

// TestBenchDevColdStart: process start of `custos server --dev` to the first
// healthy /v1/sys/health, over several runs.
func TestBenchDevColdStart(t *testing.T) {
	t.Setenv("CUSTOS_E2E_RACE", "0")
	bin := e2e.Binary(t)
	var ds []time.Duration
	hc := &http.Client{Timeout: time.Second}
	for i := 0; i < 7; i++ {
		addr := e2e.FreePort(t)
		dir := t.TempDir()
		start := time.Now()
		p := e2e.StartProc(t, "dev", bin, filepath.Join(dir, "out"), filepath.Join(dir, "err"), "server", "--dev", "--dev-listen-address", addr, "--log-level", "warn")
		for {
			resp, err := hc.Get("http://" + addr + "/v1/sys/health")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Since(start) > 20*time.Second {
				t.Fatal("dev node not healthy in 20s")
			}
			time.Sleep(2 * time.Millisecond)
		}
		ds = append(ds, time.Since(start))
		p.Kill()
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	msg := fmt.Sprintf("dev node cold start to healthy: median %v, min %v, max %v (%d runs)\n", ds[len(ds)/2].Round(time.Millisecond), ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds))
	fmt.Print(msg)
	t.Log(msg)
}

// ---- issue 5: tenant data ----

// TestBenchRecords runs issue 5's scenarios on a 3-process cluster over
// HTTP, as a tenant's application: with a tenant API key (read, write),
// keep-alive clients, one connection each.
//
//   - record-create: POST .../collections/guests/records — a collection of
//     5 fields (3 pii, 1 sensitive, 1 internal), 2 of them blind-indexed,
//     about 1 KiB of field values per record: validated, each field sealed
//     under the tenant's key, 2 index entries, audited in the same
//     transaction.
//   - record-read: GET .../records/{id} of records created above (pii
//     fields, so every read is audited before it is answered; entries of
//     concurrent reads share transactions).
//   - blob-upload: 8 blobs of 64 MB (POST /v1/tenants/{t}/blobs, raw
//     audio/wav body), one after another, then 4 at a time.
//
// Each prints one line per run:
//
//	issue5 op=<op> target=<leader|all> clients=<n> ops/s=<x> p50_ms=<x> p99_ms=<x> errors=<n> ops/txn=<x> txn/fsync=<x> log_writes/s=<x> state_commits/s=<x>
//	issue5 op=blob-upload clients=<n> blobs=<n> MB=<x> s=<x> MB/s=<x> errors=<n>
//
// ops/txn: acknowledged operations per transaction proposed in the
// cluster (for reads: audit entries per batched transaction); txn/fsync:
// transactions per leader log write (a bbolt commit: two fdatasyncs);
// log_writes/s and state_commits/s: the leader's raft log writes and state
// file commits per second (each fsync'd; a linearizable read forces a
// state commit when the state file is behind what was applied).
func TestBenchRecords(t *testing.T) {
	t.Setenv("CUSTOS_E2E_RACE", "0")
	bin := e2e.Binary(t)
	c := e2e.StartClusterWith(t, bin, benchConfig)
	leader := c.WaitLeader(30 * time.Second)
	token := benchTenant(t, c, leader)
	out := &strings.Builder{}
	line := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		t.Logf(format, args...)
	}
	var (
		idsMu sync.Mutex
		ids   []string
	)
	runID := time.Now().UnixNano() % 1e9
	var seq atomic.Int64
	create := func(hc *http.Client, n *e2e.Node) bool {
		i := seq.Add(1)
		id := fmt.Sprintf("g%d-%d", runID, i)
		req, _ := http.NewRequest("POST", n.URL()+"/v1/tenants/bench/collections/guests/records", strings.NewReader(benchRecord(id, i)))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		drainBody(resp)
		if resp.StatusCode != http.StatusCreated {
			return false
		}
		idsMu.Lock()
		ids = append(ids, id)
		idsMu.Unlock()
		return true
	}
	read := func(hc *http.Client, n *e2e.Node) bool {
		idsMu.Lock()
		id := ids[rand.IntN(len(ids))]
		idsMu.Unlock()
		req, _ := http.NewRequest("GET", n.URL()+"/v1/tenants/bench/collections/guests/records/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		drainBody(resp)
		return resp.StatusCode == http.StatusOK
	}
	scenarios := []struct {
		op, target string
		conc       int
		do         func(*http.Client, *e2e.Node) bool
	}{
		{"record-create", "leader", 64, create},
		{"record-create", "all", 64, create},
		{"record-read", "leader", 64, read},
		{"record-read", "all", 64, read},
	}
	for _, sc := range scenarios {
		nodes := []*e2e.Node{leader}
		if sc.target == "all" {
			nodes = c.Nodes
		}
		r := runOps(t, c, leader, nodes, sc.conc, 8*time.Second, func(_ int, hc *http.Client, n *e2e.Node) (func() bool, error) {
			return func() bool { return sc.do(hc, n) }, nil
		})
		line("issue5 op=%s target=%s clients=%d ops/s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d ops/txn=%.1f txn/fsync=%.1f log_writes/s=%.0f state_commits/s=%.0f",
			sc.op, sc.target, sc.conc, r.rate, r.p50, r.p99, r.errors, r.perTxn, r.perFsync, r.logFsyncs, r.stateCommits)
	}
	fmt.Print("\n" + out.String())
}

// TestBenchBlobs is the blob-upload scenario of issue 5 on a cluster of
// its own (so that the records scenarios' state does not weigh on it).
func TestBenchBlobs(t *testing.T) {
	t.Setenv("CUSTOS_E2E_RACE", "0")
	bin := e2e.Binary(t)
	c := e2e.StartClusterWith(t, bin, benchConfig)
	leader := c.WaitLeader(30 * time.Second)
	token := benchTenant(t, c, leader)
	benchBlobUploads(t, c, leader, token, func(format string, args ...any) {
		t.Logf(format, args...)
		fmt.Printf(format+"\n", args...)
	})
}

// benchTenant creates tenant "bench", its "guests" collection (by the
// tenant's Owner key: the operator defines no schema) and an API key
// (read, write), and returns the key's token.
func benchTenant(t *testing.T, c *e2e.Cluster, leader *e2e.Node) string {
	t.Helper()
	ctx := context.Background()
	must := func(method, path string, body any, want int) []byte {
		api := leader.API
		if strings.HasPrefix(path, "/v1/tenants/bench/collections") {
			api = c.TenantAPI(leader, "bench")
		}
		r, err := api.Send(ctx, method, path, body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if r.Status != want {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
		return r.Body
	}
	must("POST", "/v1/tenants", map[string]string{"id": "bench", "display_name": "Bench"}, http.StatusCreated)
	must("PUT", "/v1/tenants/bench/collections/guests", json.RawMessage(`{"fields":[
		{"name":"email","type":"string","required":true,"classification":"pii","index":true},
		{"name":"phone","type":"string","classification":"pii","index":true},
		{"name":"name","type":"string","classification":"pii"},
		{"name":"notes","type":"string","classification":"sensitive"},
		{"name":"visits","type":"number","classification":"internal"}]}`), http.StatusCreated)
	var key struct {
		Token string `json:"token"`
	}
	b := must("POST", "/v1/tenants/bench/apikeys", map[string]any{"name": "bench", "permissions": []string{"read", "write"}}, http.StatusCreated)
	if err := json.Unmarshal(b, &key); err != nil || key.Token == "" {
		t.Fatalf("API key: %v %s", err, b)
	}
	return key.Token
}

// benchNotes makes the record about 1 KiB of field values.
var benchNotes = strings.Repeat("Prefers a quiet room away from the lift; allergic to feathers. ", 14)

// benchRecord is the body of a new record: 5 fields, about 1 KiB.
func benchRecord(id string, i int64) string {
	b, _ := json.Marshal(map[string]any{"id": id, "fields": map[string]any{
		"email":  fmt.Sprintf("guest.%s@example.com", id),
		"phone":  fmt.Sprintf("+44 20 7946 %07d", i),
		"name":   fmt.Sprintf("Guest Number %d", i),
		"notes":  benchNotes,
		"visits": i % 40,
	}})
	return string(b)
}

// runOps runs conc clients for d (after a 1s warm-up), each over its own
// keep-alive connection to nodes[w%len(nodes)], in a loop of do (true: an
// acknowledged operation).
// worker prepares one client (on node n, with its own connection) and
// returns its operation, run until the scenario ends.
type worker func(w int, hc *http.Client, n *e2e.Node) (op func() bool, err error)

func runOps(t *testing.T, c *e2e.Cluster, leader *e2e.Node, nodes []*e2e.Node, conc int, d time.Duration, newWorker worker) loadResult {
	t.Helper()
	statsOf := func(n *e2e.Node) benchStats {
		var st struct {
			Stats benchStats `json:"stats"`
		}
		if err := n.API.Do(context.Background(), "GET", "/v1/sys/status", nil, &st); err != nil {
			t.Fatalf("status: %v", err)
		}
		return st.Stats
	}
	proposals := func() (n uint64) {
		for _, node := range c.Nodes {
			n += statsOf(node).Proposals
		}
		return n
	}
	var (
		mu      sync.Mutex
		lats    []time.Duration
		errs    atomic.Int64
		acked   atomic.Int64
		measure atomic.Bool
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	for w := 0; w < conc; w++ {
		wg.Go(func() {
			n := nodes[w%len(nodes)]
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1, TLSClientConfig: c.TLSConfig()}}
			defer hc.CloseIdleConnections()
			do, err := newWorker(w, hc, n)
			if err != nil {
				t.Errorf("client %d: %v", w, err)
				return
			}
			var mine []time.Duration
			for !stop.Load() {
				t0 := time.Now()
				ok := do()
				lat := time.Since(t0)
				if !measure.Load() {
					continue
				}
				if !ok {
					errs.Add(1)
					continue
				}
				acked.Add(1)
				mine = append(mine, lat)
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	time.Sleep(time.Second) // warm-up: connections, key caches, batches
	before, txnsBefore := statsOf(leader), proposals()
	measure.Store(true)
	start := time.Now()
	time.Sleep(d)
	measure.Store(false)
	elapsed := time.Since(start)
	after, txnsAfter := statsOf(leader), proposals()
	stop.Store(true)
	wg.Wait()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	r := loadResult{errors: errs.Load(), rate: float64(acked.Load()) / elapsed.Seconds()}
	if len(lats) > 0 {
		r.p50 = float64(lats[len(lats)/2].Microseconds()) / 1000
		r.p99 = float64(lats[len(lats)*99/100].Microseconds()) / 1000
	}
	if fs := after.LogBatches - before.LogBatches; fs > 0 {
		r.perFsync = float64(txnsAfter-txnsBefore) / float64(fs) // transactions per leader log fsync
		r.logMs = float64(after.LogNanos-before.LogNanos) / float64(fs) / 1e6
	}
	if fb := after.FSMBatches - before.FSMBatches; fb > 0 {
		r.fsmMs = float64(after.FSMNanos-before.FSMNanos) / float64(fb) / 1e6
	}
	if tx := txnsAfter - txnsBefore; tx > 0 {
		r.perTxn = float64(acked.Load()) / float64(tx)
	}
	r.logFsyncs = float64(after.LogBatches-before.LogBatches) / elapsed.Seconds()
	r.stateCommits = float64(after.FSMBatches-before.FSMBatches) / elapsed.Seconds()
	return r
}

// benchBlobUploads uploads 8 blobs of 64 MB to the leader, one after
// another and then 4 at a time, and reports MB/s (10^6 bytes).
func benchBlobUploads(t *testing.T, c *e2e.Cluster, leader *e2e.Node, token string, line func(string, ...any)) {
	t.Helper()
	const size, count = 64 << 20, 8
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(i*7 + i>>9) // not all zeros: a compressing layer must not help
	}
	upload := func(hc *http.Client) (int, error) {
		req, _ := http.NewRequest("POST", leader.URL()+"/v1/tenants/bench/blobs?subject=s1", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "audio/wav")
		req.ContentLength = size
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		drainBody(resp)
		return resp.StatusCode, nil
	}
	// A first upload, untimed: whether the route exists at all.
	probe := c.HTTPClient(5 * time.Minute)
	if code, err := upload(probe); err == nil && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		line("issue5 op=blob-upload skipped: POST /v1/tenants/{t}/blobs answered %d (no blob API in this build)", code)
		return
	} else if err != nil || code != http.StatusCreated {
		t.Logf("blob upload (untimed first): %d %v", code, err)
	}
	for _, conc := range []int{1, 4} {
		var errs atomic.Int64
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				hc := &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1, TLSClientConfig: c.TLSConfig()}}
				defer hc.CloseIdleConnections()
				for next.Add(1) <= count {
					if code, err := upload(hc); err != nil || code != http.StatusCreated {
						errs.Add(1)
						t.Logf("blob upload: %d %v", code, err)
					}
				}
			})
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		mb := float64(int64(count-errs.Load())*size) / 1e6
		line("issue5 op=blob-upload clients=%d blobs=%d MB=%.0f s=%.2f MB/s=%.1f errors=%d", conc, count, mb, el, mb/el, errs.Load())
	}
}
