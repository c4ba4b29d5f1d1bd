package browser

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Session is one person at the browser: a tab in a browser context of its
// own (its own cookies), whose every request, response and console
// message is recorded so that each page can be checked when it has
// loaded.
type Session struct {
	b      *Browser
	name   string
	ctx    context.Context
	cancel context.CancelFunc
	dl     string // the directory its downloads go to

	mu        sync.Mutex
	requests  []request
	responses []response
	logs      []string
	origins   map[string]bool // every origin a request of the session went to
	seen      []Response      // every response of the session, in order
	checked   map[string]bool // the pages axe has checked (their paths)
}

type request struct {
	url, method string
	typ         network.ResourceType
	headers     network.Headers
}

type response struct {
	id       network.RequestID
	url      string
	status   int64
	headers  network.Headers
	typ      network.ResourceType
	mainPage bool
}

// Timeout bounds each step a test takes in the browser (a page load, a
// click and the page it leads to): generous, as the machine is shared.
const Timeout = 30 * time.Second

// NewSession opens a tab in a new browser context, closed when t ends.
func (b *Browser) NewSession(t testing.TB, name string) *Session {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	s := &Session{b: b, name: name, ctx: ctx, cancel: cancel, dl: t.TempDir(), origins: map[string]bool{}, checked: map[string]bool{}}
	t.Cleanup(cancel)
	if err := chromedp.Listen(ctx, s.on); err != nil {
		t.Fatalf("browser session %s: %v", name, err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("browser session %s: network: %v", name, err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("browser session %s: log: %v", name, err)
	}
	if _, err := chromedp.Call(ctx, cdpruntime.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("browser session %s: runtime: %v", name, err)
	}
	events := true
	if _, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
		DownloadPath: s.dl, EventsEnabled: &events}); err != nil {
		t.Fatalf("browser session %s: downloads: %v", name, err)
	}
	return s
}

// on records the tab's events; it runs in chromedp's reading loop, so it
// only appends (a dialog is answered from another goroutine).
func (s *Session) on(ev any) {
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		s.mu.Lock()
		defer s.mu.Unlock()
		if e.RedirectResponse != nil {
			s.responses = append(s.responses, response{id: e.RequestID, url: e.RedirectResponse.URL, status: e.RedirectResponse.Status, headers: e.RedirectResponse.Headers, typ: e.Type})
			s.seen = append(s.seen, Response{URL: e.RedirectResponse.URL, Status: int(e.RedirectResponse.Status), Type: string(e.Type), Range: header(e.Request.Headers, "Range")})
		}
		s.requests = append(s.requests, request{url: e.Request.URL, method: e.Request.Method, typ: e.Type, headers: e.Request.Headers})
		s.origins[originOf(e.Request.URL)] = true
	case *network.EventResponseReceived:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.responses = append(s.responses, response{id: e.RequestID, url: e.Response.URL, status: e.Response.Status, headers: e.Response.Headers, typ: e.Type,
			mainPage: e.Type == network.ResourceTypeDocument})
		s.seen = append(s.seen, Response{URL: e.Response.URL, Status: int(e.Response.Status), Type: string(e.Type),
			Range: header(e.Response.RequestHeaders, "Range"), ContentRange: header(e.Response.Headers, "Content-Range")})
	case *cdplog.EventEntryAdded:
		// CSP and other security refusals, and script errors; not the
		// network's notes of 4xx answers, which the tests check
		// themselves.
		if e.Entry.Source == cdplog.EntrySourceSecurity || e.Entry.Source == cdplog.EntrySourceViolation ||
			(e.Entry.Level == cdplog.EntryLevelError && e.Entry.Source != cdplog.EntrySourceNetwork) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.logs = append(s.logs, fmt.Sprintf("%s %s: %s (%s)", e.Entry.Source, e.Entry.Level, e.Entry.Text, e.Entry.URL))
		}
	case *cdpruntime.EventExceptionThrown:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.logs = append(s.logs, "uncaught exception: "+e.ExceptionDetails.Text+exceptionDesc(e.ExceptionDetails))
	case *page.EventJavascriptDialogOpening:
		// data-confirm asks before destructive actions: the person says
		// yes (the server checks what matters again).
		go func() {
			_, _ = chromedp.Call(s.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}()
	}
}

