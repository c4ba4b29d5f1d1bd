package api_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/ratelimit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/raftstore"
)

// fakeClock is the rate limits' clock: it moves only when a test says.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingAuth counts the operator-token checks that reach it.
type countingAuth struct {
	api.Auth
	n *atomic.Int64
}

func (a countingAuth) CheckOperatorToken(ctx context.Context, token string) error {
	a.n.Add(1)
	return a.Auth.CheckOperatorToken(ctx, token)
}

// countingTenants counts the tenant listings that reach the service.
type countingTenants struct {
	api.Tenants
	n *atomic.Int64
}

func (s countingTenants) List(ctx context.Context, c raftstore.Consistency, after string, limit int) ([]tenants.Tenant, string, error) {
	s.n.Add(1)
	return s.Tenants.List(ctx, c, after, limit)
}

// limited is an API with rate limits over the env's services, a fake
// clock, and counters of what reached the services.
type limited struct {
	app             *fiber.App
	clock           *fakeClock
	authN, tenantsN atomic.Int64
}

func newLimited(e *env, perSource, perPrincipal ratelimit.Limits) *limited {
	l := &limited{clock: &fakeClock{now: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}}
	deps := e.deps()
	deps.Auth = countingAuth{deps.Auth, &l.authN}
	deps.Tenants = countingTenants{deps.Tenants, &l.tenantsN}
	l.app = e.server(deps, api.Options{
		RateLimit: &api.RateLimit{PerSource: perSource, PerPrincipal: perPrincipal, MaxTracked: 1000},
		Now:       l.clock.Now,
	})
	return l
}

// doFrom sends a request from the source address ip (app.Test cannot
// choose one), with the bearer token given ("" for none).
func doFrom(tb testing.TB, app *fiber.App, ip, method, target, token string) response {
	tb.Helper()
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(target)
	if token != "" {
		req.Header.Set(fiber.HeaderAuthorization, "Bearer "+token)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}, nil)
	app.Handler()(&ctx)
	h := http.Header{}
	ctx.Response.Header.VisitAll(func(k, v []byte) { h.Add(string(k), string(v)) })
	return response{status: ctx.Response.StatusCode(), header: h, body: append([]byte(nil), ctx.Response.Body()...)}
}

// checkLimited asserts a 429 rate-limited problem with Retry-After.
func checkLimited(tb testing.TB, r response, path, retryAfter string) {
	tb.Helper()
	checkProblem(tb, r, http.StatusTooManyRequests, "rate-limited", path)
	if got := r.header.Get(fiber.HeaderRetryAfter); got != retryAfter {
		tb.Errorf("Retry-After %q, want %q", got, retryAfter)
	}
}

// TestRateLimitPerSource: a burst over the source's limit is refused with
// 429, Retry-After and a problem, and the refused requests reach neither
// authentication nor the service; another source is unaffected; after
// the bucket refills (the fake clock moves) the source is admitted again.
func TestRateLimitPerSource(t *testing.T) {
	e := newEnv(t, api.Options{})
	l := newLimited(e, ratelimit.Limits{Rate: 1, Burst: 3}, ratelimit.Limits{Rate: 1000, Burst: 1000})
	const path = "/v1/tenants"
	for i := range 3 {
		if r := doFrom(t, l.app, "10.0.0.1", "GET", path, goodToken); r.status != http.StatusOK {
			t.Fatalf("request %d of the burst: %d %s", i, r.status, r.body)
		}
	}
	for range 10 {
		checkLimited(t, doFrom(t, l.app, "10.0.0.1", "GET", path, goodToken), path, "1")
	}
	if a, s := l.authN.Load(), l.tenantsN.Load(); a != 3 || s != 3 {
		t.Errorf("refused requests reached the services: %d token checks, %d listings, want 3 and 3", a, s)
	}
	// A public route is limited per source too.
	checkLimited(t, doFrom(t, l.app, "10.0.0.1", "GET", "/v1/sys/health", ""), "/v1/sys/health", "1")
	if r := doFrom(t, l.app, "10.0.0.2", "GET", path, goodToken); r.status != http.StatusOK {
		t.Fatalf("another source: %d %s", r.status, r.body)
	}
	l.clock.Advance(999 * time.Millisecond)
	checkLimited(t, doFrom(t, l.app, "10.0.0.1", "GET", path, goodToken), path, "1")
	l.clock.Advance(time.Millisecond)
	if r := doFrom(t, l.app, "10.0.0.1", "GET", path, goodToken); r.status != http.StatusOK {
		t.Fatalf("after the window: %d %s", r.status, r.body)
	}
	checkLimited(t, doFrom(t, l.app, "10.0.0.1", "GET", path, goodToken), path, "1")
	l.clock.Advance(time.Hour)
	for i := range 3 {
		if r := doFrom(t, l.app, "10.0.0.1", "GET", path, goodToken); r.status != http.StatusOK {
			t.Fatalf("request %d of a burst after an hour: %d %s", i, r.status, r.body)
		}
	}
}

// TestRateLimitRetryAfterSeconds: Retry-After is the wait in whole
// seconds, rounded up.
func TestRateLimitRetryAfterSeconds(t *testing.T) {
	e := newEnv(t, api.Options{})
	l := newLimited(e, ratelimit.Limits{Rate: 0.25, Burst: 1}, ratelimit.Limits{Rate: 1000, Burst: 1000})
	if r := doFrom(t, l.app, "10.0.0.1", "GET", "/v1/openapi.json", ""); r.status != http.StatusOK {
		t.Fatalf("first request: %d", r.status)
	}
	checkLimited(t, doFrom(t, l.app, "10.0.0.1", "GET", "/v1/openapi.json", ""), "/v1/openapi.json", "4")
	l.clock.Advance(2500 * time.Millisecond)
	checkLimited(t, doFrom(t, l.app, "10.0.0.1", "GET", "/v1/openapi.json", ""), "/v1/openapi.json", "2")
}

