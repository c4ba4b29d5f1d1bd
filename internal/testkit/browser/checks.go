package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"
)

// Page is a page the browser loaded, as the server sent it.
type Page struct {
	URL    string // the final address, after redirects
	Path   string // its path and query
	Status int
	Header map[string]string // the document's response headers, names in lower case
	HTML   string            // the document as the server sent it
	Doc    *html.Node
	// Axe are the serious and critical accessibility violations axe-core
	// found (also reported to the test).
	Axe []AxeViolation
}

// RequiredCSP are the directives issue 15 requires of every response's
// Content-Security-Policy.
var RequiredCSP = []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"}

// settle checks the page that has just loaded and everything the browser
// fetched for it, reports each problem to t (as an error: the scenario
// goes on), saves a screenshot, and returns the page.
func (s *Session) settle(t testing.TB, what string) *Page {
	t.Helper()
	reqs, resps, logs := s.take()
	p := &Page{Header: map[string]string{}}
	var doc *response
	for i := range resps {
		r := &resps[i]
		if r.mainPage {
			doc = r
		}
	}
	if doc == nil {
		t.Fatalf("%s: %s: no document was loaded", s.name, what)
	}
	p.URL, p.Status = doc.url, int(doc.status)
	if u, err := url.Parse(doc.url); err == nil {
		p.Path = u.RequestURI()
	}
	for k, v := range doc.headers {
		p.Header[strings.ToLower(k)] = fmt.Sprint(v)
	}
	where := fmt.Sprintf("%s: %s (%s)", s.name, p.Path, what)

	// Acceptance 2: every request stays on the node's origin, and every
	// response of the node carries the CSP.
	for _, rq := range reqs {
		// data: and blob: are no network request (the CSP refuses a
		// page's data: image, and InlineProblems the address in the
		// HTML); Chromium's own controls load theirs (the date picker's
		// icon).
		if o := originOf(rq.url); o != s.b.origin && o != "data:" && o != "blob:" {
			t.Errorf("%s: a request left the origin: %s %s (%s)", where, rq.method, clip(rq.url, 200), rq.typ)
		}
	}
	for _, rs := range resps {
		if originOf(rs.url) != s.b.origin {
			continue
		}
		if problems := CSPProblems(header(rs.headers, "Content-Security-Policy")); len(problems) > 0 {
			t.Errorf("%s: the response of %s (HTTP %d) has no proper Content-Security-Policy: %s", where, rs.url, rs.status, strings.Join(problems, "; "))
		}
	}
	for _, l := range logs {
		t.Errorf("%s: the browser reported: %s", where, l)
	}

	// The HTML the server sent: no inline script or style, no on*
	// handler, nothing from elsewhere.
	body, err := s.responseBody(doc.id)
	if err != nil {
		t.Errorf("%s: the document's body: %v", where, err)
	} else {
		p.HTML = body
		if p.Doc, err = html.Parse(strings.NewReader(body)); err != nil {
			t.Errorf("%s: HTML: %v", where, err)
		}
		for _, prob := range InlineProblems(p.Doc, s.b.origin) {
			t.Errorf("%s: %s", where, prob)
		}
	}

	// Acceptance 3: axe-core, serious and critical violations — once
	// per page (its path without the query, and status) and person: axe
	// takes a second a page on a busy machine, and a page seen again
	// after an action has the same markup.
	if s.firstVisit(fmt.Sprintf("%d %s", p.Status, p.URL)) {
		p.Axe = s.axe(t, where)
	}
	for _, v := range p.Axe {
		t.Errorf("%s: accessibility: %s", where, v)
	}

	s.screenshot(t, p.Path)
	return p
}

