package browser

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
)

const goodCSP = "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func TestCSPProblems(t *testing.T) {
	for _, c := range []struct {
		policy string
		bad    int
	}{
		{goodCSP, 0},
		{"", 1},
		{"default-src 'self'; script-src 'self' 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'", 1},
		{"default-src *; script-src 'self'", 4},
		{"DEFAULT-SRC 'self';script-src 'self';object-src 'none';frame-ancestors 'none';base-uri 'none'", 0},
	} {
		if got := CSPProblems(c.policy); len(got) != c.bad {
			t.Errorf("CSPProblems(%q) = %q, want %d problems", c.policy, got, c.bad)
		}
	}
}

func TestInlineProblems(t *testing.T) {
	const origin = "https://127.0.0.1:8200"
	for _, c := range []struct {
		html string
		bad  int
	}{
		{`<script src="/ui/assets/app.js"></script><link rel="stylesheet" href="/ui/assets/style.css"><a href="/ui/t/x?y=1">x</a><form action="/ui/login"></form><a href="https://127.0.0.1:8200/ui/">self</a><a href="mailto:dpo@example.com">mail</a>`, 0},
		{`<script>alert(1)</script>`, 1},
		{`<style>p{}</style>`, 1},
		{`<p style="color:red">x</p>`, 1},
		{`<button onclick="x()">x</button>`, 1},
		{`<img src="https://cdn.example/x.png" alt="x">`, 1},
		{`<img src="//cdn.example/x.png" alt="x">`, 1},
		{`<a href="javascript:alert(1)">x</a>`, 1},
		{`<img src="data:image/png;base64,AAAA" alt="x">`, 1},
		{`<script src="https://cdn.example/x.js"></script>`, 1},
		{`<form action="https://evil.example/"></form>`, 1},
		{`<svg><a xlink:href="https://x.example/">x</a></svg>`, 1},
		{`<img srcset="/a.png 1x, https://x.example/b.png 2x" alt="">`, 1},
	} {
		doc, err := html.Parse(strings.NewReader(c.html))
		if err != nil {
			t.Fatal(err)
		}
		if got := InlineProblems(doc, origin); len(got) != c.bad {
			t.Errorf("InlineProblems(%s) = %q, want %d problems", c.html, got, c.bad)
		}
	}
}

// recTB records the errors a check reports instead of failing the test.
type recTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestChecksAreNotBlind serves a page that breaks every rule the browser
// checks and sees each reported, and a page that keeps them with none.
func TestChecksAreNotBlind(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/no-csp.css" && r.URL.Path != "/leak" {
			w.Header().Set("Content-Security-Policy", goodCSP)
		}
		switch r.URL.Path {
		case "/good":
			fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>Good</title><link rel="stylesheet" href="/ok.css"></head><body><main><h1>Good</h1><p>Fine.</p></main></body></html>`)
		case "/bad":
			fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>Bad</title><link rel="stylesheet" href="/no-csp.css"></head><body><main><h1>Bad</h1>
<script>document.title = "x"</script><p style="color:red" onclick="x()">red</p><img src="http://tracker.example/pixel.png"><input name="q"></main></body></html>`)
		case "/leak": // no CSP to stop the image: the proxy sees it
			fmt.Fprint(w, `<!doctype html><html lang="en"><head><title>Leak</title></head><body><main><h1>Leak</h1><img src="https://tracker.example/pixel.png" alt="pixel"></main></body></html>`)
		case "/ok.css", "/no-csp.css":
			w.Header().Set("Content-Type", "text/css")
			fmt.Fprint(w, "p { margin: 0 }")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("CUSTOS_UI_ARTIFACTS", t.TempDir())
	b := Start(t, srv.URL)
	s := b.NewSession(t, "checks")

	good := &recTB{TB: t}
	s.Open(good, "/good")
	if len(good.errs) > 0 {
		t.Errorf("a page that keeps the rules: %q", good.errs)
	}

	bad := &recTB{TB: t}
	p := s.Open(bad, "/bad")
	all := strings.Join(bad.errs, "\n")
	for _, want := range []string{
		"inline <script>",
		"<p style=",
		"onclick",
		"/no-csp.css (HTTP 200) has no proper Content-Security-Policy",
		"a request left the origin: GET https://tracker.example/pixel.png",
		"accessibility: image-alt (critical)",
		"accessibility: label (critical)",
		"the browser reported: ", // the CSP refusing the inline script
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the bad page's report lacks %q:\n%s", want, all)
		}
	}
	if len(p.Axe) < 2 {
		t.Errorf("axe found %v", p.Axe)
	}
	if out := b.Outside(); len(out) != 0 {
		t.Errorf("the CSP stops the image, yet the proxy saw %q", out)
	}
	s.Open(&recTB{TB: t}, "/leak")
	if out := b.Outside(); len(out) != 1 || out[0] != "CONNECT tracker.example:443" {
		t.Errorf("the proxy's record of a page without CSP: %q", out)
	}
}