func exceptionDesc(d *cdpruntime.ExceptionDetails) string {
	if d.Exception != nil && d.Exception.Description != "" {
		return ": " + d.Exception.Description
	}
	return ""
}

// firstVisit says whether the page "status URL" (by its path) is new to
// s, and marks it seen.
func (s *Session) firstVisit(key string) bool {
	path := key
	if status, raw, ok := strings.Cut(key, " "); ok {
		if u, err := url.Parse(raw); err == nil {
			path = status + " " + u.Path
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checked[path] {
		return false
	}
	s.checked[path] = true
	return true
}

// take returns what was recorded since the last take and starts afresh.
func (s *Session) take() ([]request, []response, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rq, rs, lg := s.requests, s.responses, s.logs
	s.requests, s.responses, s.logs = nil, nil, nil
	return rq, rs, lg
}

// Response is a response the session's tab received: its address, its
// status, its resource type (Document, Media, ...), the Range of the
// request when the browser sent one (as far as DevTools reports the
// request's headers) and the answer's Content-Range.
type Response struct {
	URL                 string
	Status              int
	Type                string
	Range, ContentRange string
}

// Responses are every response the session received whose address
// starts with the node's origin followed by prefix (a path), oldest
// first, over the session's whole life (settle's checks do not consume
// them).
func (s *Session) Responses(prefix string) []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Response
	for _, r := range s.seen {
		if strings.HasPrefix(r.URL, s.b.origin+prefix) {
			out = append(out, r)
		}
	}
	return out
}

// Origins are every origin a request of the session went to.
func (s *Session) Origins() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for o := range s.origins {
		out = append(out, o)
	}
	return out
}

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable " + raw + ")"
	}
	if u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "ws" || u.Scheme == "wss" {
		return u.Scheme + "://" + u.Host
	}
	return u.Scheme + ":"
}

func (s *Session) run(t testing.TB, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %s: %v", s.name, what, err)
	}
}

// loaded runs trigger (a navigation, a click, a submit) and waits for the
// page it leads to.
func (s *Session) loaded(t testing.TB, what string, trigger chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, Timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, trigger)); err != nil {
		t.Fatalf("%s: %s: %v", s.name, what, err)
	}
}

// Open loads path (below the node's origin) and checks the page.
func (s *Session) Open(t testing.TB, path string) *Page {
	t.Helper()
	s.loaded(t, "open "+path, chromedp.Navigate(s.b.origin+path))
	return s.settle(t, path)
}

