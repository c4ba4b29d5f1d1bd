//go:build bench

package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit/e2e"
)

// TestBenchTLS is issue 14's TLS cost: issue 5's record-create scenario
// (64 keep-alive clients spread over the three nodes, each over its own
// connection, ~1 KiB records sealed and audited) on two clusters running
// side by side on this machine — one serving its API over TLS 1.3 (the
// default), one over plain HTTP (api.insecure_http) — measured in turns
// (plain, TLS, plain, TLS, …) so that the machine's drift falls on both.
// The target: TLS costs at most 15 % of the plain rate. Each client
// handshakes once (keep-alive), as an application server's pool does; a
// second line measures the worst case, a new connection (and handshake)
// for every request.
//
//	issue14 tls=<on|off> round=<n> conns=<keep-alive|per-request> clients=64 ops/s=<x> p50_ms=<x> p99_ms=<x> errors=<n>
//	issue14 tls-cost conns=<…> plain_ops/s=<mean> tls_ops/s=<mean> cost=<x>%
func TestBenchTLS(t *testing.T) {
	t.Setenv("CUSTOS_E2E_RACE", "0")
	bin := e2e.Binary(t)
	type side struct {
		name   string
		c      *e2e.Cluster
		leader *e2e.Node
		token  string
		rates  map[bool][]float64 // per-request conns? → rates
	}
	var sides []*side
	for _, s := range []struct {
		name  string
		start func(testing.TB, string, string) *e2e.Cluster
	}{{"off", e2e.StartPlainClusterWith}, {"on", e2e.StartClusterWith}} {
		c := s.start(t, bin, benchConfig)
		leader := c.WaitLeader(30 * time.Second)
		sides = append(sides, &side{name: s.name, c: c, leader: leader, token: benchTenant(t, c, leader), rates: map[bool][]float64{}})
	}
	out := &strings.Builder{}
	line := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		t.Logf(format, args...)
	}
	runID := time.Now().UnixNano() % 1e9
	var seq atomic.Int64
	const rounds, conc = 3, 64
	for _, perRequest := range []bool{false, true} {
		conns := "keep-alive"
		if perRequest {
			conns = "per-request"
		}
		for round := 1; round <= rounds; round++ {
			for _, s := range sides {
				create := func(hc *http.Client, n *e2e.Node) bool {
					i := seq.Add(1)
					req, _ := http.NewRequest("POST", n.URL()+"/v1/tenants/bench/collections/guests/records", strings.NewReader(benchRecord(fmt.Sprintf("t%d-%d", runID, i), i)))
					req.Header.Set("Authorization", "Bearer "+s.token)
					req.Header.Set("Content-Type", "application/json")
					req.Close = perRequest
					resp, err := hc.Do(req)
					if err != nil {
						return false
					}
					drainBody(resp)
					return resp.StatusCode == http.StatusCreated
				}
				r := runOps(t, s.c, s.leader, s.c.Nodes, conc, 8*time.Second, func(_ int, hc *http.Client, n *e2e.Node) (func() bool, error) {
					return func() bool { return create(hc, n) }, nil
				})
				s.rates[perRequest] = append(s.rates[perRequest], r.rate)
				line("issue14 tls=%s round=%d conns=%s clients=%d ops/s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d",
					s.name, round, conns, conc, r.rate, r.p50, r.p99, r.errors)
			}
		}
		plain, tlsRate := mean(sides[0].rates[perRequest]), mean(sides[1].rates[perRequest])
		line("issue14 tls-cost conns=%s plain_ops/s=%.0f tls_ops/s=%.0f cost=%.1f%%", conns, plain, tlsRate, 100*(plain-tlsRate)/plain)
	}
	fmt.Print("\n" + out.String())
}

func mean(xs []float64) float64 {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}
