package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// cachedProvider is a provider's discovery document, as go-oidc keeps it
// (with its key set, which refreshes itself on an unknown key id).
type cachedProvider struct {
	p   *oidc.Provider
	doc discoveryDoc
	at  time.Time
}

// maxDiscovery bounds a discovery document.
const maxDiscovery = 1 << 20

// provider returns the settings' provider, discovering it on first use
// and after DiscoveryTTL. A provider whose discovery document names
// another issuer than the settings is refused (ErrProvider).
func (s *Service) provider(ctx context.Context, st *Settings) (*oidc.Provider, error) {
	c, err := s.discover(ctx, st)
	return c.p, err
}

// discover is provider with the discovery document.
func (s *Service) discover(ctx context.Context, st *Settings) (cachedProvider, error) {
	key := st.Issuer + "\x00" + st.DiscoveryURL
	now := s.opts.Now()
	s.mu.Lock()
	c, ok := s.providers[key]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < s.opts.DiscoveryTTL && now.Sub(c.at) >= 0 {
		return c, nil
	}
	ctx = oidc.ClientContext(ctx, s.opts.HTTPClient)
	c = cachedProvider{at: now}
	var err error
	if st.DiscoveryURL != "" {
		c.p, c.doc, err = s.discoverAt(ctx, st)
	} else {
		c.p, err = oidc.NewProvider(ctx, st.Issuer)
	}
	if err == nil && c.doc.Issuer == "" {
		err = c.p.Claims(&c.doc)
	}
	if err != nil {
		return cachedProvider{}, fmt.Errorf("%w: discovery of %s: %w", ErrProvider, st.Issuer, err)
	}
	s.mu.Lock()
	s.providers[key] = c
	s.mu.Unlock()
	return c, nil
}

// discoveryDoc is what the service reads of a discovery document
// (OpenID Connect Discovery 1.0, section 3).
type discoveryDoc struct {
	Issuer      string   `json:"issuer"`
	AuthURL     string   `json:"authorization_endpoint"`
	TokenURL    string   `json:"token_endpoint"`
	JWKSURL     string   `json:"jwks_uri"`
	UserInfoURL string   `json:"userinfo_endpoint"`
	Algorithms  []string `json:"id_token_signing_alg_values_supported"`
}

// parseDiscovery decodes a discovery document found at a discovery URL
// of the settings: its issuer must be the settings' issuer or, for a
// template, the template itself (Entra's "organizations" and "common"
// documents name it so) or the template for one of the allowed
// directories; and it must name https (or loopback http) endpoints for
// authorization, tokens and keys.
func parseDiscovery(body []byte, template string, allowed []string) (discoveryDoc, error) {
	var d discoveryDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return discoveryDoc{}, fmt.Errorf("discovery document: %w", err)
	}
	ok := d.Issuer == template || strings.Contains(template, TenantIDTemplate) && slices.ContainsFunc(allowed, func(tid string) bool {
		return d.Issuer == strings.Replace(template, TenantIDTemplate, tid, 1)
	})
	if !ok {
		return discoveryDoc{}, fmt.Errorf("discovery document names issuer %q, not %q", clip(d.Issuer), template)
	}
	for _, u := range []string{d.AuthURL, d.TokenURL, d.JWKSURL} {
		if err := checkURL(u, false); err != nil {
			return discoveryDoc{}, fmt.Errorf("discovery document: an endpoint %s", err)
		}
	}
	if d.UserInfoURL != "" {
		if err := checkURL(d.UserInfoURL, false); err != nil {
			return discoveryDoc{}, fmt.Errorf("discovery document: the userinfo endpoint %s", err)
		}
	}
	return d, nil
}