// Click clicks the element sel (CSS) that leads to another page and
// checks that page.
func (s *Session) Click(t testing.TB, sel string) *Page {
	t.Helper()
	s.loaded(t, "click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	return s.settle(t, "after click on "+sel)
}

// Submit fills the fields of the form sel (CSS) — by name, in the order
// given as name, value pairs — clicks its submit button and checks the
// page the form leads to. A select is set by value; a checkbox is
// checked with the value "on".
func (s *Session) Submit(t testing.TB, sel string, pairs ...string) *Page {
	t.Helper()
	s.Fill(t, sel, pairs...)
	s.loaded(t, "submit "+sel, chromedp.Click(chromedp.CSS(sel+` [type="submit"]`), chromedp.NodeVisible))
	return s.settle(t, "after submit of "+sel)
}

// Fill sets the named fields of the form sel without sending it.
func (s *Session) Fill(t testing.TB, sel string, pairs ...string) {
	t.Helper()
	if len(pairs)%2 != 0 {
		t.Fatalf("Fill %s: odd pairs", sel)
	}
	for i := 0; i < len(pairs); i += 2 {
		field := fmt.Sprintf(`%s [name=%q]`, sel, pairs[i])
		kind, err := Eval[string](s, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? (e.type || e.tagName).toLowerCase() : "missing" })()`, field))
		if err != nil {
			t.Fatalf("%s: field %s: %v", s.name, field, err)
		}
		switch kind {
		case "missing":
			t.Fatalf("%s: the form %s has no field %q (page %s)", s.name, sel, pairs[i], s.URL(t))
		case "hidden", "select-one", "select-multiple", "checkbox", "radio", "file", "date", "datetime-local":
			if kind != "file" {
				js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, field, pairs[i+1])
				if _, err := Eval[bool](s, js); err != nil {
					t.Fatalf("%s: set %s: %v", s.name, field, err)
				}
			}
			if kind == "checkbox" || kind == "radio" {
				js := fmt.Sprintf(`document.querySelector(%q).checked = %t`, field, pairs[i+1] != "")
				if _, err := Eval[bool](s, js); err != nil {
					t.Fatalf("%s: check %s: %v", s.name, field, err)
				}
			}
		default:
			// Typed, as a person does: keyboard events.
			if _, err := Eval[bool](s, fmt.Sprintf(`(() => { document.querySelector(%q).value = ""; return true })()`, field)); err != nil {
				t.Fatalf("%s: clear %s: %v", s.name, field, err)
			}
			s.run(t, "type into "+field, chromedp.SendKeys(chromedp.CSS(field), pairs[i+1]))
		}
	}
}

// Upload sets the file input sel (CSS) to the file at path.
func (s *Session) Upload(t testing.TB, sel, path string) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	s.run(t, "upload to "+sel, chromedp.SetUploadFiles(chromedp.CSS(sel), []string{abs}))
}

// Eval evaluates a JavaScript expression in s's page (promises awaited)
// and decodes its value. DevTools evaluation is not subject to the
// page's CSP.
func Eval[T any](s *Session, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(s.ctx, Timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// MustEval is Eval that fails t on an error.
func MustEval[T any](t testing.TB, s *Session, expr string) T {
	t.Helper()
	v, err := Eval[T](s, expr)
	if err != nil {
		t.Fatalf("%s: evaluate %.80q: %v", s.name, expr, err)
	}
	return v
}

// URL is the page's address now.
func (s *Session) URL(t testing.TB) string {
	t.Helper()
	return MustEval[string](t, s, "location.href")
}

// Text is the visible text of the page now (document.body.innerText).
func (s *Session) Text(t testing.TB) string {
	t.Helper()
	return strings.Join(strings.Fields(MustEval[string](t, s, "document.body.innerText")), " ")
}

// WaitFor polls a JavaScript condition until it is true (or Timeout).
func (s *Session) WaitFor(t testing.TB, what, cond string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, Timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("%s: waiting for %s (%s): %v", s.name, what, cond, err)
	}
}

// Cookies are the session's cookies for the node's origin.
func (s *Session) Cookies(t testing.TB) []*network.Cookie {
	t.Helper()
	r, err := chromedp.Call(s.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.b.origin + "/ui/"}})
	if err != nil {
		t.Fatalf("%s: cookies: %v", s.name, err)
	}
	return r.Cookies
}

// Download clicks sel (a link or a button that makes the browser
// download a file), waits for the download and returns the file's bytes.
func (s *Session) Download(t testing.TB, sel string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, Timeout)
	defer cancel()
	events := chromedp.BrowserEvents(ctx, cdpbrowser.DownloadProgress)
	s.run(t, "click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	for ev, err := range events {
		if err != nil {
			t.Fatalf("%s: download from %s: %v", s.name, sel, err)
		}
		switch ev.State {
		case cdpbrowser.DownloadProgressStateCompleted:
			data, err := os.ReadFile(filepath.Join(s.dl, ev.GUID))
			if err != nil {
				t.Fatalf("%s: downloaded file: %v", s.name, err)
			}
			return data
		case cdpbrowser.DownloadProgressStateCanceled:
			t.Fatalf("%s: the download from %s was canceled", s.name, sel)
		}
	}
	t.Fatalf("%s: no download from %s", s.name, sel)
	return nil
}

// responseBody is the body of a response the tab received.
func (s *Session) responseBody(id network.RequestID) (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, Timeout)
	defer cancel()
	r, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: id})
	if err != nil {
		return "", err
	}
	return string(r.Body), nil
}