// TestRateLimitPerPrincipal: one API key is limited across all its
// source addresses; the operator, another principal, is not affected,
// and public routes are limited per source only.
func TestRateLimitPerPrincipal(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	key := e.createKey(t, "acme", `{"name":"app","permissions":["read"]}`)
	l := newLimited(e, ratelimit.Limits{Rate: 1000, Burst: 1000}, ratelimit.Limits{Rate: 1, Burst: 3})
	path := "/v1/tenants/acme/collections"
	for i := range 3 {
		if r := doFrom(t, l.app, "10.0.1."+strconv.Itoa(i), "GET", path, key.Token); r.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	checkLimited(t, doFrom(t, l.app, "10.0.1.200", "GET", path, key.Token), path, "1")
	for i := range 3 {
		if r := doFrom(t, l.app, "10.0.1.200", "GET", "/v1/tenants", goodToken); r.status != http.StatusOK {
			t.Fatalf("operator request %d beside the limited key: %d %s", i, r.status, r.body)
		}
		if r := doFrom(t, l.app, "10.0.1.200", "GET", "/v1/sys/audit-key", ""); r.status != http.StatusOK {
			t.Fatalf("public request %d: %d %s", i, r.status, r.body)
		}
	}
	l.clock.Advance(time.Second)
	if r := doFrom(t, l.app, "10.0.1.201", "GET", path, key.Token); r.status != http.StatusOK {
		t.Fatalf("after the window: %d %s", r.status, r.body)
	}
}

// TestRateLimitBadTokenFlood: a flood of bad tokens from one address is
// limited before authentication, so the authenticator sees only the
// burst; a good client elsewhere is served meanwhile.
func TestRateLimitBadTokenFlood(t *testing.T) {
	e := newEnv(t, api.Options{})
	l := newLimited(e, ratelimit.Limits{Rate: 1, Burst: 5}, ratelimit.Limits{Rate: 1000, Burst: 1000})
	for i := range 1000 {
		r := doFrom(t, l.app, "203.0.113.7", "GET", "/v1/tenants", "bad-token-"+strconv.Itoa(i))
		switch {
		case i < 5 && r.status != http.StatusUnauthorized:
			t.Fatalf("bad token %d: %d, want 401", i, r.status)
		case i >= 5 && r.status != http.StatusTooManyRequests:
			t.Fatalf("bad token %d: %d, want 429", i, r.status)
		}
	}
	if n := l.authN.Load(); n != 5 {
		t.Errorf("%d bad tokens reached the authenticator, want 5", n)
	}
	if r := doFrom(t, l.app, "198.51.100.1", "GET", "/v1/tenants", goodToken); r.status != http.StatusOK {
		t.Fatalf("a good client during the flood: %d %s", r.status, r.body)
	}
}

// TestRateLimitManySources: 100,000 distinct source addresses go through
// the API without a refusal (each is new) and the tables stay bounded,
// which package ratelimit's own test checks entry by entry. It asks for
// /v1/sys/health, limited like every route and the cheapest answer
// (the OpenAPI document, a third of a megabyte, made 100,000 copies of
// it: five minutes of make test under -race).
func TestRateLimitManySources(t *testing.T) {
	e := newEnv(t, api.Options{})
	l := newLimited(e, ratelimit.Limits{Rate: 1, Burst: 1}, ratelimit.Limits{Rate: 1000, Burst: 1000})
	for i := range 100_000 {
		ip := net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String()
		if r := doFrom(t, l.app, ip, "GET", "/v1/sys/health", ""); r.status != http.StatusOK {
			t.Fatalf("source %d (%s): %d", i, ip, r.status)
		}
	}
	// The first source was evicted long ago (the table holds 1000): it
	// gets a fresh bucket, not a refusal.
	if r := doFrom(t, l.app, "10.0.0.0", "GET", "/v1/sys/health", ""); r.status != http.StatusOK {
		t.Fatalf("an evicted source: %d", r.status)
	}
	checkLimited(t, doFrom(t, l.app, "10.0.0.0", "GET", "/v1/sys/health", ""), "/v1/sys/health", "1")
}

// TestRateLimitIPv6Prefix: the addresses of one IPv6 /64 share a bucket;
// another /64 has its own.
func TestRateLimitIPv6Prefix(t *testing.T) {
	e := newEnv(t, api.Options{})
	l := newLimited(e, ratelimit.Limits{Rate: 1, Burst: 2}, ratelimit.Limits{Rate: 1000, Burst: 1000})
	const path = "/v1/openapi.json"
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"} {
		if r := doFrom(t, l.app, ip, "GET", path, ""); r.status != http.StatusOK {
			t.Fatalf("%s: %d", ip, r.status)
		}
	}
	checkLimited(t, doFrom(t, l.app, "2001:db8:1:2:abcd::1", "GET", path, ""), path, "1")
	if r := doFrom(t, l.app, "2001:db8:1:3::1", "GET", path, ""); r.status != http.StatusOK {
		t.Fatalf("another /64: %d", r.status)
	}
}