// discoverAt reads the discovery document at the settings' discovery
// URL (a templated issuer's, or one not below its issuer). go-oidc
// checks a discovered issuer only when it is found below the issuer
// itself, so it is checked here (parseDiscovery); a template's tokens'
// issuers are checked against their tid in Callback.
func (s *Service) discoverAt(ctx context.Context, st *Settings) (*oidc.Provider, discoveryDoc, error) {
	u := strings.TrimSuffix(st.DiscoveryURL, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, discoveryDoc{}, err
	}
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, discoveryDoc{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscovery))
	if err != nil {
		return nil, discoveryDoc{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, discoveryDoc{}, fmt.Errorf("discovery document: %s", resp.Status)
	}
	d, err := parseDiscovery(body, st.Issuer, st.AllowedTenants)
	if err != nil {
		return nil, discoveryDoc{}, err
	}
	pc := oidc.ProviderConfig{IssuerURL: d.Issuer, AuthURL: d.AuthURL, TokenURL: d.TokenURL, JWKSURL: d.JWKSURL, UserInfoURL: d.UserInfoURL, Algorithms: d.Algorithms}
	return pc.NewProvider(ctx), d, nil
}

// TestResult is what a test of the settings found: whether the provider
// answered as the settings expect and the client secret opens, the
// provider's endpoints from its discovery document, or what failed.
type TestResult struct {
	OK bool `json:"ok"`
	// Error says what failed (!OK): the provider's discovery (its
	// address, status or issuer), or the client secret.
	Error                 string   `json:"error,omitempty"`
	Issuer                string   `json:"issuer,omitempty"`
	AuthorizationEndpoint string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint         string   `json:"token_endpoint,omitempty"`
	UserInfoEndpoint      string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI               string   `json:"jwks_uri,omitempty"`
	SigningAlgorithms     []string `json:"signing_algorithms,omitempty"`
	ClientSecret          string   `json:"client_secret,omitempty"` // "none", "opens"
}

// Test discovers the tenant's provider afresh (not from the cache) and
// checks that the stored client secret opens with the tenant's keys: a
// provider that cannot be reached, or answers another issuer, is a
// result (OK false, Error saying what), not an error. The test is
// recorded in the tenant's chain ("sso.test", success or failure): it
// makes the node call out to the URL the settings name.
func (s *Service) Test(ctx context.Context, who audit.Principal, tenant string) (TestResult, error) {
	st, _, err := s.load(ctx, tenant)
	if err != nil {
		return TestResult{}, err
	}
	res, err := s.test(ctx, tenant, &st)
	switch {
	case errors.Is(err, ErrProvider), errors.Is(err, keyring.ErrOpen):
		res, err = TestResult{Error: clipN(err.Error(), 512)}, nil
	case err == nil:
		res.OK = true
	}
	outcome, details := audit.OutcomeSuccess, map[string]string{"issuer": clip(st.Issuer)}
	if !res.OK {
		outcome = audit.OutcomeFailure
	}
	entry, eerr := who.Entry(s.opts.Now().UTC(), "sso.test", tenancy.AuditTarget(tenant), outcome, details).Encode()
	if eerr == nil {
		var r raftstore.Result
		r, eerr = s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{Audit: [][]byte{entry}})
		eerr = applied(r, eerr, "test")
	}
	if eerr != nil {
		return TestResult{}, eerr
	}
	return res, err
}

func (s *Service) test(ctx context.Context, tenant string, st *stored) (TestResult, error) {
	s.mu.Lock()
	delete(s.providers, st.Issuer+"\x00"+st.DiscoveryURL)
	s.mu.Unlock()
	c, err := s.discover(ctx, &st.Settings)
	if err != nil {
		return TestResult{}, err
	}
	d := c.doc
	out := TestResult{Issuer: d.Issuer, AuthorizationEndpoint: d.AuthURL, TokenEndpoint: d.TokenURL, UserInfoEndpoint: d.UserInfoURL,
		JWKSURI: d.JWKSURL, SigningAlgorithms: d.Algorithms, ClientSecret: "none"}
	if st.Secret != nil {
		if _, err := s.secret(ctx, tenant, st); err != nil {
			return TestResult{}, err
		}
		out.ClientSecret = "opens"
	}
	return out, nil
}
