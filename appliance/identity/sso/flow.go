package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Start is a sign-in that started: where to send the browser, and what
// completes it.
type Start struct {
	// AuthURL is the provider's authorization URL (code flow, PKCE S256,
	// state and nonce).
	AuthURL string `json:"authorization_url"`
	// State is the sign-in's id as the provider hands it back.
	State string `json:"state"`
	// Binding ties the sign-in to whoever started it: the callback must
	// present it (the CLI sends it; a browser carries it in a cookie),
	// so that a code and state taken from someone else's browser are
	// worth nothing.
	Binding   string    `json:"binding"`
	ExpiresAt time.Time `json:"expires_at"`
}

// flow is a sign-in under way, as stored: Sealed holds a flowSecret,
// sealed with the tenant's keys and bound to the flow's id.
type flow struct {
	Expires time.Time `json:"expires"`
	Sealed  []byte    `json:"sealed"`
}

// flowSecret is what only the callback may know.
type flowSecret struct {
	Nonce       string `json:"nonce"`
	Verifier    string `json:"verifier"` // the PKCE code verifier
	RedirectURI string `json:"redirect_uri"`
	Binding     []byte `json:"binding"` // SHA-256 of the binding
}

func flowPlace(tenant, id string) keyring.Place {
	return keyring.Place{Tenant: tenant, Collection: "sso_flows", RecordID: id}
}

// random is n random bytes, base64url.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// flowIDLen is the length of a flow id: 32 random bytes, base64url.
const flowIDLen = 43

// ParseState splits a state into its tenant and flow id; ok is false
// for anything Start did not make.
func ParseState(state string) (tenant, id string, ok bool) {
	tenant, id, ok = strings.Cut(state, ".")
	if !ok || !tenancy.ValidID(tenant) || len(id) != flowIDLen {
		return "", "", false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return "", "", false
		}
	}
	return tenant, id, true
}

// checkRedirect admits the settings' redirect URL, or a loopback
// listener of a native client (RFC 8252, section 7.3: http on a
// loopback IP literal, any port) — `custos login --method oidc`.
func checkRedirect(configured, uri string) (string, error) {
	if uri == "" || uri == configured {
		return configured, nil
	}
	u, err := url.Parse(uri)
	if err == nil && u.Scheme == "http" && u.User == nil && u.Fragment == "" && u.Port() != "" && len(uri) <= maxURL {
		if h := u.Hostname(); h == "127.0.0.1" || h == "::1" {
			return uri, nil
		}
	}
	return "", validation.Field("redirect_uri", "must be the tenant's redirect URL or http on 127.0.0.1 or [::1] with a port")
}

// Start begins a sign-in of tenant's users at its provider: it stores the
// flow (its nonce, PKCE verifier and redirect URI, sealed) in the
// tenant's replicated storage, so that any node completes it, and
// returns the authorization URL. redirectURI is "" (the settings'
// redirect URL) or a CLI's loopback listener.
func (s *Service) Start(ctx context.Context, tenant, redirectURI string) (Start, error) {
	st, _, err := s.load(ctx, tenant)
	if err != nil {
		return Start{}, err
	}
	redirectURI, err = checkRedirect(st.RedirectURL, redirectURI)
	if err != nil {
		return Start{}, err
	}
	p, err := s.provider(ctx, &st.Settings)
	if err != nil {
		return Start{}, err
	}
	now := s.opts.Now().UTC()
	id, binding := random(32), random(32)
	bh := sha256.Sum256([]byte(binding))
	sec := flowSecret{Nonce: random(24), Verifier: oauth2.GenerateVerifier(), RedirectURI: redirectURI, Binding: bh[:]}
	pt, err := json.Marshal(sec)
	if err != nil {
		return Start{}, fmt.Errorf("sso: start: %w", err)
	}
	k, err := s.keys.DataKey(ctx, tenant, "")
	if err != nil {
		return Start{}, fmt.Errorf("sso: start: %w", err)
	}
	sealed, err := keyring.Seal(k, flowPlace(tenant, id), pt)
	if err != nil {
		return Start{}, fmt.Errorf("sso: start: %w", err)
	}
	f := flow{Expires: now.Add(s.opts.FlowTTL), Sealed: sealed}
	val, err := json.Marshal(f)
	if err != nil {
		return Start{}, fmt.Errorf("sso: start: %w", err)
	}
	ops, err := s.sweep(ctx, tenant, now)
	if err != nil {
		return Start{}, err
	}
	ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: flowsPath, Key: []byte(id), Value: val})
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: []raftstore.Cond{
			{Kind: raftstore.CondPresent, Bucket: ssoPath, Key: configKey},
			{Kind: raftstore.CondAbsent, Bucket: flowsPath, Key: []byte(id)},
		},
		Ops: ops,
	})
	if err := applied(res, err, "start"); err != nil {
		return Start{}, err
	}
	state := tenant + "." + id
	oc := s.oauth2Config(p, &st.Settings, "", redirectURI)
	return Start{
		AuthURL:   oc.AuthCodeURL(state, oauth2.S256ChallengeOption(sec.Verifier), oidc.Nonce(sec.Nonce)),
		State:     state,
		Binding:   binding,
		ExpiresAt: f.Expires,
	}, nil
}

