package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Keys are the tenant keys the service seals with and pseudonymises
// with; *keyring.Hierarchy implements it.
type Keys interface {
	DataKey(ctx context.Context, tenant, subject string) (*keyring.Key, error)
	AuditKey(ctx context.Context, tenant string) ([]byte, error)
}

var _ Keys = (*keyring.Hierarchy)(nil)

// Accounts finds or creates the user an identity maps onto and issues
// its session: the accounts service implements it (the node adapts
// it). It is the only way a sign-in becomes a session, so sessions of
// SSO users are the sessions of every user (same tokens, same checks).
type Accounts interface {
	// SignInSSO finds the tenant's user linked to id.Issuer and
	// id.Subject; when there is none and jit is true it creates one.
	// It binds the user to id.Role and id.Scopes (the provider decides
	// them at every sign-in), counts id.MFA as MFA done for the rule
	// of roles that require it, and issues a session. It records the
	// user's creation, any change of its role and the session's start
	// (the successful sign-in) in the tenant's audit chain; this package
	// records refused sign-ins. Errors: ErrUnknownUser (no such user,
	// jit false), ErrUserDisabled, ErrTenantSuspended.
	SignInSSO(ctx context.Context, who audit.Principal, tenant string, id Identity, jit bool) (Session, error)
}

// Session is what a sign-in ends in: the access and refresh tokens of a
// session, as a password login answers them.
type Session struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	TokenType    string `json:"token_type"`
	// Session is the session's id.
	Session              string `json:"session"`
	MFAEnrolmentRequired bool   `json:"mfa_enrolment_required"`
	// UserID is the user the session is of (audit; not answered).
	UserID string `json:"-"`
}

// Options tune the service.
type Options struct {
	// HTTPClient reaches the providers (default: a client with a
	// 10-second timeout).
	HTTPClient *http.Client
	// Now is the clock of flows and of ID-token expiry (default
	// time.Now).
	Now func() time.Time
	// FlowTTL is how long a sign-in may take from start to callback
	// (default 10 minutes).
	FlowTTL time.Duration
	// MaxFlows bounds the sign-ins under way per tenant (default 1000).
	MaxFlows int
	// DiscoveryTTL is how long a provider's discovery document is kept
	// (default 1 hour; its keys are refreshed when a token names an
	// unknown one).
	DiscoveryTTL time.Duration
	Logger       *slog.Logger
}

// Service is the single sign-on of every tenant. It is safe for
// concurrent use; everything it keeps between calls is in the
// replicated store, except its cache of providers' discovery documents.
type Service struct {
	tenancy  *tenancy.Boundary
	keys     Keys
	accounts Accounts
	opts     Options
	log      *slog.Logger

	mu        sync.Mutex
	providers map[string]cachedProvider
}

// New makes the service. accounts may be nil until the accounts
// service exists; Callback then refuses every sign-in.
func New(b *tenancy.Boundary, keys Keys, accounts Accounts, o Options) *Service {
	if b == nil || keys == nil {
		panic("sso: New needs the tenancy boundary and the keys")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FlowTTL <= 0 {
		o.FlowTTL = 10 * time.Minute
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = 1000
	}
	if o.DiscoveryTTL <= 0 {
		o.DiscoveryTTL = time.Hour
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{tenancy: b, keys: keys, accounts: accounts, opts: o, log: log, providers: map[string]cachedProvider{}}
}

// Storage below the tenant's bucket.
var (
	ssoPath   = raftstore.Path("sso")
	flowsPath = raftstore.Path("sso_flows")
	configKey = []byte("config")
)

// stored is the settings as kept: the secret sealed.
type stored struct {
	Config
	Secret []byte `json:"sealed_secret,omitempty"`
}

// secretPlace binds the sealed client secret to its tenant and use.
func secretPlace(tenant string) keyring.Place {
	return keyring.Place{Tenant: tenant, Collection: "sso", Field: "client_secret"}
}

// Configure sets the tenant's settings (replacing any), seals the client
// secret with the tenant's keys, and records the change in the tenant's
// chain (never the secret). An empty ClientSecret keeps the stored one.
func (s *Service) Configure(ctx context.Context, who audit.Principal, tenant string, in Settings) (Config, error) {
	if err := in.normalize(); err != nil {
		return Config{}, err
	}
	cur, version, err := s.load(ctx, tenant)
	if err != nil && !errors.Is(err, ErrNotConfigured) {
		return Config{}, err
	}
	secret := "none"
	st := stored{Config: Config{Settings: in, UpdatedAt: s.opts.Now().UTC()}}
	switch {
	case in.ClientSecret != "":
		k, err := s.keys.DataKey(ctx, tenant, "")
		if err != nil {
			return Config{}, fmt.Errorf("sso: configure: %w", err)
		}
		if st.Secret, err = keyring.Seal(k, secretPlace(tenant), []byte(in.ClientSecret)); err != nil {
			return Config{}, fmt.Errorf("sso: configure: %w", err)
		}
		secret = "set"
	case cur.Secret != nil:
		st.Secret, secret = cur.Secret, "kept"
	}
	st.ClientSecret = ""
	st.SecretSet = st.Secret != nil
	val, err := json.Marshal(st)
	if err != nil {
		return Config{}, fmt.Errorf("sso: configure: %w", err)
	}
	entry, err := who.Entry(st.UpdatedAt, "sso.configure", tenancy.AuditTarget(tenant), audit.OutcomeSuccess, map[string]string{
		"preset": in.Preset, "issuer": clip(in.Issuer), "client_id": clip(in.ClientID), "client_secret": secret,
		"jit": fmt.Sprint(in.JIT), "mfa_trust_idp": fmt.Sprint(in.MFA.TrustIdP), "mappings": fmt.Sprint(len(in.Mappings)),
		"default_role": in.DefaultRole,
	}).Encode()
	if err != nil {
		return Config{}, fmt.Errorf("sso: configure: %w", err)
	}
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondVersion, Bucket: ssoPath, Key: configKey, Version: version}},
		Ops:   []raftstore.Op{{Kind: raftstore.OpPut, Bucket: ssoPath, Key: configKey, Value: val}},
		Audit: [][]byte{entry},
	})
	if err := applied(res, err, "configure"); err != nil {
		return Config{}, err
	}
	return st.Config, nil
}

