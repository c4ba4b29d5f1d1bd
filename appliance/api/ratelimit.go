package api

import (
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/ratelimit"
)

// RateLimit bounds how often one source address, and one principal
// across all its sources, may call the API on this node (the limits are
// per node: see package ratelimit for why that is enough). Over a limit
// the request is answered 429 rate-limited with Retry-After, and nothing
// else of it runs.
type RateLimit struct {
	PerSource    ratelimit.Limits
	PerPrincipal ratelimit.Limits
	// MaxTracked bounds each of the two tables (sources, principals).
	MaxTracked int
}

// limiter holds the node's two tables of buckets.
type limiter struct {
	now          func() time.Time
	obs          Observer // nil: none
	perSource    *ratelimit.Table
	perPrincipal *ratelimit.Table
}

func newLimiter(r *RateLimit, now func() time.Time, obs Observer) *limiter {
	if r == nil {
		return nil
	}
	if now == nil {
		now = time.Now
	}
	return &limiter{
		now:          now,
		obs:          obs,
		perSource:    ratelimit.New(r.PerSource, r.MaxTracked),
		perPrincipal: ratelimit.New(r.PerPrincipal, r.MaxTracked),
	}
}

// source takes a token of the request's source address. It runs before
// authentication, on every route, public ones included, so that a flood
// of bad tokens from one address is limited like any other.
func (l *limiter) source(c *fiber.Ctx) error {
	if l == nil {
		return nil
	}
	ok, wait := l.perSource.Allow(sourceKey(c.IP()), l.now())
	return l.refused("source", ok, wait)
}

// sourceKey is the bucket of a source address: an IPv4 address on its
// own, an IPv6 address by its /64 — the block one subscriber or host is
// usually given, so that one machine cannot take a fresh bucket with each
// of its 2^64 addresses.
func sourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap(); a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// principal takes a token of an authenticated principal, wherever its
// requests come from.
func (l *limiter) principal(who audit.Principal) error {
	if l == nil {
		return nil
	}
	ok, wait := l.perPrincipal.Allow(string(who.Kind)+"\x00"+who.Tenant+"\x00"+who.ID, l.now())
	return l.refused("principal", ok, wait)
}

// refused is the error of a refusal by limit (nil when ok), told to the
// observer.
func (l *limiter) refused(limit string, ok bool, wait time.Duration) error {
	if ok {
		return nil
	}
	if l.obs != nil {
		l.obs.ObserveRateLimited(limit)
	}
	return &rateLimitedError{retryAfter: wait}
}

// retryAfterSeconds is Retry-After's value for a wait: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}
