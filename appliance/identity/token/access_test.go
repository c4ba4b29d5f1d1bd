package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/custos/custos/internal/validation"
)

const testIssuer = "custos:cluster-a"

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func newAuthority(t testing.TB) *Authority {
	t.Helper()
	keys, err := NewKeySet(t0, DefaultLifetime)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthority(testIssuer, keys)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func userClaims() Claims {
	return Claims{Subject: "u_alice", Tenant: "acme", Kind: KindUser, Role: "manager", Session: "fam1"}
}

// validWire is the payload Issue would sign at t0, for tests that sign by
// hand what Issue never would.
func validWire() wireClaims {
	return wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: "u_alice", Audience: jwt.ClaimStrings{Audience},
			ExpiresAt: jwt.NewNumericDate(t0.Add(DefaultLifetime)), NotBefore: jwt.NewNumericDate(t0),
			IssuedAt: jwt.NewNumericDate(t0), ID: "jti1",
		},
		Tenant: "acme", Kind: KindUser, Role: "manager", Session: "fam1",
	}
}

// sign makes a token of claims with method and key, naming kid (none if
// empty).
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIssueVerify(t *testing.T) {
	a := newAuthority(t)
	tok, issued, err := a.Issue(t0.Add(300*time.Millisecond), userClaims())
	if err != nil {
		t.Fatal(err)
	}
	if !issued.IssuedAt.Equal(t0) || !issued.NotBefore.Equal(t0) || !issued.ExpiresAt.Equal(t0.Add(15*time.Minute)) || issued.ID == "" {
		t.Fatalf("issued %+v", issued)
	}
	got, err := a.Verify(t0.Add(time.Minute), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got != issued {
		t.Fatalf("verified %+v, issued %+v", got, issued)
	}
	// The header names the algorithm and the current key.
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var hdr map[string]any
	if err := json.Unmarshal(h, &hdr); err != nil || hdr["alg"] != "EdDSA" || hdr["kid"] != a.Keys().Current() {
		t.Fatalf("header %s", h)
	}
	// Two tokens of the same claims differ (jti).
	tok2, issued2, _ := a.Issue(t0, userClaims())
	if tok2 == tok || issued2.ID == issued.ID {
		t.Fatal("jti repeated")
	}
	// An operator has no tenant.
	op := Claims{Subject: "op_root", Kind: KindOperator, Role: "operator", Session: "fam2"}
	tok3, _, err := a.Issue(t0, op)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Verify(t0, tok3); err != nil || got.Kind != KindOperator || got.Tenant != "" {
		t.Fatalf("operator: %+v %v", got, err)
	}
}

// Issue refuses claims Verify would refuse.
func TestIssueRefusesBadClaims(t *testing.T) {
	a := newAuthority(t)
	for name, c := range map[string]struct {
		mod   func(*Claims)
		field string
	}{
		"no subject":        {func(c *Claims) { c.Subject = "" }, "sub"},
		"unknown kind":      {func(c *Claims) { c.Kind = "robot" }, "kind"},
		"user no tenant":    {func(c *Claims) { c.Tenant = "" }, "tenant"},
		"operator w/tenant": {func(c *Claims) { c.Kind = KindOperator }, "tenant"},
		"no role":           {func(c *Claims) { c.Role = "" }, "role"},
		"no session":        {func(c *Claims) { c.Session = "" }, "sid"},
	} {
		t.Run(name, func(t *testing.T) {
			cl := userClaims()
			c.mod(&cl)
			_, _, err := a.Issue(t0, cl)
			var fe *validation.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("err %v, want a field error on %s", err, c.field)
			}
		})
	}
}

