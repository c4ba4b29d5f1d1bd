//go:build bench

package ui_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/custos/custos/internal/testkit/uitest"
)

// chromium is Debian's (make test-tools installs it with apt).
const chromium = "/usr/bin/chromium"

// renderLoads is how many times each page is loaded in Chromium.
const renderLoads = 10

// firstRender loads each measured page renderLoads times in headless
// Chromium on loopback, signed in as the person the server timings
// used (their session cookies copied into a browser context of their
// own), and reports the time to first render — the page's
// first-contentful-paint, from the start of navigation — as p50 and
// max, the first load (nothing cached) apart, with the DOMContentLoaded
// time beside it.
func firstRender(t *testing.T, n *uitest.Node, owner, operator *uitest.Browser, pages []benchPage) string {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Errorf("time to first render needs Debian's chromium (%v): apt-get install chromium", err)
		return ""
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-component-update", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	root, cancelRoot := chromedp.NewContext(actx)
	defer cancelRoot()
	if err := chromedp.Do(root); err != nil {
		t.Errorf("start chromium: %v", err)
		return ""
	}
	tabs := map[string]context.Context{}
	for name, b := range map[string]*uitest.Browser{"owner": owner, "operator": operator} {
		ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
		defer cancel()
		if err := copyCookies(ctx, n, b); err != nil {
			t.Errorf("cookies of %s: %v", name, err)
			return ""
		}
		tabs[name] = ctx
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "time to first render in headless Chromium (%d loads per page; first load uncached)\n", renderLoads)
	fmt.Fprintf(&sb, "%-42s %-8s %10s %10s %10s %10s\n", "page", "as", "first ms", "FCP p50", "FCP max", "DCL p50")
	for _, bp := range pages {
		ctx := tabs[bp.as]
		var fcp, dcl []float64
		first := -1.0
		for i := range renderLoads {
			lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := chromedp.Do(lctx, chromedp.Navigate(n.URL+bp.url))
			if err != nil { // once more: a navigation can lose its execution context ("Cannot find context")
				err = chromedp.Do(lctx, chromedp.Navigate(n.URL+bp.url))
			}
			var m paintTimes
			if err == nil {
				m, err = chromedp.Run(lctx, chromedp.Poll[paintTimes](`(() => { const p = performance.getEntriesByName("first-contentful-paint")[0]; const nav = performance.getEntriesByType("navigation")[0];
					return p && nav && nav.domContentLoadedEventEnd > 0 ? {fcp: p.startTime, dcl: nav.domContentLoadedEventEnd, path: location.pathname} : null })()`,
					chromedp.WithPollingTimeout(10*time.Second)))
			}
			cancel()
			if err == nil && m.Path != strings.SplitN(bp.url, "?", 2)[0] {
				err = fmt.Errorf("ended at %s, not signed in?", m.Path)
			}
			if err != nil {
				t.Errorf("%s in chromium: %v", bp.url, err)
				break
			}
			if i == 0 {
				first = m.FCP
				continue
			}
			fcp, dcl = append(fcp, m.FCP), append(dcl, m.DCL)
		}
		if len(fcp) == 0 {
			continue
		}
		slices.Sort(fcp)
		slices.Sort(dcl)
		fmt.Fprintf(&sb, "%-42s %-8s %10.1f %10.1f %10.1f %10.1f\n", bp.url, bp.as, first, fcp[len(fcp)/2], fcp[len(fcp)-1], dcl[len(dcl)/2])
	}
	return sb.String()
}

// paintTimes are a load's first-contentful-paint and DOMContentLoaded
// end, in ms from the start of navigation.
type paintTimes struct {
	FCP  float64 `json:"fcp"`
	DCL  float64 `json:"dcl"`
	Path string  `json:"path"`
}

// copyCookies sets b's cookies of the node (its session) in the
// browser context of ctx.
func copyCookies(ctx context.Context, n *uitest.Node, b *uitest.Browser) error {
	u, err := url.Parse(n.URL)
	if err != nil {
		return err
	}
	for _, c := range b.HC.Jar.Cookies(u) {
		if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value, URL: n.URL + "/ui/", Path: "/"}); err != nil {
			return fmt.Errorf("cookie %s: %w", c.Name, err)
		}
	}
	return nil
}
