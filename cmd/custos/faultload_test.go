package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// The load and the checks of the fault tests (fault_test.go,
// failover_test.go, upgrade_test.go): 16 writers create tenants with unique
// ids through every node and record every attempt; 4 register clients
// write and read one tenant's display name, whose history porcupine
// checks for linearizability; afterwards every acknowledged id is read
// back from every node.

// ---- the write history ----

// writeRecord is one POST /v1/tenants of the fault test.
type writeRecord struct {
	client     int
	id         string
	node       string
	start, end time.Duration // since the history's base
	ack        bool          // 201: acknowledged
	status     int           // HTTP status, 0 on a transport error
	err        string        // transport error or problem body, if not acked
}

func (r writeRecord) String() string {
	out := "ack"
	if !r.ack {
		out = fmt.Sprintf("fail(status %d: %s)", r.status, r.err)
	}
	return fmt.Sprintf("client %d id %s node %s [%v, %v] %s", r.client, r.id, r.node,
		r.start.Round(time.Millisecond), r.end.Round(time.Millisecond), out)
}

// history collects the records of all clients.
type history struct {
	base time.Time
	mu   sync.Mutex
	recs []writeRecord
}

func (h *history) add(r writeRecord) {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
}

// firstAckStartedAfter returns the end of the earliest-ending ack among
// the requests started at or after t.
func (h *history) firstAckStartedAfter(t time.Duration) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	best, ok := time.Duration(math.MaxInt64), false
	for _, r := range h.recs {
		if r.ack && r.start >= t && r.end < best {
			best, ok = r.end, true
		}
	}
	return best, ok
}

// firstAcksByNode describes, per node, the earliest-ending ack among the
// requests started at or after t, relative to t.
func (h *history) firstAcksByNode(t time.Duration) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := map[string]time.Duration{}
	for _, r := range h.recs {
		if r.ack && r.start >= t {
			if d, ok := first[r.node]; !ok || r.end-t < d {
				first[r.node] = r.end - t
			}
		}
	}
	var parts []string
	for node, d := range first {
		parts = append(parts, fmt.Sprintf("%s %v", node, d.Round(time.Millisecond)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// longestGap is the longest time between two acknowledgements (by their
// ends) in the history.
func (h *history) longestGap() time.Duration {
	h.mu.Lock()
	var ends []time.Duration
	for _, r := range h.recs {
		if r.ack {
			ends = append(ends, r.end)
		}
	}
	h.mu.Unlock()
	slices.Sort(ends)
	var gap time.Duration
	for i := 1; i < len(ends); i++ {
		gap = max(gap, ends[i]-ends[i-1])
	}
	return gap
}

func (h *history) acked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.ack {
			n++
		}
	}
	return n
}

// ---- the register (linearizability) history ----

// regInput is one operation on the register tenant "reg": a write of
// display_name, or a read of it.
type regInput struct {
	write bool
	value string
}

// registerModel is a single register holding a string; reads must return
// the current value, writes always succeed.
var registerModel = porcupine.Model{
	Init: func() any { return "v0" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(string) == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("write(%q)", in.value)
		}
		return fmt.Sprintf("read() -> %q", output)
	},
}

// regHistory collects porcupine operations of the register clients.
type regHistory struct {
	mu             sync.Mutex
	ops            []porcupine.Operation
	unknownWrites  int
	failedWrites   int // definite failures (4xx): dropped
	droppedReads   int
	okReads, okWri int
	refusals       map[string]int // "HTTP 409: <problem title>" -> count
}

func (h *regHistory) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// ---- the nodes the clients talk to ----

// endpoints are the API base URLs of the cluster, in node order, the
// network namespaces the nodes run in ("" for loopback), and the TLS
// configuration that trusts the cluster CA.
type endpoints struct {
	ids   []string
	urls  []string
	netns map[string]string // API address (host:port) -> namespace
	tls   *tls.Config
}

func endpointsOf(c *e2e.Cluster) endpoints {
	e := endpoints{netns: map[string]string{}, tls: c.TLSConfig()}
	for _, n := range c.Nodes {
		e.ids = append(e.ids, n.ID)
		e.urls = append(e.urls, n.URL())
		e.netns[n.APIAddr] = n.Netns
	}
	return e
}