// Get returns the tenant's settings (without the secret).
func (s *Service) Get(ctx context.Context, tenant string) (Config, error) {
	st, _, err := s.load(ctx, tenant)
	return st.Config, err
}

// Delete removes the tenant's settings: from then on no sign-in of the
// tenant starts or completes (a flow under way finds no settings).
// Removing none changes nothing and records nothing (idempotent).
func (s *Service) Delete(ctx context.Context, who audit.Principal, tenant string) error {
	if _, _, err := s.load(ctx, tenant); errors.Is(err, ErrNotConfigured) {
		return nil
	} else if err != nil {
		return err
	}
	entry, err := who.Entry(s.opts.Now().UTC(), "sso.delete", tenancy.AuditTarget(tenant), audit.OutcomeSuccess, nil).Encode()
	if err != nil {
		return fmt.Errorf("sso: delete: %w", err)
	}
	res, err := s.tenancy.Scope(tenant).Apply(ctx, &tenancy.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondPresent, Bucket: ssoPath, Key: configKey}},
		Ops:   []raftstore.Op{{Kind: raftstore.OpDelete, Bucket: ssoPath, Key: configKey}},
		Audit: [][]byte{entry},
	})
	return applied(res, err, "delete")
}

// applied turns a transaction's outcome into an error: a failed
// condition, or a missing tenant, is ErrNotConfigured (or a concurrent
// change, which the caller may retry).
func applied(res raftstore.Result, err error, op string) error {
	switch {
	case errors.Is(err, tenancy.ErrNoTenant):
		return ErrNotConfigured
	case err != nil:
		return fmt.Errorf("sso: %s: %w", op, err)
	case res.Err != nil:
		return fmt.Errorf("sso: %s: %w", op, res.Err)
	case !res.Applied:
		return fmt.Errorf("%w (or it changed meanwhile)", ErrNotConfigured)
	}
	return nil
}

// load reads the tenant's settings and their version.
func (s *Service) load(ctx context.Context, tenant string) (stored, uint64, error) {
	var st stored
	var version uint64
	var found bool
	var decodeErr error
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		var v []byte
		v, version, found = r.Get(ssoPath, configKey)
		if found {
			decodeErr = json.Unmarshal(v, &st)
		}
		return nil
	})
	switch {
	case errors.Is(err, tenancy.ErrNoTenant):
		return stored{}, 0, ErrNotConfigured
	case err != nil:
		return stored{}, 0, fmt.Errorf("sso: read settings: %w", err)
	case decodeErr != nil:
		return stored{}, 0, fmt.Errorf("sso: read settings: %w", decodeErr)
	case !found:
		return stored{}, 0, ErrNotConfigured
	}
	return st, version, nil
}

// secret opens the tenant's client secret ("" for a public client).
func (s *Service) secret(ctx context.Context, tenant string, st *stored) (string, error) {
	if st.Secret == nil {
		return "", nil
	}
	k, err := s.keys.DataKey(ctx, tenant, "")
	if err != nil {
		return "", fmt.Errorf("sso: client secret: %w", err)
	}
	pt, err := keyring.Open(k, secretPlace(tenant), st.Secret)
	if err != nil {
		return "", fmt.Errorf("sso: client secret: %w", err)
	}
	return string(pt), nil
}

// clip bounds a value recorded in an audit entry's details.
func clip(s string) string { return clipN(s, 256) }

// clipN cuts s to at most n bytes of valid UTF-8.
func clipN(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}
