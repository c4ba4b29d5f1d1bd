//go:build bench

// The performance scenarios of `make bench`: a 3-process cluster on
// loopback driven over HTTP by keep-alive clients, and the dev node's cold
// start. They print their figures; BENCHMARKS.md records them. They assert
// nothing about speed (this machine is shared and noisy).
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchName is a display name of 200 four-byte runes: the tenant record
// (the put) is then about 1 KiB of JSON.
var benchName = strings.Repeat("\U00020000", 200)

type benchStats struct {
	LogBatches uint64 `json:"log_batches"`
	LogNanos   uint64 `json:"log_nanos"`
	FSMBatches uint64 `json:"fsm_batches"`
	FSMNanos   uint64 `json:"fsm_nanos"`
	Proposals  uint64 `json:"proposals"`
}

func TestBenchCluster(t *testing.T) {
	t.Setenv("CUSTOS_E2E_RACE", "0")
	bin := custosBinary(t)
	c := startClusterWith(t, bin, "[log]\nlevel = \"warn\"\n")
	leader := c.waitLeader(30 * time.Second)
	floor := fsyncFloor(t, c.dir)
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
			nodes := []*clusterNode{leader}
			if sc.target == "all" {
				nodes = c.nodes
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
func runLoad(t *testing.T, c *cluster, leader *clusterNode, nodes []*clusterNode, op string, conc int, d time.Duration) loadResult {
	t.Helper()
	statsOf := func() benchStats {
		var st struct {
			Stats benchStats `json:"stats"`
		}
		if err := leader.api.getJSON("/v1/sys/status", &st); err != nil {
			t.Fatalf("status: %v", err)
		}
		return st.Stats
	}
	var (
		mu      sync.Mutex
		lats    []time.Duration
		errs    atomic.Int64
		acked   atomic.Int64
		measure atomic.Bool
		stop    atomic.Bool
		wg      sync.WaitGroup
		seq     atomic.Int64
		runID   = time.Now().UnixNano() % 1e9
		body    = func(id string) string { return fmt.Sprintf(`{"id":%q,"display_name":%q}`, id, benchName) }
		names   = [2]string{benchName, strings.Repeat("\U00020001", 200)}
	)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			n := nodes[w%len(nodes)]
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer hc.CloseIdleConnections()
			var mine []time.Duration
			own := fmt.Sprintf("p%d-%d", runID, w)
			if op == "patch" {
				req, _ := http.NewRequest("POST", "http://"+n.apiAddr+"/v1/tenants", strings.NewReader(body(own)))
				req.Header.Set("Authorization", "Bearer "+c.token)
				req.Header.Set("Content-Type", "application/json")
				if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
					t.Errorf("create %s for patching: %v", own, err)
					return
				} else {
					drainBody(resp)
				}
			}
			for i := 0; !stop.Load(); i++ {
				var req *http.Request
				if op == "patch" {
					req, _ = http.NewRequest("PATCH", "http://"+n.apiAddr+"/v1/tenants/"+own, strings.NewReader(fmt.Sprintf(`{"display_name":%q}`, names[i%2])))
				} else {
					id := fmt.Sprintf("b%d-%d-%d", runID, w, seq.Add(1))
					req, _ = http.NewRequestWithContext(context.Background(), "POST", "http://"+n.apiAddr+"/v1/tenants", strings.NewReader(body(id)))
				}
				req.Header.Set("Authorization", "Bearer "+c.token)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err == nil {
					drainBody(resp)
				}
				lat := time.Since(t0)
				if !measure.Load() {
					continue
				}
				if err != nil || resp.StatusCode/100 != 2 {
					errs.Add(1)
					continue
				}
				acked.Add(1)
				mine = append(mine, lat)
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}(w)
	}
	time.Sleep(time.Second) // warm-up: connections, batches
	before := statsOf()
	measure.Store(true)
	start := time.Now()
	time.Sleep(d)
	measure.Store(false)
	elapsed := time.Since(start)
	after := statsOf()
	stop.Store(true)
	wg.Wait()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	r := loadResult{errors: errs.Load(), rate: float64(acked.Load()) / elapsed.Seconds()}
	if len(lats) > 0 {
		r.p50 = float64(lats[len(lats)/2].Microseconds()) / 1000
		r.p99 = float64(lats[len(lats)*99/100].Microseconds()) / 1000
	}
	if fs := after.LogBatches - before.LogBatches; fs > 0 {
		r.perFsync = float64(acked.Load()) / float64(fs) // acknowledged transactions per leader log fsync
		r.logMs = float64(after.LogNanos-before.LogNanos) / float64(fs) / 1e6
	}
	if fb := after.FSMBatches - before.FSMBatches; fb > 0 {
		r.fsmMs = float64(after.FSMNanos-before.FSMNanos) / float64(fb) / 1e6
	}
	return r
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
	bin := custosBinary(t)
	var ds []time.Duration
	hc := &http.Client{Timeout: time.Second}
	for i := 0; i < 7; i++ {
		addr := freePort(t)
		dir := t.TempDir()
		start := time.Now()
		p := startProc(t, "dev", bin, filepath.Join(dir, "out"), filepath.Join(dir, "err"), "server", "--dev", "--dev-listen-address", addr, "--log-level", "warn")
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
		p.kill()
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	msg := fmt.Sprintf("dev node cold start to healthy: median %v, min %v, max %v (%d runs)\n", ds[len(ds)/2].Round(time.Millisecond), ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), len(ds))
	fmt.Print(msg)
	t.Log(msg)
}
