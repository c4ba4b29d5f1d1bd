//go:build bench

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestBenchRevocation is the issue's "disabling a user or changing their
// role takes effect on every node within 1 second, even for unexpired
// access tokens", measured on a real three-process cluster.
//
// A tenant has one Manager user with a live access token. Each round
// changes the user through node 1 — a role change (manager ⇄ read-only),
// or a disable followed (outside the timing) by an enable and a new
// login — and from the moment the change is sent, every node is asked
// with the user's unexpired token (GET /v1/auth/session) until it answers
// with the new state; the figure is the time until the last of the three
// did. The user's session is resolved on every request with a
// linearizable read, so a node that answers after the change was
// acknowledged answers with it: the first probe after the acknowledgement
// is expected to show it. It prints figures and asserts nothing about
// speed.
func TestBenchRevocation(t *testing.T) {
	t.Setenv("CUSTOS_E2E_RACE", "0")
	bin := e2e.Binary(t)
	// Request rate limits off: the probes are as fast as a client can send.
	c := e2e.StartClusterWith(t, bin, "[ratelimit]\nenabled = false\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n1 := c.Nodes[0]
	if _, err := n1.API.CreateTenant(ctx, client.NewTenant{ID: "bench", DisplayName: "Bench"}); err != nil {
		t.Fatal(err)
	}
	owner := c.TenantAPI(n1, "bench")
	const pass = "revocation bench only, long enough"
	u, err := owner.CreateUser(ctx, "bench", client.NewUser{Username: "max", Password: pass, Role: "manager"})
	if err != nil {
		t.Fatal(err)
	}
	anon := e2e.NewAPIClient(t, n1.APIAddr, "", 10*time.Second, nil)
	login := func() string {
		g, err := anon.Login(ctx, client.Login{Tenant: "bench", Username: "max", Password: pass})
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		return g.AccessToken
	}
	// until probes node n with tok until done says its answer shows the
	// change; it returns when that was and how many probes it took.
	until := func(n *e2e.Node, tok string, done func(client.SessionInfo, error) bool) (time.Time, int) {
		api := e2e.NewAPIClient(t, n.APIAddr, tok, 10*time.Second, nil)
		for i := 1; ; i++ {
			s, err := api.Session(ctx)
			if done(s, err) {
				return time.Now(), i
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: never showed the change", n.ID)
			}
		}
	}
	type sample struct {
		all, ack time.Duration
		probes   int
	}
	measure := func(tok string, change func() error, done func(client.SessionInfo, error) bool) sample {
		start := time.Now()
		if err := change(); err != nil {
			t.Fatal(err)
		}
		ack := time.Since(start)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var last time.Time
		probes := 0
		for _, n := range c.Nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				at, p := until(n, tok, done)
				mu.Lock()
				defer mu.Unlock()
				if at.After(last) {
					last = at
				}
				probes = max(probes, p)
			}()
		}
		wg.Wait()
		return sample{all: last.Sub(start), ack: ack, probes: probes}
	}

	const rounds = 20
	var roleChanges, disables []sample
	tok := login()
	role := "manager"
	for range rounds {
		next := map[string]string{"manager": "read-only", "read-only": "manager"}[role]
		roleChanges = append(roleChanges, measure(tok, func() error {
			_, err := owner.UpdateUser(ctx, "bench", u.ID, client.UserPatch{Role: &next})
			return err
		}, func(s client.SessionInfo, err error) bool { return err == nil && s.Role == next }))
		role = next

		disables = append(disables, measure(tok, func() error {
			_, err := owner.UserAction(ctx, "bench", u.ID, "disable")
			return err
		}, func(_ client.SessionInfo, err error) bool {
			var e *client.Error
			return errors.As(err, &e) && e.Status == http.StatusUnauthorized
		}))
		if _, err := owner.UserAction(ctx, "bench", u.ID, "enable"); err != nil {
			t.Fatal(err)
		}
		tok = login()
	}
	report := func(name string, s []sample) {
		all := make([]time.Duration, len(s))
		ack := make([]time.Duration, len(s))
		probes := 0
		for i, x := range s {
			all[i], ack[i] = x.all, x.ack
			probes = max(probes, x.probes)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		sort.Slice(ack, func(i, j int) bool { return ack[i] < ack[j] })
		p := func(d []time.Duration, q float64) string {
			return fmt.Sprintf("%.1f", ms(d[int(q*float64(len(d)-1))]))
		}
		fmt.Printf("%-12s rounds %d  acknowledged ms p50 %s max %s  effective on all 3 nodes ms p50 %s p90 %s max %s  most probes on one node %d\n",
			name, len(s), p(ack, 0.5), p(ack, 1), p(all, 0.5), p(all, 0.9), p(all, 1), probes)
	}
	fmt.Println(strings.Repeat("-", 20), "revocation on a 3-node cluster", strings.Repeat("-", 20))
	// What one request of a session costs on each node (its resolution
	// included), for comparison with the figures above.
	for _, n := range c.Nodes {
		api := e2e.NewAPIClient(t, n.APIAddr, tok, 10*time.Second, nil)
		var d []time.Duration
		for range 50 {
			t0 := time.Now()
			if _, err := api.Session(ctx); err != nil {
				t.Fatal(err)
			}
			d = append(d, time.Since(t0))
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Printf("%s: GET /v1/auth/session with the user's token, 50 in a row: ms p50 %.1f max %.1f\n", n.ID, ms(d[len(d)/2]), ms(d[len(d)-1]))
	}
	report("role change", roleChanges)
	report("disable", disables)
}