// sweep returns the deletions of the tenant's expired flows (at most
// 100 at a time), and ErrTooManyFlows when the tenant has MaxFlows
// flows under way that have not expired.
func (s *Service) sweep(ctx context.Context, tenant string, now time.Time) ([]raftstore.Op, error) {
	var ops []raftstore.Op
	var live int
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		r.Scan(flowsPath, nil, 0, func(k, v []byte, _ uint64) bool {
			var f flow
			if json.Unmarshal(v, &f) != nil || !now.Before(f.Expires) {
				if len(ops) < 100 {
					ops = append(ops, raftstore.Op{Kind: raftstore.OpDelete, Bucket: flowsPath, Key: append([]byte(nil), k...)})
				}
				return true
			}
			live++
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sso: start: %w", err)
	}
	if live >= s.opts.MaxFlows {
		return nil, ErrTooManyFlows
	}
	return ops, nil
}

func (s *Service) oauth2Config(p *oidc.Provider, st *Settings, secret, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     st.ClientID,
		ClientSecret: secret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  redirectURI,
		Scopes:       append([]string{oidc.ScopeOpenID}, st.Scopes...),
	}
}

// CallbackInput is what the provider sent back (through the browser or
// the CLI's listener), and the sign-in's binding.
type CallbackInput struct {
	State   string
	Code    string
	Binding string
	// Error is the provider's error code when it sent one instead of a
	// code (access_denied, ...).
	Error string
	// Issuer is the redirect's iss parameter (RFC 9207), when the
	// provider sent one: it must be the provider's issuer, so that a
	// code of another provider is not sent to this one's token endpoint.
	Issuer string
}

// Callback completes a sign-in: it takes the flow its state names (once:
// a second callback with the same state is refused on every node),
// checks the binding, exchanges the code with the PKCE verifier,
// verifies the ID token (signature, issuer, audience, expiry, nonce),
// maps its claims onto a role and scopes and hands the identity to
// Accounts for a session. who carries the request's id and source. A
// refusal is recorded in the tenant's chain (see record; never the code
// or a token); a state that names no flow is not, since anyone can make
// one up.
func (s *Service) Callback(ctx context.Context, who audit.Principal, in CallbackInput) (Session, error) {
	switch {
	case in.State == "":
		return Session{}, validation.Field("state", "is required")
	case in.Code == "" && in.Error == "":
		return Session{}, validation.Field("code", "is required (or the provider's error)")
	}
	tenant, id, ok := ParseState(in.State)
	if !ok {
		return Session{}, refused(ReasonState, nil)
	}
	sec, err := s.take(ctx, tenant, id, in.Binding)
	if err != nil {
		return Session{}, err
	}
	sess, ident, err := s.complete(ctx, who, tenant, sec, in)
	s.record(ctx, who, tenant, ident, err)
	return sess, err
}