// Expiry and not-before follow the injected clock, with Leeway either side.
func TestExpiryAndNotBefore(t *testing.T) {
	a := newAuthority(t)
	tok, _, err := a.Issue(t0, userClaims())
	if err != nil {
		t.Fatal(err)
	}
	exp := t0.Add(DefaultLifetime)
	for _, c := range []struct {
		name  string
		at    time.Time
		cause error // nil: accepted
	}{
		{"issued", t0, nil},
		{"just before exp", exp.Add(-time.Second), nil},
		{"within leeway after exp", exp.Add(Leeway - time.Second), nil},
		{"expired", exp.Add(Leeway), jwt.ErrTokenExpired},
		{"long expired", exp.Add(24 * time.Hour), jwt.ErrTokenExpired},
		{"within leeway before nbf", t0.Add(-Leeway), nil},
		{"before nbf", t0.Add(-Leeway - time.Second), jwt.ErrTokenNotValidYet},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.Verify(c.at, tok)
			if c.cause == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, c.cause) {
				t.Fatalf("err %v, want %v", err, c.cause)
			}
			if expired := errors.Is(err, ErrExpired); expired != (c.cause == jwt.ErrTokenExpired) {
				t.Fatalf("ErrExpired = %v for %v", expired, err)
			}
		})
	}
	// A token whose nbf (and iat) lie in the future, signed by our key, is
	// refused until then.
	w := validWire()
	w.NotBefore = jwt.NewNumericDate(t0.Add(time.Hour))
	k := a.Keys().current()
	future := sign(t, jwt.SigningMethodEdDSA, k.private, k.id, &w)
	if _, err := a.Verify(t0, future); !errors.Is(err, jwt.ErrTokenNotValidYet) {
		t.Fatalf("future nbf: %v", err)
	}
	w = validWire()
	w.IssuedAt = jwt.NewNumericDate(t0.Add(time.Hour))
	future = sign(t, jwt.SigningMethodEdDSA, k.private, k.id, &w)
	if _, err := a.Verify(t0, future); !errors.Is(err, jwt.ErrTokenUsedBeforeIssued) {
		t.Fatalf("future iat: %v", err)
	}
}

