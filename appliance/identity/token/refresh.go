package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// DefaultRefreshLifetime is a refresh token's lifetime unless configured:
// each token of a family lives this long from its issue, so a session used
// at least once a month lasts.
const DefaultRefreshLifetime = 30 * 24 * time.Hour

// refreshPrefix starts every refresh token, so that a leaked one is
// recognisable (by secret scanners, in logs) for what it is.
const refreshPrefix = "crt_"

// refreshLen is the length of a refresh token: the prefix and 256 bits in
// unpadded base64url.
var refreshLen = len(refreshPrefix) + base64.RawURLEncoding.EncodedLen(32)

// Hash is the SHA-256 of a refresh token: what a store keeps and looks a
// presented token up by. It is not secret.
type Hash [sha256.Size]byte

// String is the hash in unpadded base64url, for a storage key.
func (h Hash) String() string { return base64.RawURLEncoding.EncodeToString(h[:]) }

// MarshalText encodes the hash as String does (so a stored Refresh is
// readable JSON).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes what MarshalText encoded.
func (h *Hash) UnmarshalText(b []byte) error {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(string(b))
	if err != nil || len(raw) != len(h) {
		return fmt.Errorf("%w: bad refresh token hash", ErrInvalidToken)
	}
	copy(h[:], raw)
	return nil
}

// HashOf is the hash of a presented refresh token, or ErrInvalidToken if it
// is not shaped like one (which no store lookup need then be spent on).
func HashOf(token string) (Hash, error) {
	if len(token) != refreshLen || !strings.HasPrefix(token, refreshPrefix) {
		return Hash{}, fmt.Errorf("%w: not a refresh token", ErrInvalidToken)
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(token[len(refreshPrefix):]); err != nil {
		return Hash{}, fmt.Errorf("%w: not a refresh token", ErrInvalidToken)
	}
	return sha256.Sum256([]byte(token)), nil
}

// Refresh is one refresh token of a family, as a store records it, plus —
// in the value NewFamily and Rotate return only — the token itself.
type Refresh struct {
	// Family is the family's id, 128 random bits in base64url: one per
	// login, and the session id (sid) of the access tokens it buys.
	Family string `json:"family"`
	// Seq counts the family's tokens: 0 for the first, +1 per rotation.
	Seq uint64 `json:"seq"`
	// Hash identifies the token (the store's key).
	Hash Hash `json:"hash"`
	// IssuedAt and ExpiresAt bound the token's use.
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Spent is set by the store when the token is redeemed; a spent token
	// presented again is reuse.
	Spent bool `json:"spent"`

	// Token is the secret handed to the client, once. It is never stored
	// or logged (it is not encoded), and is empty in every Refresh but the
	// ones NewFamily and Rotate return.
	Token string `json:"-"`
}

// NewFamily starts a family (a login) with its first token, issued at now
// and living lifetime (DefaultRefreshLifetime unless configured).
func NewFamily(now time.Time, lifetime time.Duration) Refresh {
	id := make([]byte, 16)
	_, _ = rand.Read(id) // crypto/rand does not fail
	return issue(base64.RawURLEncoding.EncodeToString(id), 0, now, lifetime)
}

// Rotate is the token that follows spent in its family, issued at now and
// living lifetime. The caller marks spent as spent and stores the new one
// in one transaction.
func Rotate(now time.Time, spent Refresh, lifetime time.Duration) Refresh {
	return issue(spent.Family, spent.Seq+1, now, lifetime)
}

func issue(family string, seq uint64, now time.Time, lifetime time.Duration) Refresh {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	tok := refreshPrefix + base64.RawURLEncoding.EncodeToString(secret)
	now = now.UTC()
	return Refresh{Family: family, Seq: seq, Hash: sha256.Sum256([]byte(tok)),
		IssuedAt: now, ExpiresAt: now.Add(lifetime), Token: tok}
}

// Redeem decides about a presented refresh token whose stored record (found
// by HashOf) is stored, at now, and returns the next token of its family:
//
//   - a spent token is reuse: a *ReuseError naming the family, which the
//     caller revokes whole and audits as a security event;
//   - an expired token is ErrExpired (and ErrInvalidToken);
//   - otherwise the caller marks stored spent and stores next, in one
//     transaction that fails (and is treated as reuse) if another request
//     spent stored first.
//
// A token whose hash the store does not know is ErrInvalidToken, and names
// no family: the caller answers it without calling Redeem.
func Redeem(now time.Time, stored Refresh, lifetime time.Duration) (next Refresh, err error) {
	if stored.Spent {
		return Refresh{}, &ReuseError{Family: stored.Family}
	}
	if !now.Before(stored.ExpiresAt) {
		return Refresh{}, fmt.Errorf("%w: %w: refresh token", ErrInvalidToken, ErrExpired)
	}
	return Rotate(now, stored, lifetime), nil
}