// take consumes the flow id of tenant: it is deleted whatever follows,
// so a state is redeemed at most once. It returns the flow's secret once
// the flow proves unexpired and bound to binding.
func (s *Service) take(ctx context.Context, tenant, id, binding string) (flowSecret, error) {
	var v []byte
	var version uint64
	var found bool
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		v, version, found = r.Get(flowsPath, []byte(id))
		return nil
	})
	if errors.Is(err, tenancy.ErrNoTenant) || (err == nil && !found) {
		return flowSecret{}, refused(ReasonState, nil)
	}
	if err != nil {
		return flowSecret{}, fmt.Errorf("sso: callback: %w", err)
	}
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: flowsPath, Key: []byte(id), Version: version}},
		Ops:   []raftstore.Op{{Kind: raftstore.OpDelete, Bucket: flowsPath, Key: []byte(id)}},
	})
	if err := applied(res, err, "callback"); err != nil {
		if errors.Is(err, ErrNotConfigured) {
			return flowSecret{}, refused(ReasonState, nil) // taken meanwhile, or the tenant is gone
		}
		return flowSecret{}, err
	}
	var f flow
	if err := json.Unmarshal(v, &f); err != nil {
		return flowSecret{}, refused(ReasonState, err)
	}
	if !s.opts.Now().Before(f.Expires) {
		return flowSecret{}, refused(ReasonState, errors.New("the sign-in expired"))
	}
	k, err := s.keys.DataKey(ctx, tenant, "")
	if err != nil {
		return flowSecret{}, fmt.Errorf("sso: callback: %w", err)
	}
	pt, err := keyring.Open(k, flowPlace(tenant, id), f.Sealed)
	if err != nil {
		return flowSecret{}, refused(ReasonState, err)
	}
	var sec flowSecret
	if err := json.Unmarshal(pt, &sec); err != nil {
		return flowSecret{}, refused(ReasonState, err)
	}
	bh := sha256.Sum256([]byte(binding))
	if subtle.ConstantTimeCompare(bh[:], sec.Binding) != 1 {
		return flowSecret{}, refused(ReasonState, errors.New("the binding is not the sign-in's"))
	}
	return sec, nil
}