// dial opens a connection to a node's API from inside the node's network
// namespace, if it has one.
func (e endpoints) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return e2e.Dialer(e.netns[addr])(ctx, network, addr)
}

// newKeepAliveClient is one client's own http.Client of the nodes (over
// TLS, trusting the cluster CA), keeping connections to every node alive.
func (e endpoints) newKeepAliveClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute, DialContext: e.dial, TLSClientConfig: e.tls},
	}
}

// request sends one JSON request with the operator token and returns the
// status and body; status 0 means a transport error or timeout.
func request(ctx context.Context, hc *http.Client, method, rawURL, token string, body any) (int, []byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, nil, err
	}
	r, err := client.New(u.Scheme+"://"+u.Host, client.Options{Token: token, HTTPClient: hc}).Send(ctx, method, u.RequestURI(), body)
	if err != nil {
		return 0, nil, err
	}
	return r.Status, r.Body, nil
}

// ---- the load ----

// faultLoad is the clients of a fault test, running until stop.
type faultLoad struct {
	c        *e2e.Cluster
	eps      endpoints
	hist     *history
	regs     *regHistory
	attempts atomic.Int64
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// now is the time since the history's base.
func (l *faultLoad) now() time.Duration { return time.Since(l.hist.base) }

// startFaultLoad creates the register tenant and starts the clients. They
// stop (and are waited for) at the latest when the test ends, before the
// processes are killed.
func startFaultLoad(t *testing.T, c *e2e.Cluster) *faultLoad {
	t.Helper()
	// The register, created before any client runs.
	testkit.Poll(t, 30*time.Second, "create the register tenant", func() error {
		r, err := c.Nodes[0].API.Send(context.Background(), "POST", "/v1/tenants",
			map[string]string{"id": "reg", "display_name": "v0", "region": "local"})
		if err != nil {
			return err
		}
		if r.Status != http.StatusCreated && r.Status != http.StatusConflict {
			return fmt.Errorf("HTTP %d: %s", r.Status, r.Body)
		}
		return nil
	})
	// If the create was answered 409 after an unknown first attempt, the
	// register must still read v0.
	if reg, err := c.Nodes[0].API.Tenant(context.Background(), "reg"); err != nil || reg.DisplayName != "v0" {
		t.Fatalf("register: %+v, %v", reg, err)
	}
	l := &faultLoad{c: c, eps: endpointsOf(c), hist: &history{base: time.Now()}, regs: &regHistory{refusals: map[string]int{}}}
	ctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	// Cleanups run last-in first-out: the clients stop before the
	// processes are killed.
	t.Cleanup(l.stopClients)
	const writers = 16
	for cl := range writers {
		l.wg.Add(1)
		go l.writer(ctx, cl)
	}
	const regClients = 4
	for cl := range regClients {
		l.wg.Add(1)
		go l.registerClient(ctx, cl)
	}
	return l
}

// writer creates tenants with unique ids, starting on node cl % 3 and
// moving to the next node after a failure, and now and then anyway, so
// every node, restarted ones too, keeps taking writes.
func (l *faultLoad) writer(ctx context.Context, cl int) {
	defer l.wg.Done()
	eps, c := l.eps, l.c
	hc := eps.newKeepAliveClient(10 * time.Second)
	defer hc.CloseIdleConnections()
	node := cl % len(eps.urls)
	for seq := 0; ctx.Err() == nil; seq++ {
		id := fmt.Sprintf("c%d-%d", cl, seq)
		rec := writeRecord{client: cl, id: id, node: eps.ids[node], start: l.now()}
		l.attempts.Add(1)
		// The request is not tied to ctx: stopping the clients must not
		// turn a request in flight into a failure we caused.
		code, body, err := request(context.Background(), hc, "POST", eps.urls[node]+"/v1/tenants", c.Token,
			map[string]string{"id": id, "display_name": "Client " + id, "region": "local"})
		rec.end, rec.status = l.now(), code
		switch {
		case err != nil:
			rec.err = err.Error()
		case code == http.StatusCreated:
			rec.ack = true
		default:
			rec.err = strings.TrimSpace(string(body))
		}
		l.hist.add(rec)
		if rec.ack && seq%25 == 24 {
			node = (node + 1) % len(eps.urls)
		}
		if !rec.ack {
			node = (node + 1) % len(eps.urls)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// registerClient writes unique values to the register and reads it with
// linearizable reads, each against a random node.
func (l *faultLoad) registerClient(ctx context.Context, cl int) {
	defer l.wg.Done()
	const infinity = math.MaxInt64
	eps, c, regs := l.eps, l.c, l.regs
	hc := eps.newKeepAliveClient(10 * time.Second)
	defer hc.CloseIdleConnections()
	rng := rand.New(rand.NewPCG(uint64(cl), uint64(time.Now().UnixNano())))
	for seq := 0; ctx.Err() == nil; seq++ {
		node := rng.IntN(len(eps.urls))
		base := eps.urls[node] + "/v1/tenants/reg"
		if rng.IntN(2) == 0 {
			value := fmt.Sprintf("w%d-%d", cl, seq)
			call := l.now()
			code, body, err := request(context.Background(), hc, "PATCH", base, c.Token, map[string]string{"display_name": value})
			ret := l.now()
			op := porcupine.Operation{ClientId: cl, Input: regInput{write: true, value: value}, Output: "", Call: int64(call)}
			switch {
			case err == nil && code == http.StatusOK:
				op.Return = int64(ret)
				regs.mu.Lock()
				regs.okWri++
				regs.mu.Unlock()
			case err == nil && code >= 400 && code < 500:
				// A definite refusal (such as 409 after repeated version
				// conflicts): not applied. If it were applied after all, a
				// read returning its unique value would make the history
				// fail.
				var p client.Problem
				_ = json.Unmarshal(body, &p)
				regs.mu.Lock()
				regs.failedWrites++
				regs.refusals[fmt.Sprintf("HTTP %d: %s", code, p.Title)]++
				regs.mu.Unlock()
				continue
			default:
				// Unknown outcome: it may take effect at any time after
				// its call.
				op.Return = infinity
				regs.mu.Lock()
				regs.unknownWrites++
				regs.mu.Unlock()
			}
			regs.add(op)
		} else {
			call := l.now()
			code, body, err := request(context.Background(), hc, "GET", base, c.Token, nil)
			ret := l.now()
			var got client.Tenant
			if err != nil || code != http.StatusOK || json.Unmarshal(body, &got) != nil {
				regs.mu.Lock()
				regs.droppedReads++
				regs.mu.Unlock()
				continue
			}
			regs.mu.Lock()
			regs.okReads++
			regs.mu.Unlock()
			regs.add(porcupine.Operation{ClientId: cl, Input: regInput{}, Output: got.DisplayName, Call: int64(call), Return: int64(ret)})
		}
		if ctx.Err() == nil && rng.IntN(4) == 0 {
			time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
		}
	}
}

// stopClients stops the clients and waits for them.
func (l *faultLoad) stopClients() {
	l.stop()
	l.wg.Wait()
}

// waitFlowing waits for steady writing (at least min acknowledged writes
// and d since the call), so a fault cuts into a busy pipeline.
func (l *faultLoad) waitFlowing(t *testing.T, what string, minAcks int, d time.Duration) {
	t.Helper()
	before, since := l.hist.acked(), time.Now()
	testkit.Poll(t, 30*time.Second, what+": writes flowing", func() error {
		if n := l.hist.acked(); n < before+minAcks || time.Since(since) < d {
			return fmt.Errorf("%d acks in %v", n-before, time.Since(since).Round(time.Millisecond))
		}
		return nil
	})
}

// firstAck waits up to d for the first acknowledged write started at or
// after at, and returns the time from at to its acknowledgement.
func (l *faultLoad) firstAck(at, d time.Duration) (time.Duration, error) {
	var end time.Duration
	err := testkit.Wait(d, func() error {
		e, ok := l.hist.firstAckStartedAfter(at)
		if !ok {
			return fmt.Errorf("no write acknowledged since %v", at.Round(time.Millisecond))
		}
		end = e
		return nil
	})
	return end - at, err
}

// verify stops the clients, waits until every node has caught up, and
// checks that every acknowledged write is on every node, that nothing is
// there no client wrote, that the audit chain verifies on every node, and
// that the register's history is linearizable.
func (l *faultLoad) verify(t *testing.T) {
	t.Helper()
	l.stopClients()
	c := l.c
	c.WaitCaughtUp(30*time.Second, true, c.Nodes...)
	hist := l.hist
	hist.mu.Lock()
	recs := append([]writeRecord(nil), hist.recs...)
	hist.mu.Unlock()
	byID := map[string][]writeRecord{}
	var ackedIDs []string
	failed, conflicts := 0, 0
	for _, r := range recs {
		byID[r.id] = append(byID[r.id], r)
		if r.ack {
			ackedIDs = append(ackedIDs, r.id)
		} else {
			failed++
			if r.status == http.StatusConflict {
				conflicts++
			}
		}
	}
	sort.Strings(ackedIDs)

	// Every acknowledged id, on every node, by a local read.
	lost := map[string][]string{} // id -> nodes missing it
	var lostMu sync.Mutex
	for _, n := range c.Nodes {
		ids := make(chan string)
		var vwg sync.WaitGroup
		for range 8 {
			vwg.Add(1)
			go func() {
				defer vwg.Done()
				hc := l.eps.newKeepAliveClient(10 * time.Second)
				defer hc.CloseIdleConnections()
				for id := range ids {
					var code int
					var err error
					for try := range 5 {
						code, _, err = request(context.Background(), hc, "GET", n.URL()+"/v1/tenants/"+id+"?stale=true", c.Token, nil)
						if err == nil && code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
							break
						}
						time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
					}
					if err != nil || code != http.StatusOK {
						lostMu.Lock()
						lost[id] = append(lost[id], fmt.Sprintf("%s(HTTP %d %v)", n.ID, code, err))
						lostMu.Unlock()
					}
				}
			}()
		}
		for _, id := range ackedIDs {
			ids <- id
		}
		close(ids)
		vwg.Wait()
	}

	// Every id present on any node: listed with local reads.
	present := map[string][]string{} // id -> nodes holding it
	for _, n := range c.Nodes {
		ids, err := listAllStale(n)
		if err != nil {
			t.Fatalf("list tenants on %s: %v", n.ID, err)
		}
		for _, id := range ids {
			present[id] = append(present[id], n.ID)
		}
	}
	var phantom, divergent []string
	unackedPresent := 0
	for id, nodes := range present {
		if len(nodes) != len(c.Nodes) {
			divergent = append(divergent, fmt.Sprintf("%s on %v", id, nodes))
		}
		if id == "reg" {
			continue
		}
		rs, written := byID[id]
		if !written {
			phantom = append(phantom, id)
			continue
		}
		if !anyAck(rs) {
			unackedPresent++
		}
	}
	t.Logf("writes: %d attempts, %d acked, %d failed/unknown (%d of them 409 on a fresh id), %d acked-but-lost, %d unacked but present",
		len(recs), len(ackedIDs), failed, conflicts, len(lost), unackedPresent)
	if len(recs) != int(l.attempts.Load()) {
		t.Errorf("history has %d records for %d attempts", len(recs), l.attempts.Load())
	}
	if len(ackedIDs) == 0 {
		t.Fatalf("no write was acknowledged")
	}
	if len(lost) > 0 {
		var lines []string
		for id, nodes := range lost {
			lines = append(lines, fmt.Sprintf("%s missing on %v; history: %v", id, nodes, byID[id]))
		}
		sort.Strings(lines)
		if len(lines) > 50 {
			lines = append(lines[:50], fmt.Sprintf("... and %d more", len(lines)-50))
		}
		t.Errorf("%d acknowledged writes lost:\n%s", len(lost), strings.Join(lines, "\n"))
	}
	if len(phantom) > 0 {
		sort.Strings(phantom)
		t.Errorf("%d ids present that no client wrote: %v", len(phantom), phantom)
	}
	if len(divergent) > 0 {
		sort.Strings(divergent)
		t.Errorf("%d ids not present on every node after catching up: %v", len(divergent), divergent)
	}

	// The audit log survived every fault and leader change.
	checkAuditOnEveryNode(t, c)

	// The register.
	regs := l.regs
	regs.mu.Lock()
	ops := append([]porcupine.Operation(nil), regs.ops...)
	t.Logf("register: %d ops checked (%d reads, %d acked writes, %d unknown writes); %d refused writes and %d failed reads dropped",
		len(ops), regs.okReads, regs.okWri, regs.unknownWrites, regs.failedWrites, regs.droppedReads)
	if len(regs.refusals) > 0 {
		t.Logf("register: refused writes: %v", regs.refusals)
	}
	regs.mu.Unlock()
	if regs.okReads == 0 || regs.okWri == 0 {
		t.Errorf("register history too thin to check: %d reads, %d writes", regs.okReads, regs.okWri)
	}
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, 60*time.Second)
	t.Logf("porcupine: %s in %v", res, time.Since(checkStart).Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Logf("porcupine: check timed out; linearizability not decided (not a failure)")
	default:
		dir, err := os.MkdirTemp("", "custos-porcupine-*")
		if err == nil {
			path := filepath.Join(dir, "register.html")
			if err := porcupine.VisualizePath(registerModel, info, path); err == nil {
				t.Logf("porcupine visualization kept at %s", path)
			}
		}
		t.Errorf("register history is not linearizable (%d ops)", len(ops))
	}
}

func anyAck(rs []writeRecord) bool {
	for _, r := range rs {
		if r.ack {
			return true
		}
	}
	return false
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// listAllStale lists every tenant id n holds, page by page, with local
// reads.
func listAllStale(n *e2e.Node) ([]string, error) {
	var ids []string
	after := ""
	for {
		q := url.Values{"limit": {"500"}, "stale": {"true"}}
		if after != "" {
			q.Set("after", after)
		}
		var page client.TenantPage
		if err := n.API.Do(context.Background(), "GET", "/v1/tenants?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		for _, t := range page.Tenants {
			ids = append(ids, t.ID)
		}
		if page.Next == "" {
			return ids, nil
		}
		if page.Next == after {
			return nil, fmt.Errorf("pagination does not advance past %q", after)
		}
		after = page.Next
	}
}

// TestFaultMinorityUnavailable is acceptance 5: a leader cut off from both
// followers (they are SIGSTOPped) answers writes and linearizable reads
// with 503 problem+json in bounded time rather than hanging or answering

// checkAuditOnEveryNode exports the system chain through every node and
// verifies each bundle offline, and checks every node's own self-check:
// restarts, leader changes and snapshot installs left no gap, duplicate or
// fork in the chain.
func checkAuditOnEveryNode(t *testing.T, c *e2e.Cluster) {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "audit.pub")
	r := c.RunOn(c.Nodes[0], "--addr", c.Nodes[0].APIAddr, "audit", "key")
	if r.Code != 0 {
		t.Fatalf("audit key: %v", r)
	}
	if err := os.WriteFile(keyFile, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		bundle := filepath.Join(dir, n.ID+".tar.gz")
		if r := c.CLI(n, "audit", "export", "-o", bundle); r.Code != 0 {
			t.Fatalf("%s: audit export: %v", n.ID, r)
		}
		r := e2e.RunCLI(t, c.Bin, "audit", "verify", "--key", keyFile, bundle)
		if r.Code != 0 {
			t.Fatalf("%s: the system chain does not verify after the faults: %v", n.ID, r)
		}
		t.Logf("%s: %s", n.ID, strings.TrimSpace(r.Stdout))
		testkit.Poll(t, 30*time.Second, n.ID+" audit self-check", func() error {
			r := c.CLI(n, "audit", "selfcheck")
			if r.Code != 0 {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
	}
}
