//go:build bench

package ui_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/internal/testkit/uitest"
	"github.com/custos/custos/ui"
)

// benchEnv reads an integer knob of the benchmark (for a quick run while
// changing it), def when unset.
func benchEnv(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, v)
	}
	return n
}

// benchPage is one page measured: where, as whom, and what it cost.
type benchPage struct {
	route, url, as string
	status         int
	p50, p99, max  time.Duration
	min, cpu       time.Duration // the fastest render; the process's CPU time per render
	html, css, js  int           // bytes
	other          int           // images and other assets of /ui/
}

// TestBenchUI is the web UI's performance section of issue 15 (make
// bench; figures in BENCHMARKS.md): an in-process dev node holding 1,000
// tenants, one of which ("acme", with one of everything the pages name)
// has 1,000,000 entries in its audit chain; every page of ui.Pages() is
// opened by a person whose role may read it (the Owner of acme for the
// tenant's pages, an operator user for the cluster's) — UI_BENCH_N times
// after a warm-up, one request at a time over a keep-alive loopback
// connection — and its render time (request sent to last byte read, so
// the server's whole work: the UI handler, its in-process /v1 calls, the
// template) is reported as p50 and p99 (and the fastest, and the CPU
// time the process spent per render: on a shared machine, what the page
// costs apart from waiting for a core), with its weight: the HTML and
// the CSS, JavaScript and images it references. Then the time to first
// render in headless Chromium (TestBenchUI's browser part, when Chromium
// is installed).
//
// Knobs (environment): UI_BENCH_TENANTS (1000), UI_BENCH_AUDIT
// (1000000), UI_BENCH_N (200); UI_BENCH_PROFILE=<route> (such as
// /cluster) writes a CPU profile of the process (the node is in it)
// while that page is timed to ui-<route>.pprof in the temporary
// directory, for finding why a page is slow.
func TestBenchUI(t *testing.T) {
	tenants := benchEnv(t, "UI_BENCH_TENANTS", 1000)
	entries := benchEnv(t, "UI_BENCH_AUDIT", 1_000_000)
	iters := benchEnv(t, "UI_BENCH_N", 200)

	n := uitest.Start(t)
	fx := n.Fixtures(t, "acme")
	began := time.Now()
	n.SeedTenants(t, "seeded", tenants-1, 8)
	t.Logf("seeded %d tenants through the API in %s", tenants-1, time.Since(began).Round(time.Millisecond))
	took := n.SeedAudit(t, fx.Tenant, entries, 365)
	t.Logf("seeded %d audit entries into %s's chain in %s (%.0f entries/s)", entries, fx.Tenant, took.Round(time.Millisecond), float64(entries)/took.Seconds())

	owner := n.User(t, fx.Tenant, "bench-owner", "owner", nil, true)
	op := n.User(t, "", "bench-operator", "operator", nil, true)
	ownerRole, _ := roles.Builtin("owner")
	opRole, _ := roles.Builtin("operator")
	people := []struct {
		p uiPrincipal
		b *uitest.Browser
	}{
		{uiPrincipal{name: "owner", perms: ownerRole.Permissions()}, n.SignInAt(t, owner, "/ui/account")},
		{uiPrincipal{name: "operator", perms: opRole.Permissions(), operator: true}, n.SignInAt(t, op, "/ui/account")},
	}
	ops := api.Operations()
	assets := map[string]int{} // asset URL → bytes, fetched once
	var out []benchPage
	for _, pg := range ui.Pages() {
		path, err := fx.Fill(pg.Path)
		if err != nil {
			t.Fatal(err)
		}
		bp := benchPage{route: pg.Path, url: "/ui" + path}
		who := -1
		for i, w := range people {
			if pg.Need == "" || mayCall(w.p, ops, pg.Need) {
				who = i
				break
			}
		}
		if who < 0 {
			t.Logf("%s: neither the Owner nor the Operator may read it; skipped", bp.url)
			continue
		}
		bp.as = people[who].p.name
		b := people[who].b
		first := b.Get(t, bp.url)
		bp.status = first.Status
		bp.html = len(first.Body)
		for _, ref := range pageAssets(first) {
			size, ok := assets[ref]
			if !ok {
				size = len(b.Get(t, ref).Body)
				assets[ref] = size
			}
			switch {
			case strings.HasSuffix(ref, ".css"):
				bp.css += size
			case strings.HasSuffix(ref, ".js"):
				bp.js += size
			default:
				bp.other += size
			}
		}
		for range 5 {
			timedGet(t, b, bp.url)
		}
		stop := profile(t, pg.Path)
		cpu0 := cpuTime()
		times := make([]time.Duration, iters)
		for i := range times {
			times[i] = timedGet(t, b, bp.url)
		}
		bp.cpu = (cpuTime() - cpu0) / time.Duration(iters)
		stop()
		slices.Sort(times)
		bp.min = times[0]
		bp.p50, bp.p99, bp.max = quantile(times, 0.50), quantile(times, 0.99), times[len(times)-1]
		out = append(out, bp)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "load average now (the machine is shared): %s", loadavg())
	fmt.Fprintf(&sb, "server render (%d requests per page, %d tenants, %d audit entries in acme's chain)\n", iters, tenants, entries)
	fmt.Fprintf(&sb, "%-42s %-8s %4s %7s %7s %7s %7s %7s %8s %7s %6s %6s %8s\n", "page", "as", "HTTP", "min ms", "p50 ms", "p99 ms", "max ms", "CPU ms", "HTML B", "CSS B", "JS B", "img B", "total KB")
	for _, bp := range out {
		total := bp.html + bp.css + bp.js + bp.other
		flag := ""
		if bp.p99 > 50*time.Millisecond {
			flag = "  > 50 ms"
		}
		if total > 150*1024 {
			flag += "  > 150 KB"
		}
		fmt.Fprintf(&sb, "%-42s %-8s %4d %7.2f %7.2f %7.2f %7.2f %7.2f %8d %7d %6d %6d %8.1f%s\n", bp.url, bp.as, bp.status, ms(bp.min), ms(bp.p50), ms(bp.p99), ms(bp.max), ms(bp.cpu), bp.html, bp.css, bp.js, bp.other, float64(total)/1024, flag)
	}
	t.Log("\n" + sb.String())
	if fr := firstRender(t, n, people[0].b, people[1].b, out); fr != "" {
		t.Log("\n" + fr)
	}
}