func header(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// CSPProblems lists what policy lacks of RequiredCSP.
func CSPProblems(policy string) []string {
	if policy == "" {
		return []string{"no Content-Security-Policy header"}
	}
	have := map[string]string{}
	for _, d := range strings.Split(policy, ";") {
		f := strings.Fields(d)
		if len(f) == 0 {
			continue
		}
		have[strings.ToLower(f[0])] = strings.Join(f[1:], " ")
	}
	var out []string
	for _, want := range RequiredCSP {
		name, value, _ := strings.Cut(want, " ")
		if got, ok := have[name]; !ok || got != value {
			out = append(out, fmt.Sprintf("want %q, have %q", want, name+" "+got))
		}
	}
	return out
}

// urlAttrs are the attributes that make the browser fetch or go to an
// address.
var urlAttrs = map[string]bool{"src": true, "href": true, "action": true, "formaction": true, "poster": true, "srcset": true, "data": true, "xlink:href": true}

// InlineProblems lists what in doc breaks the UI's rules: an inline
// script (a <script> without src, or a src elsewhere), a <style> element
// or style attribute, an on* event handler attribute, and any address
// that is not the node's own (another origin, javascript:, data:).
func InlineProblems(doc *html.Node, origin string) []string {
	if doc == nil {
		return nil
	}
	var out []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			tag := n.Data
			if tag == "script" && attr(n, "src") == "" {
				out = append(out, fmt.Sprintf("inline <script>: %q", clip(text(n), 80)))
			}
			if tag == "style" {
				out = append(out, fmt.Sprintf("inline <style>: %q", clip(text(n), 80)))
			}
			for _, a := range n.Attr {
				key := strings.ToLower(a.Key)
				if a.Namespace != "" {
					key = a.Namespace + ":" + key
				}
				switch {
				case key == "style":
					out = append(out, fmt.Sprintf("<%s style=%q>", tag, clip(a.Val, 80)))
				case strings.HasPrefix(key, "on"):
					out = append(out, fmt.Sprintf("<%s %s=%q>: an inline event handler", tag, key, clip(a.Val, 80)))
				case urlAttrs[key] || strings.HasSuffix(key, ":href"):
					if bad := foreignURL(a.Val, origin); bad != "" {
						out = append(out, fmt.Sprintf("<%s %s=%q>: %s", tag, key, clip(a.Val, 120), bad))
					}
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

// foreignURL says why ref leaves the origin ("" when it does not). A
// srcset's candidates are checked each.
func foreignURL(ref, origin string) string {
	for _, cand := range strings.Split(ref, ",") {
		f := strings.Fields(cand)
		if len(f) == 0 {
			continue
		}
		u, err := url.Parse(f[0])
		if err != nil {
			return "an address that does not parse"
		}
		switch {
		case u.Scheme == "" && u.Host == "":
			// Relative: the page's own origin.
		case u.Scheme == "" && u.Host != "":
			return "a scheme-relative address elsewhere"
		case strings.EqualFold(u.Scheme, "javascript"):
			return "a javascript: address"
		case strings.EqualFold(u.Scheme, "data"):
			return "a data: address (the CSP refuses it)"
		case strings.EqualFold(u.Scheme, "mailto"):
			return ""
		case strings.ToLower(u.Scheme)+"://"+strings.ToLower(u.Host) != strings.ToLower(origin):
			return "an address of another origin"
		}
	}
	return ""
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return strings.TrimSpace(b.String())
}

// AxeViolation is one rule axe-core found broken, with the elements.
type AxeViolation struct {
	ID      string    `json:"id"`
	Impact  string    `json:"impact"`
	Help    string    `json:"help"`
	HelpURL string    `json:"helpUrl"`
	Nodes   []AxeNode `json:"nodes"`
}

// AxeNode is one element that breaks a rule.
type AxeNode struct {
	Target  string `json:"target"`
	HTML    string `json:"html"`
	Summary string `json:"summary"`
}

func (v AxeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n\t\t%s  %s\n\t\t  %s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", " "))
	}
	return b.String()
}

// axeRun runs axe on the document and keeps the serious and critical
// violations, five elements of each.
const axeRun = `(async () => {
  const r = await axe.run(document, {resultTypes: ["violations"]});
  return r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(" "), html: n.html.slice(0, 240), summary: n.failureSummary || ""}))
  }));
})()`

// axe injects axe-core into the page (unless it is there already) and
// runs it.
func (s *Session) axe(t testing.TB, where string) []AxeViolation {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, Timeout)
	defer cancel()
	has, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === "object"`))
	if err != nil {
		t.Errorf("%s: axe-core: %v", where, err)
		return nil
	}
	if !has {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](s.b.axe+"\n;true")); err != nil {
			t.Errorf("%s: inject axe-core: %v", where, err)
			return nil
		}
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Errorf("%s: run axe-core: %v", where, err)
		return nil
	}
	var out []AxeViolation
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Errorf("%s: axe-core's result: %v", where, err)
	}
	return out
}

// screenshot saves the page as the next PNG of the artifacts.
func (s *Session) screenshot(t testing.TB, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, Timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("%s: screenshot of %s: %v", s.name, path, err)
		return
	}
	file := s.b.screenshotPath(s.name + " " + path)
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
	}
}

// Shot saves a screenshot of the page as it is now (after a change made
// in place, such as a recording playing), named what.
func (s *Session) Shot(t testing.TB, what string) {
	t.Helper()
	s.screenshot(t, what)
}