// complete does the provider's part of a callback: the code exchange,
// the ID token's checks, the mapping, and the session.
func (s *Service) complete(ctx context.Context, who audit.Principal, tenant string, sec flowSecret, in CallbackInput) (Session, Identity, error) {
	if in.Error != "" {
		return Session{}, Identity{}, refused(ReasonIdP, fmt.Errorf("the provider answered %q", clip(in.Error)))
	}
	st, _, err := s.load(ctx, tenant)
	if err != nil {
		return Session{}, Identity{}, err
	}
	pc, err := s.discover(ctx, &st.Settings)
	if err != nil {
		return Session{}, Identity{}, err
	}
	p := pc.p
	if in.Issuer != "" && in.Issuer != pc.doc.Issuer {
		return Session{}, Identity{}, refused(ReasonIDToken, fmt.Errorf("the redirect names issuer %q", clip(in.Issuer)))
	}
	secret, err := s.secret(ctx, tenant, &st)
	if err != nil {
		return Session{}, Identity{}, err
	}
	hctx := oidc.ClientContext(ctx, s.opts.HTTPClient)
	tok, err := s.oauth2Config(p, &st.Settings, secret, sec.RedirectURI).Exchange(hctx, in.Code, oauth2.VerifierOption(sec.Verifier))
	if err != nil {
		return Session{}, Identity{}, refused(ReasonExchange, exchangeError(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Session{}, Identity{}, refused(ReasonIDToken, errors.New("the token response has no id_token"))
	}
	templated := strings.Contains(st.Issuer, TenantIDTemplate)
	idt, err := p.Verifier(&oidc.Config{ClientID: st.ClientID, Now: s.opts.Now, SkipIssuerCheck: templated}).Verify(hctx, raw)
	if err != nil {
		return Session{}, Identity{}, refused(ReasonIDToken, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(sec.Nonce)) != 1 {
		return Session{}, Identity{}, refused(ReasonNonce, nil)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return Session{}, Identity{}, refused(ReasonIDToken, err)
	}
	tid, _ := claims["tid"].(string)
	if reason := issuerMatches(st.Issuer, idt.Issuer, tid, st.AllowedTenants); reason != "" {
		return Session{}, Identity{}, refused(reason, fmt.Errorf("issuer %q, tid %q", clip(idt.Issuer), clip(tid)))
	}
	if needsUserInfo(&st.Settings, claims) && p.UserInfoEndpoint() != "" {
		s.addUserInfo(hctx, p, tok, idt.Subject, claims)
	}
	ident := Identity{Issuer: idt.Issuer, Subject: idt.Subject, MFA: mfaDone(st.MFA, claims)}
	ident.Email, _ = claims["email"].(string)
	ident.EmailVerified, _ = claims["email_verified"].(bool)
	ident.Name, _ = claims["name"].(string)
	var ok bool
	if ident.Role, ident.Scopes, ok = mapRole(&st.Settings, claims); !ok {
		return Session{}, ident, refused(ReasonNoRole, nil)
	}
	// The role's MFA rule: Custos cannot ask for its own second factor
	// inside the provider's redirect, so an SSO user of a role that
	// requires MFA must have done it at the provider, and the settings
	// must accept the provider's word for it.
	if r, _ := roles.Builtin(ident.Role); r.RequiresMFA() && !ident.MFA {
		return Session{}, ident, refused(ReasonMFA, nil)
	}
	if s.accounts == nil {
		return Session{}, ident, errors.New("sso: no accounts service: sign-ins cannot end in a session")
	}
	sess, err := s.accounts.SignInSSO(ctx, who, tenant, ident, st.JIT)
	switch {
	case errors.Is(err, ErrUnknownUser):
		return Session{}, ident, refused(ReasonUser, nil)
	case errors.Is(err, ErrUserDisabled):
		return Session{}, ident, refused(ReasonDisabled, nil)
	case errors.Is(err, ErrTenantSuspended):
		return Session{}, ident, refused(ReasonSuspended, nil)
	case err != nil:
		return Session{}, ident, fmt.Errorf("sso: sign-in: %w", err)
	}
	return sess, ident, nil
}

// addUserInfo adds the claims of the userinfo endpoint that the ID
// token lacks, when the endpoint answers for the same subject (OpenID
// Connect Core, 5.3.2); a failure leaves the claims as they were.
func (s *Service) addUserInfo(ctx context.Context, p *oidc.Provider, tok *oauth2.Token, subject string, claims map[string]any) {
	ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		s.log.Warn("sso: userinfo", "err", err)
		return
	}
	extra := map[string]any{}
	if ui.Subject != subject || ui.Claims(&extra) != nil {
		return
	}
	for k, v := range extra {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
}

// exchangeError keeps the provider's error code of a refused exchange
// and drops its body (which may echo what was sent).
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Errorf("the token endpoint answered %q", clip(re.ErrorCode))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%w: %s", ErrProvider, ue.Err)
	}
	return err
}

// record writes a refused callback that redeemed a flow in the tenant's
// chain: "sso.login", outcome failure, its reason, and the provider's
// subject pseudonymised when the token verified (its actor; "unknown"
// before). A success is the session's start, which Accounts records
// (session.login, method sso) in the transaction that starts it: one
// entry per sign-in. A failure to write is logged: the answer stands.
func (s *Service) record(ctx context.Context, who audit.Principal, tenant string, ident Identity, err error) {
	if err == nil {
		return
	}
	details := map[string]string{"reason": "error"}
	var fe *FlowError
	if errors.As(err, &fe) {
		details["reason"] = fe.Reason
	}
	actor := who
	actor.Kind, actor.ID, actor.Tenant = audit.ActorUser, "unknown", tenant
	if ident.Subject != "" {
		ak, kerr := s.keys.AuditKey(ctx, tenant)
		if kerr != nil {
			s.log.Error("sso: audit key", "tenant", tenant, "err", kerr)
			return
		}
		details["issuer"] = clip(ident.Issuer)
		actor.ID = audit.Pseudonym(ak, "idp-subject", ident.Issuer+"\x00"+ident.Subject)
	}
	entry, eerr := actor.Entry(s.opts.Now().UTC(), "sso.login", tenancy.AuditTarget(tenant), audit.OutcomeFailure, details).Encode()
	if eerr == nil {
		_, eerr = s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{Audit: [][]byte{entry}})
	}
	if eerr != nil {
		s.log.Error("sso: record a refused sign-in", "tenant", tenant, "err", eerr)
	}
}
