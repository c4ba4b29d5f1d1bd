// Package uitest runs the web UI for tests: a real dev node in process
// (its raft store, services, API and UI on a loopback port), people of
// every role signed in through the UI's own login form with a cookie jar,
// and the pages they get parsed as HTML. The browser tests drive real
// Chromium against the binary; these tests check what the server sends.
package uitest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"
	"golang.org/x/net/html"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/config"
	"github.com/custos/custos/appliance/node"
)

// Password is every test user's password.
const Password = "correct horse battery staple 42"

// Node is a dev node serving the UI.
type Node struct {
	URL   string // http://127.0.0.1:port
	Token string // the operator token
	N     *node.Node

	mu    sync.Mutex
	users map[string]*User  // by tenant/username
	keys  map[string]string // tenant → an Owner API key made while bootstrapping
}

// Start starts a dev node in process; it is closed when t ends.
func Start(t testing.TB) *Node {
	t.Helper()
	cfg, err := config.Load(config.Options{Environ: []string{"CUSTOS_DEV=true", "CUSTOS_API__LISTEN_ADDRESS=127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(context.Background(), cfg, node.Options{Version: "uitest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return &Node{URL: "http://" + n.APIAddress(), Token: n.Token, N: n, users: map[string]*User{}, keys: map[string]string{}}
}

// API is the /v1 client of the operator token.
func (n *Node) API() *client.Client { return client.New(n.URL, client.Options{Token: n.Token}) }

// APIAs is the /v1 client of another token.
func (n *Node) APIAs(token string) *client.Client {
	return client.New(n.URL, client.Options{Token: token})
}

// Tenant creates a tenant (region "local", the dev node's) with an Owner
// API key, and returns the key's client.
func (n *Node) Tenant(t testing.TB, id string) *client.Client {
	t.Helper()
	ctx := context.Background()
	if _, err := n.API().CreateTenant(ctx, client.NewTenant{ID: id, DisplayName: "Tenant " + id, Region: n.N.Store().Region()}); err != nil {
		t.Fatalf("create tenant %s: %v", id, err)
	}
	k, err := n.API().CreateAPIKey(ctx, id, client.NewAPIKey{Name: "uitest-owner", Role: "owner"})
	if err != nil {
		t.Fatalf("owner key of %s: %v", id, err)
	}
	n.mu.Lock()
	n.keys[id] = k.Token
	n.mu.Unlock()
	return n.APIAs(k.Token)
}

// OwnerAPI is the Owner API key's client of a tenant made by Tenant.
func (n *Node) OwnerAPI(tenant string) *client.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.APIAs(n.keys[tenant])
}

// User is a person with a password and, when their role requires it (or
// always, for simplicity), an enrolled authenticator.
type User struct {
	Tenant, Username, ID, Role string
	URI                        string // the otpauth URI; "" without a second factor
	Recovery                   []string
	lastStep                   int64
	mu                         sync.Mutex
}

// Code is a TOTP code never used before for u: the current step's, or
// the next one's (the server accepts one step of skew) when the current
// was used; a recovery code when both were.
func (u *User) Code(t testing.TB) string {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	step := time.Now().Unix() / 30
	if step <= u.lastStep {
		step = u.lastStep + 1
	}
	if step > time.Now().Unix()/30+1 {
		if len(u.Recovery) == 0 {
			t.Fatal("uitest: no TOTP step or recovery code left")
		}
		c := u.Recovery[0]
		u.Recovery = u.Recovery[1:]
		return c
	}
	u.lastStep = step
	k, err := otp.NewKeyFromURL(u.URI)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pqtotp.GenerateCodeCustom(k.Secret(), time.Unix(step*30, 0), pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// User creates a user of tenant (made by Tenant; "" for an operator user)
// with a role and scopes, and enrols a second factor when mfa or the
// role requires one.
func (n *Node) User(t testing.TB, tenant, username, role string, scopes map[string][]string, mfa bool) *User {
	t.Helper()
	ctx := context.Background()
	var created client.User
	var err error
	if tenant == "" {
		created, err = n.API().CreateOperator(ctx, client.NewOperator{Username: username, Password: Password})
	} else {
		created, err = n.OwnerAPI(tenant).CreateUser(ctx, tenant, client.NewUser{Username: username, Password: Password, Role: role, Scopes: scopes})
	}
	if err != nil {
		t.Fatalf("create user %s/%s: %v", tenant, username, err)
	}
	u := &User{Tenant: tenant, Username: username, ID: created.ID, Role: created.Role}
	g, err := n.APIAs("").Login(ctx, client.Login{Tenant: tenant, Username: username, Password: Password})
	if err != nil {
		t.Fatalf("login %s/%s: %v", tenant, username, err)
	}
	if mfa || g.MFAEnrolmentRequired {
		api := n.APIAs(g.AccessToken)
		en, err := api.EnrolMFA(ctx)
		if err != nil {
			t.Fatalf("enrol %s: %v", username, err)
		}
		u.URI = en.URI
		if u.Recovery, err = api.ConfirmMFA(ctx, u.Code(t)); err != nil {
			t.Fatalf("confirm %s: %v", username, err)
		}
	}
	n.mu.Lock()
	n.users[tenant+"/"+username] = u
	n.mu.Unlock()
	return u
}

// Browser is a cookie-keeping HTTP client of the UI: what a browser does
// with forms and redirects, without JavaScript.
type Browser struct {
	N    *Node
	HC   *http.Client
	CSRF string
}

// NewBrowser is a browser with no cookie yet.
func (n *Node) NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{N: n, HC: &http.Client{Jar: jar, Timeout: time.Minute}}
}

// SignIn signs u in through the login form (and its code step).
func (n *Node) SignIn(t testing.TB, u *User) *Browser {
	t.Helper()
	return n.SignInAt(t, u, "/ui/")
}

// SignInAt signs u in and lands on next (a path below /ui/).
func (n *Node) SignInAt(t testing.TB, u *User, next string) *Browser {
	t.Helper()
	b := n.NewBrowser()
	b.Get(t, "/ui/login")
	form := url.Values{"tenant": {u.Tenant}, "username": {u.Username}, "password": {Password}, "next": {next}}
	if u.URI != "" {
		form.Set("code", u.Code(t))
	}
	p := b.Post(t, "/ui/login", form)
	if p.Status != http.StatusOK || strings.HasPrefix(p.Path, "/ui/login") {
		t.Fatalf("sign in %s/%s: HTTP %d at %s:\n%s", u.Tenant, u.Username, p.Status, p.Path, p.Text())
	}
	return b
}

// SignInToken signs in with the operator token (dev nodes only).
func (n *Node) SignInToken(t testing.TB) *Browser {
	t.Helper()
	b := n.NewBrowser()
	b.Get(t, "/ui/login")
	p := b.Post(t, "/ui/login", url.Values{"token": {n.Token}, "next": {"/ui/"}})
	if p.Status != http.StatusOK || strings.HasPrefix(p.Path, "/ui/login") {
		t.Fatalf("sign in with the token: HTTP %d at %s", p.Status, p.Path)
	}
	return b
}

// Page is one response, after redirects.
type Page struct {
	Status int
	Path   string // the final URL's path and query
	Header http.Header
	Body   string
	doc    *html.Node
}

// Get fetches path and follows redirects.
func (b *Browser) Get(t testing.TB, path string) *Page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.N.URL+path, nil)
	return b.do(t, req)
}

// Post sends a form as the UI's pages do: with the CSRF token, from this
// origin.
func (b *Browser) Post(t testing.TB, path string, form url.Values) *Page {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if !form.Has("csrf") {
		form.Set("csrf", b.CSRF)
	}
	req, _ := http.NewRequest(http.MethodPost, b.N.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.N.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(t, req)
}

// Do sends any request (a test's forged one, say).
func (b *Browser) Do(t testing.TB, req *http.Request) *Page { t.Helper(); return b.do(t, req) }

func (b *Browser) do(t testing.TB, req *http.Request) *Page {
	t.Helper()
	resp, err := b.HC.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(b.N.URL)
	for _, c := range b.HC.Jar.Cookies(u) {
		if strings.HasSuffix(c.Name, "custos-csrf") {
			b.CSRF = c.Value
		}
	}
	p := &Page{Status: resp.StatusCode, Path: resp.Request.URL.RequestURI(), Header: resp.Header, Body: string(body)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(strings.NewReader(p.Body)); err != nil {
			t.Fatalf("%s: HTML: %v", p.Path, err)
		}
	}
	return p
}

// Doc is the parsed page (nil when it is not HTML).
func (p *Page) Doc() *html.Node { return p.doc }

// Text is the page's visible text, whitespace collapsed.
func (p *Page) Text() string {
	if p.doc == nil {
		return p.Body
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style" || n.Data == "head") {
			return
		}
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.doc)
	return strings.Join(strings.Fields(b.String()), " ")
}

// Elements are the elements named tag ("" for all), in document order.
func (p *Page) Elements(tag string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (tag == "" || n.Data == tag) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if p.doc != nil {
		walk(p.doc)
	}
	return out
}

// Attr is an element's attribute ("" when absent).
func Attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// Links are the hrefs of the page's <a> elements.
func (p *Page) Links() []string {
	var out []string
	for _, a := range p.Elements("a") {
		if h := Attr(a, "href"); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// Actions are the API routes ("METHOD /path") the page's forms and links
// declare with data-api: what the page offers the person to do.
func (p *Page) Actions() []string {
	var out []string
	for _, n := range p.Elements("") {
		if v := Attr(n, "data-api"); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// NavLinks are the hrefs of the main navigation.
func (p *Page) NavLinks() []string {
	var out []string
	for _, nav := range p.Elements("nav") {
		if Attr(nav, "aria-label") != "Main" {
			continue
		}
		sub := &Page{doc: nav}
		out = append(out, sub.Links()...)
	}
	return out
}

// Must fails t unless the page answered status.
func (p *Page) Must(t testing.TB, status int) *Page {
	t.Helper()
	if p.Status != status {
		t.Fatalf("%s: HTTP %d, want %d:\n%s", p.Path, p.Status, status, clip(p.Text(), 2000))
	}
	return p
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// String names the page in failures.
func (p *Page) String() string { return fmt.Sprintf("%s (HTTP %d)", p.Path, p.Status) }
