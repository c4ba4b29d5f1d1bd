package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/custos/custos/internal/validation"
)

// Audience is the aud of every access token: the Custos API.
const Audience = "custos-api"

// The kinds of principal an access token names: the audit log's actor
// types of the same names.
const (
	KindUser     = "user"
	KindOperator = "operator"
	KindAPIKey   = "api_key"
)

// MaxTokenLen bounds what Verify parses: a token of ours is a few hundred
// bytes, and a longer string is refused before any decoding.
const MaxTokenLen = 4096

// Claims are what an access token says about its bearer.
type Claims struct {
	Subject string // sub: the principal's id
	Tenant  string // the principal's tenant; empty exactly for an operator
	Kind    string // KindUser, KindOperator or KindAPIKey
	Role    string // the role the session acts in
	Session string // sid: the session, which is the refresh family

	// Set by Issue (ignored in its input) and by Verify.
	ID        string    // jti, 128 random bits
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf
	ExpiresAt time.Time // exp
}

// check reports what is wrong with the claims Issue is given, or Verify
// read, that the JWT library does not check.
func (c *Claims) check() error {
	switch {
	case c.Subject == "":
		return validation.Field("sub", "is required")
	case c.Kind != KindUser && c.Kind != KindOperator && c.Kind != KindAPIKey:
		return validation.Field("kind", "must be user, operator or api_key")
	case (c.Kind == KindOperator) != (c.Tenant == ""):
		return validation.Field("tenant", "is required for users and API keys and empty for operators")
	case c.Role == "":
		return validation.Field("role", "is required")
	case c.Session == "":
		return validation.Field("sid", "is required")
	}
	return nil
}

// wireClaims is the token's payload as the JWT library reads and writes it.
type wireClaims struct {
	jwt.RegisteredClaims
	Tenant  string `json:"tenant,omitempty"`
	Kind    string `json:"kind"`
	Role    string `json:"role"`
	Session string `json:"sid"`
}

// Validate is the library's hook (jwt.ClaimsValidator) for the claims it
// does not know: it runs after the signature and the registered claims
// are checked.
func (w *wireClaims) Validate() error {
	if w.ID == "" {
		return validation.Field("jti", "is required")
	}
	if w.IssuedAt == nil {
		return validation.Field("iat", "is required")
	}
	c := w.claims()
	return c.check()
}

func (w *wireClaims) claims() Claims {
	c := Claims{Subject: w.Subject, Tenant: w.Tenant, Kind: w.Kind, Role: w.Role, Session: w.Session, ID: w.ID}
	if w.IssuedAt != nil {
		c.IssuedAt = w.IssuedAt.UTC()
	}
	if w.NotBefore != nil {
		c.NotBefore = w.NotBefore.UTC()
	}
	if w.ExpiresAt != nil {
		c.ExpiresAt = w.ExpiresAt.UTC()
	}
	return c
}

// Authority issues and verifies a cluster's access tokens with one key
// set. It is immutable and safe for concurrent use; after a rotation the
// caller makes a new one with the new set.
type Authority struct {
	issuer string
	keys   *KeySet
	opts   []jwt.ParserOption // the strict parser's options but the clock
	cache  *Cache             // nil: every Verify checks the signature
}

// NewAuthority makes the authority of the cluster whose tokens carry
// issuer as iss, signing and verifying with keys.
func NewAuthority(issuer string, keys *KeySet) (*Authority, error) {
	if issuer == "" {
		return nil, validation.Field("issuer", "is required")
	}
	if keys == nil || len(keys.keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrKeySet)
	}
	return &Authority{issuer: issuer, keys: keys, opts: []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithStrictDecoding(),
	}}, nil
}

// Keys is the authority's key set.
func (a *Authority) Keys() *KeySet { return a.keys }

// WithCache returns the authority verifying through c: a token it has
// verified before is checked against c's entry (its times, its key still
// in the set) instead of its signature. The successive authorities of a
// rotating key set share one cache. The receiver is unchanged.
func (a *Authority) WithCache(c *Cache) *Authority {
	b := *a
	b.cache = c
	return &b
}

// Issue signs an access token of c with the current key, valid from now
// for the set's lifetime. It returns the token and its claims as signed
// (jti and the times filled in, to the second). Claims that break the
// rules Verify checks are a *validation.FieldError; a verify-only set
// cannot issue (ErrCannotSign).
func (a *Authority) Issue(now time.Time, c Claims) (string, Claims, error) {
	if err := c.check(); err != nil {
		return "", Claims{}, err
	}
	if !a.keys.CanSign() {
		return "", Claims{}, ErrCannotSign
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id) // crypto/rand does not fail
	now = now.UTC().Truncate(time.Second)
	w := wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    a.issuer,
			Subject:   c.Subject,
			Audience:  jwt.ClaimStrings{Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(a.keys.lifetime)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        base64.RawURLEncoding.EncodeToString(id),
		},
		Tenant: c.Tenant, Kind: c.Kind, Role: c.Role, Session: c.Session,
	}
	k := a.keys.current()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &w)
	t.Header["kid"] = k.id
	s, err := t.SignedString(k.private)
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: sign: %w", err)
	}
	return s, w.claims(), nil
}

// Verify checks token at now (see the package documentation for what is
// checked) and returns its claims; with a cache (WithCache), a token
// verified before is checked against its entry instead of its signature.
// Every refusal is ErrInvalidToken; an expired token is also ErrExpired,
// and a key the set does not hold (or has retired) ErrUnknownKey.
func (a *Authority) Verify(now time.Time, token string) (Claims, error) {
	if len(token) > MaxTokenLen {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenLen)
	}
	var h [sha256.Size]byte
	if a.cache != nil {
		h = sha256.Sum256([]byte(token))
		if e := a.cache.get(h); e != nil && e.valid(a, now) {
			return e.claims, nil
		}
	}
	opts := append(a.opts[:len(a.opts):len(a.opts)], jwt.WithTimeFunc(func() time.Time { return now }))
	var w wireClaims
	var kid string
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, &w, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, fmt.Errorf("%w: no kid", ErrUnknownKey)
		}
		pub, ok := a.keys.verifier(kid, now)
		if !ok {
			return nil, ErrUnknownKey
		}
		return pub, nil
	})
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Claims{}, fmt.Errorf("%w: %w: %w", ErrInvalidToken, ErrExpired, err)
		}
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c := w.claims()
	if a.cache != nil {
		a.cache.put(h, &cached{claims: c, kid: kid, issuer: a.issuer})
	}
	return c, nil
}
