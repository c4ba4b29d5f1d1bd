//go:build bench

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos/appliance/identity/password"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestBenchLoginFlood is the issue's "a login (argon2id + TOTP) costs what
// the chosen parameters say and no more than N concurrent hashes run
// (report N and the p99 of other requests during a login flood)".
//
// A dev node runs as its own process; a tenant has 64 Manager users with
// passwords. First, logins one at a time (POST /v1/auth/login: argon2id
// with the production parameters, a session written through raft, the
// audit entry) give a login's cost. Then 4 keep-alive clients send cheap
// authenticated requests (GET /v1/sys/status, operator token; 1,000/s in
// all, paced) for 6 s with nothing else running (idle), and again for 6 s
// while 64 clients flood the login route, each as its own user with the
// right password.
// The node's Hasher runs at most N hashes at once whatever the flood: its
// default, half the cores, at least one.
//
// The flood is the worst case for hashing, so the defences in front of
// it are opened: the request rate limits are off, and the login backoff
// allows 1000 attempts in flight per source (all clients here are
// 127.0.0.1; by default 20 would be let through at once and the rest
// answered 429 without hashing, as they would be for one account's
// concurrent attempts beyond 5).
func TestBenchLoginFlood(t *testing.T) {
	t.Setenv("CUSTOS_E2E_RACE", "0")
	bin := e2e.Binary(t)
	dir := t.TempDir()
	addr := e2e.FreePort(t)
	const token = "bench-login-flood-operator-token-0123456789"
	cfg := filepath.Join(dir, "custos.toml")
	conf := fmt.Sprintf("dev = true\ndev_token = %q\n\n[api]\nlisten_address = %q\n\n[log]\nlevel = \"warn\"\n\n[ratelimit]\nenabled = false\nlogin_source_free = 1000\n", token, addr)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e2e.StartProc(t, "dev", bin, filepath.Join(dir, "out"), filepath.Join(dir, "err"), "server", "--config", cfg)
	e2e.DumpOnFailure(t, filepath.Join(dir, "err"))
	base := "http://" + addr
	testkit.Poll(t, 30*time.Second, "dev node healthy", func() error {
		if p.Exited() {
			return testkit.Permanent(fmt.Errorf("dev node exited:\n%s", e2e.Tail(filepath.Join(dir, "err"), 30)))
		}
		resp, err := http.Get(base + "/v1/sys/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health %d", resp.StatusCode)
		}
		return nil
	})

	// The tenant, its bootstrap Owner key, and the user who logs in.
	call := func(hc *http.Client, method, path, bearer, body string, want int) []byte {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	call(hc, "POST", "/v1/tenants", token, `{"id":"bench","display_name":"Bench"}`, http.StatusCreated)
	var key struct{ Token string }
	if err := json.Unmarshal(call(hc, "POST", "/v1/tenants/bench/apikeys", token, `{"name":"owner","role":"owner"}`, http.StatusCreated), &key); err != nil {
		t.Fatal(err)
	}
	const pass = "flood of logins, bench only"
	const users = 64
	for i := range users {
		call(hc, "POST", "/v1/tenants/bench/users", key.Token, fmt.Sprintf(`{"username":"flood-%d","password":%q,"role":"manager"}`, i, pass), http.StatusCreated)
	}
	login := func(hc *http.Client, user int) bool {
		body := fmt.Sprintf(`{"tenant":"bench","username":"flood-%d","password":%q}`, user, pass)
		req, _ := http.NewRequest("POST", base+"/v1/auth/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		drainBody(resp)
		return resp.StatusCode == http.StatusOK
	}

	var alone []time.Duration
	for range 15 {
		t0 := time.Now()
		if !login(hc, 0) {
			t.Fatal("login refused")
		}
		alone = append(alone, time.Since(t0))
	}
	sort.Slice(alone, func(i, j int) bool { return alone[i] < alone[j] })

	idle := cheapLoad(t, addr, token, 4, 6*time.Second)

	var (
		stop         atomic.Bool
		logins, errs atomic.Int64
		wg           sync.WaitGroup
	)
	for u := range users {
		wg.Go(func() {
			hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer hc.CloseIdleConnections()
			for !stop.Load() {
				if login(hc, u) {
					logins.Add(1)
				} else if !stop.Load() {
					errs.Add(1)
				}
			}
		})
	}
	time.Sleep(2 * time.Second) // the flood fills the Hasher's queue
	before := logins.Load()
	flood := cheapLoad(t, addr, token, 4, 6*time.Second)
	rate := float64(logins.Load()-before) / flood.elapsed.Seconds()
	stop.Store(true)
	wg.Wait()

	params := password.OWASP()
	out := &strings.Builder{}
	fmt.Fprintf(out, "cores %d; the node's Hasher bound N = max(1, cores/2) = %d (argon2id m=%d KiB, t=%d, p=%d)\n", runtime.NumCPU(), max(1, runtime.NumCPU()/2), params.Memory, params.Time, params.Threads)
	fmt.Fprintf(out, "one login (POST /v1/auth/login: argon2id, session, audit), alone: median %.1f ms, min %.1f ms, max %.1f ms (15 runs)\n",
		ms(alone[len(alone)/2]), ms(alone[0]), ms(alone[len(alone)-1]))
	fmt.Fprintf(out, "login flood: %d clients, one user each, %.1f logins/s, %d refused or failed\n", users, rate, errs.Load())
	fmt.Fprintf(out, "%-6s %9s %9s %9s %8s\n", "run", "req/s", "p50 ms", "p99 ms", "errors")
	for _, r := range []struct {
		name string
		l    cheapResult
	}{{"idle", idle}, {"flood", flood}} {
		fmt.Fprintf(out, "%-6s %9.0f %9.2f %9.2f %8d\n", r.name, r.l.rate, r.l.p50, r.l.p99, r.l.errors)
	}
	if idle.p99 > 0 {
		fmt.Fprintf(out, "p99 during the flood / idle p99: %.2f×\n", flood.p99/idle.p99)
	}
	fmt.Print("\n" + out.String())
	t.Log("\n" + out.String())
}

// cheapEvery paces each cheap client: 4 clients send 1,000 requests/s.
const cheapEvery = 4 * time.Millisecond

type cheapResult struct {
	rate, p50, p99 float64
	errors         int64
	elapsed        time.Duration
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cheapLoad runs conc keep-alive clients for d, each sending GET
// /v1/sys/status with the operator token every cheapEvery (paced, not as
// fast as it can: a saturated API measures its own queue, not what the
// logins take from it), and reports their latencies.
func cheapLoad(t *testing.T, addr, token string, conc int, d time.Duration) cheapResult {
	t.Helper()
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs atomic.Int64
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer hc.CloseIdleConnections()
			var mine []time.Duration
			next := time.Now()
			for !stop.Load() {
				next = next.Add(cheapEvery)
				time.Sleep(time.Until(next))
				req, _ := http.NewRequest("GET", "http://"+addr+"/v1/sys/status", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				drainBody(resp)
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	r := cheapResult{errors: errs.Load(), elapsed: time.Since(start)}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	if len(lats) > 0 {
		r.rate = float64(len(lats)) / r.elapsed.Seconds()
		r.p50, r.p99 = ms(lats[len(lats)/2]), ms(lats[len(lats)*99/100])
	}
	return r
}