// Every forgery and mismatch is refused, each by the check meant for it.
func TestVerifyRefuses(t *testing.T) {
	a := newAuthority(t)
	k := a.Keys().current()
	good, _, err := a.Issue(t0, userClaims())
	if err != nil {
		t.Fatal(err)
	}
	other := newAuthority(t) // another cluster, same issuer string
	otherKey := other.Keys().current()
	otherTok, _, _ := other.Issue(t0, userClaims())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	withWire := func(mod func(*wireClaims)) string {
		w := validWire()
		mod(&w)
		return sign(t, jwt.SigningMethodEdDSA, k.private, k.id, &w)
	}
	parts := strings.Split(good, ".")
	tamperPayload := func() string {
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		m["role"] = "owner"
		raw, _ = json.Marshal(m)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
	}
	tamperSig := func() string {
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[10] ^= 0x01
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	noneTok := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, k.id, func() *wireClaims { w := validWire(); return &w }())

	for _, c := range []struct {
		name  string
		token string
		cause error
	}{
		{"alg none", noneTok, jwt.ErrTokenSignatureInvalid},
		{"alg none, no signature segment", strings.TrimSuffix(noneTok, "."), jwt.ErrTokenMalformed},
		{"HS256 keyed with the public key", sign(t, jwt.SigningMethodHS256, []byte(k.public), k.id, func() *wireClaims { w := validWire(); return &w }()), jwt.ErrTokenSignatureInvalid},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, k.id, func() *wireClaims { w := validWire(); return &w }()), jwt.ErrTokenSignatureInvalid},
		{"wrong issuer", withWire(func(w *wireClaims) { w.Issuer = "custos:cluster-b" }), jwt.ErrTokenInvalidIssuer},
		{"no issuer", withWire(func(w *wireClaims) { w.Issuer = "" }), jwt.ErrTokenRequiredClaimMissing},
		{"wrong audience", withWire(func(w *wireClaims) { w.Audience = jwt.ClaimStrings{"custos-ui"} }), jwt.ErrTokenInvalidAudience},
		{"no audience", withWire(func(w *wireClaims) { w.Audience = nil }), jwt.ErrTokenRequiredClaimMissing},
		{"no exp", withWire(func(w *wireClaims) { w.ExpiresAt = nil }), jwt.ErrTokenRequiredClaimMissing},
		{"no nbf", withWire(func(w *wireClaims) { w.NotBefore = nil }), jwt.ErrTokenRequiredClaimMissing},
		{"no iat", withWire(func(w *wireClaims) { w.IssuedAt = nil }), validation.ErrInvalid},
		{"no jti", withWire(func(w *wireClaims) { w.ID = "" }), validation.ErrInvalid},
		{"no sub", withWire(func(w *wireClaims) { w.Subject = "" }), validation.ErrInvalid},
		{"no sid", withWire(func(w *wireClaims) { w.Session = "" }), validation.ErrInvalid},
		{"no role", withWire(func(w *wireClaims) { w.Role = "" }), validation.ErrInvalid},
		{"unknown kind", withWire(func(w *wireClaims) { w.Kind = "root" }), validation.ErrInvalid},
		{"operator with a tenant", withWire(func(w *wireClaims) { w.Kind = KindOperator }), validation.ErrInvalid},
		{"user without a tenant", withWire(func(w *wireClaims) { w.Tenant = "" }), validation.ErrInvalid},
		{"another cluster's key", otherTok, ErrUnknownKey},
		{"another cluster's key under our kid", sign(t, jwt.SigningMethodEdDSA, otherKey.private, k.id, func() *wireClaims { w := validWire(); return &w }()), jwt.ErrTokenSignatureInvalid},
		{"unknown kid", sign(t, jwt.SigningMethodEdDSA, k.private, "AAAAAAAAAAAAAAAA", func() *wireClaims { w := validWire(); return &w }()), ErrUnknownKey},
		{"no kid", sign(t, jwt.SigningMethodEdDSA, k.private, "", func() *wireClaims { w := validWire(); return &w }()), ErrUnknownKey},
		{"tampered payload", tamperPayload(), jwt.ErrTokenSignatureInvalid},
		{"tampered signature", tamperSig(), jwt.ErrTokenSignatureInvalid},
		{"signature cut off", parts[0] + "." + parts[1] + ".", jwt.ErrTokenSignatureInvalid},
		{"padded base64", parts[0] + "." + parts[1] + "=." + parts[2], jwt.ErrTokenMalformed},
		{"empty", "", jwt.ErrTokenMalformed},
		{"too long", good + strings.Repeat("A", MaxTokenLen), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := a.Verify(t0, c.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("accepted (%+v, %v)", got, err)
			}
			if c.cause != nil && !errors.Is(err, c.cause) {
				t.Fatalf("refused for %v, want %v", err, c.cause)
			}
			if got != (Claims{}) {
				t.Fatalf("claims %+v returned with an error", got)
			}
		})
	}
	// The untampered token passes, so the refusals above are not blind.
	if _, err := a.Verify(t0, good); err != nil {
		t.Fatal(err)
	}
}

// Unknown claims are tolerated (and not read).
func TestUnknownClaimsTolerated(t *testing.T) {
	a := newAuthority(t)
	k := a.Keys().current()
	type extended struct {
		wireClaims
		Scope string `json:"scope"`
	}
	tok := sign(t, jwt.SigningMethodEdDSA, k.private, k.id, &extended{wireClaims: validWire(), Scope: "villa-a"})
	if got, err := a.Verify(t0, tok); err != nil || got.Role != "manager" {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestNewAuthority(t *testing.T) {
	keys, _ := NewKeySet(t0, DefaultLifetime)
	if _, err := NewAuthority("", keys); !errors.Is(err, validation.ErrInvalid) {
		t.Fatalf("empty issuer: %v", err)
	}
	if _, err := NewAuthority(testIssuer, nil); !errors.Is(err, ErrKeySet) {
		t.Fatalf("no keys: %v", err)
	}
	if _, err := NewAuthority(testIssuer, &KeySet{}); !errors.Is(err, ErrKeySet) {
		t.Fatalf("zero key set: %v", err)
	}
}

// ed25519 keys of the set are what they say.
func TestKeyInfo(t *testing.T) {
	keys, _ := NewKeySet(t0, DefaultLifetime)
	info := keys.Keys()
	if len(info) != 1 || info[0].ID != keys.Current() || len(info[0].Public) != ed25519.PublicKeySize || !info[0].Retire.IsZero() || !info[0].Created.Equal(t0) {
		t.Fatalf("%+v", info)
	}
}
