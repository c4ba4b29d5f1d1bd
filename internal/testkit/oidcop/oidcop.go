// Package oidcop runs a real OpenID Connect provider on loopback for
// tests: zitadel/oidc's OP package (pkg/op) with the in-memory storage
// and login page of its example server (example/server/storage and
// exampleop), imported, not imitated. Tests of single sign-on drive a
// sign-in through it as a browser would: the authorization URL, the
// provider's login form, and the redirect back.
//
// What the example storage lacks is added by embedding it: the users
// and clients a test declares, a "groups" claim (custom scope "groups")
// and any further claims per user (such as Entra's "tid") in ID tokens.
package oidcop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
)

// GroupsScope is the scope that asks for the groups claim.
const GroupsScope = "groups"

// User is a person of the provider.
type User struct {
	ID, Username, Password string
	Email                  string
	EmailVerified          bool
	Groups                 []string
	// Claims are added to the user's ID tokens as they are.
	Claims map[string]any
}

// Client is a confidential web client; its redirect URIs are any http
// URL on 127.0.0.1 or [::1] (any port), besides Redirects.
type Client struct {
	ID, Secret string
	Redirects  []string
}

// Options declare the provider.
type Options struct {
	Users   []User
	Clients []Client
	// IssuerPath is the issuer's path below the server's root ("" for
	// none; "/t1/v2.0" makes an Entra-like issuer).
	IssuerPath string
}

// Provider is a running provider.
type Provider struct {
	// Issuer is the issuer URL, as its tokens name it.
	Issuer string
	// URL is the server's root.
	URL string
}

// Start runs the provider until the test ends.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	issuer := base + o.IssuerPath
	users := userStore{}
	for _, u := range o.Users {
		users[u.ID] = u
	}
	clients := map[string]*storage.Client{}
	for _, c := range o.Clients {
		clients[c.ID] = storage.WebClient(c.ID, c.Secret, c.Redirects...)
	}
	st := &store{Storage: storage.NewStorageWithClients(users, clients), users: users}
	router := exampleop.SetupServer(issuer, st, nil, false)
	h := http.Handler(router)
	if o.IssuerPath != "" {
		// The provider's endpoints are below the issuer; its login page
		// is at the server's root (the example's login URL).
		mux := http.NewServeMux()
		mux.Handle(o.IssuerPath+"/", http.StripPrefix(o.IssuerPath, router))
		mux.Handle("/login/", router)
		h = mux
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return &Provider{Issuer: issuer, URL: base}
}

// Browser is an HTTP client with cookies that follows redirects until
// one goes to a URL stop accepts (nil: never stops).
func Browser(stop func(*url.URL) bool) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 20 {
			return errors.New("oidcop: too many redirects")
		}
		if stop != nil && stop(req.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// SignIn plays a person at the browser: it opens authURL, fills the
// provider's login form with username and password, and returns the
// response the browser ends at (with a stopping Browser: the redirect to
// the relying party, its Location holding code and state).
func (p *Provider) SignIn(browser *http.Client, authURL, username, password string) (*http.Response, error) {
	resp, err := browser.Get(authURL)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != http.StatusOK || id == "" {
		return nil, fmt.Errorf("oidcop: the authorization URL led to %s %s, not the login page", resp.Status, resp.Request.URL.Redacted())
	}
	return browser.PostForm(p.URL+"/login/username", url.Values{"id": {id}, "username": {username}, "password": {password}})
}

// IDToken runs a whole code flow as client (which must be one of the
// provider's) for the user and returns the ID token it is issued, with
// the nonce given: a genuine token of this provider, for tests that
// hand it where another was expected.
func (p *Provider) IDToken(ctx context.Context, c Client, username, password, nonce string) (string, error) {
	ep, err := discover(ctx, p.Issuer)
	if err != nil {
		return "", err
	}
	redirect := "http://127.0.0.1/oidcop-callback"
	oc := &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, Endpoint: ep, RedirectURL: redirect, Scopes: []string{"openid", GroupsScope}}
	verifier := oauth2.GenerateVerifier()
	browser := Browser(func(u *url.URL) bool { return strings.HasPrefix(u.String(), redirect) })
	resp, err := p.SignIn(browser, oc.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce)), username, password)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("oidcop: sign-in ended at %s: %w", resp.Status, err)
	}
	tok, err := oc.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return "", err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("oidcop: no id_token")
	}
	return raw, nil
}

func discover(ctx context.Context, issuer string) (oauth2.Endpoint, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+oidc.DiscoveryEndpoint, nil)
	if err != nil {
		return oauth2.Endpoint{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return oauth2.Endpoint{}, err
	}
	defer resp.Body.Close()
	var d oidc.DiscoveryConfiguration
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return oauth2.Endpoint{}, err
	}
	return oauth2.Endpoint{AuthURL: d.AuthorizationEndpoint, TokenURL: d.TokenEndpoint}, nil
}

// userStore is the example storage's UserStore over the test's users.
type userStore map[string]User

func (u userStore) GetUserByID(id string) *storage.User {
	x, ok := u[id]
	if !ok {
		return nil
	}
	return &storage.User{ID: x.ID, Username: x.Username, Password: x.Password, FirstName: x.Username, LastName: "Test",
		Email: x.Email, EmailVerified: x.EmailVerified}
}

func (u userStore) GetUserByUsername(name string) *storage.User {
	for id, x := range u {
		if x.Username == name {
			return u.GetUserByID(id)
		}
	}
	return nil
}

func (u userStore) ExampleClientID() string { return storage.ServiceUserID }

// store is the example storage with the test's clients widened (the
// groups scope, loopback redirects on any port) and the users' groups
// and claims in their ID tokens.
type store struct {
	*storage.Storage
	users userStore
}

// GetClientByClientID returns the client, widened.
func (s *store) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return client{c}, nil
}

// SetUserinfoFromScopes adds the groups claim and the user's claims.
func (s *store) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, clientID string, scopes []string) error {
	if err := s.Storage.SetUserinfoFromScopes(ctx, ui, userID, clientID, scopes); err != nil {
		return err
	}
	u, ok := s.users[userID]
	if !ok {
		return nil
	}
	if slices.Contains(scopes, GroupsScope) && u.Groups != nil {
		ui.AppendClaims("groups", u.Groups)
	}
	for k, v := range u.Claims {
		ui.AppendClaims(k, v)
	}
	return nil
}

// client widens a client of the example storage.
type client struct{ op.Client }

func (c client) IsScopeAllowed(scope string) bool {
	return scope == GroupsScope || c.Client.IsScopeAllowed(scope)
}

// RedirectURIGlobs admits any loopback http redirect (RFC 8252, 7.3).
func (c client) RedirectURIGlobs() []string {
	return []string{"http://127.0.0.1:*/**", "http://127.0.0.1/**", "http://[[]::1]:*/**"}
}

func (c client) PostLogoutRedirectURIGlobs() []string { return nil }