// timedGet fetches url and reads the whole body: the time from sending
// the request to its last byte.
func timedGet(t *testing.T, b *uitest.Browser, url string) time.Duration {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.N.URL+url, nil)
	start := time.Now()
	resp, err := b.HC.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return d
}

// pageAssets are the same-origin stylesheets, scripts and images a page
// references.
func pageAssets(p *uitest.Page) []string {
	var out []string
	add := func(ref string) {
		if strings.HasPrefix(ref, "/ui/") && !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	for _, l := range p.Elements("link") {
		if strings.Contains(uitest.Attr(l, "rel"), "stylesheet") || uitest.Attr(l, "rel") == "icon" {
			add(uitest.Attr(l, "href"))
		}
	}
	for _, tag := range []string{"script", "img", "audio", "source"} {
		for _, e := range p.Elements(tag) {
			if tag == "audio" || tag == "source" {
				continue // played on demand through Range requests, not part of the page's load
			}
			add(uitest.Attr(e, "src"))
		}
	}
	return out
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// profile starts a CPU profile when UI_BENCH_PROFILE names route, and
// returns what stops it.
func profile(t *testing.T, route string) func() {
	if os.Getenv("UI_BENCH_PROFILE") != route {
		return func() {}
	}
	name := filepath.Join(os.TempDir(), "ui-"+strings.NewReplacer("/", "_", ":", "").Replace(route)+".pprof")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		t.Logf("CPU profile of %s: %s", route, name)
	}
}

// cpuTime is the CPU time (user and system) the process has used: the
// node is in it, so its growth over a page's renders is what they cost
// the machine, whatever else runs on it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadavg is /proc/loadavg's line: how busy the machine was.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown\n"
	}
	return string(b)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
