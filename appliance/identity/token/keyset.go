package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/custos/custos/internal/validation"
)

// Lifetimes of an access token, and the clock leeway of its checks.
const (
	// DefaultLifetime is an access token's lifetime unless configured.
	DefaultLifetime = 15 * time.Minute
	// MinLifetime and MaxLifetime bound a configured lifetime: shorter
	// would have clients refresh all the time, longer would make a stolen
	// token worth more than the session check next to it is meant to bear.
	MinLifetime = time.Minute
	MaxLifetime = time.Hour
	// Leeway is the clock skew tolerated either side of nbf, iat and exp.
	Leeway = 5 * time.Second
)

// keySetVersion is the encoding's version; UnmarshalKeySet refuses others.
const keySetVersion = 1

// KeySet is a cluster's access-token signing keys: the current key, which
// signs, and older keys that verify until their retire time. It is an
// immutable value — Rotate, Prune and WithLifetime return a new set — safe
// for concurrent use. The zero value is not usable; make one with
// NewKeySet or UnmarshalKeySet.
type KeySet struct {
	lifetime time.Duration
	keys     []signingKey // oldest first; the last is the current key
	byID     map[string]int
}

type signingKey struct {
	id      string
	private ed25519.PrivateKey // nil in a verify-only set
	public  ed25519.PublicKey
	created time.Time
	retire  time.Time // zero for the current key
}

// KeyInfo describes one key of a set, without its private part.
type KeyInfo struct {
	ID      string
	Public  ed25519.PublicKey
	Created time.Time
	// Retire is when the key stops verifying; zero for the current key.
	Retire time.Time
}

// NewKeySet makes a set of one fresh key, created at now, for access tokens
// of the given lifetime (MinLifetime to MaxLifetime; a *validation.FieldError
// naming "lifetime" otherwise).
func NewKeySet(now time.Time, lifetime time.Duration) (*KeySet, error) {
	if err := checkLifetime(lifetime); err != nil {
		return nil, err
	}
	return build(lifetime, []signingKey{newKey(now)}), nil
}

func checkLifetime(d time.Duration) error {
	if d < MinLifetime || d > MaxLifetime {
		return validation.Field("lifetime", "must be between 1 minute and 1 hour")
	}
	return nil
}

// newKey makes a key from 32 bytes of crypto/rand (which cannot fail) and a
// random 96-bit id.
func newKey(now time.Time) signingKey {
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	return fromSeed(base64.RawURLEncoding.EncodeToString(id), seed, now.UTC(), time.Time{})
}

func fromSeed(id string, seed []byte, created, retire time.Time) signingKey {
	priv := ed25519.NewKeyFromSeed(seed)
	return signingKey{id: id, private: priv, public: priv.Public().(ed25519.PublicKey), created: created, retire: retire}
}

func build(lifetime time.Duration, keys []signingKey) *KeySet {
	s := &KeySet{lifetime: lifetime, keys: keys, byID: make(map[string]int, len(keys))}
	for i, k := range keys {
		s.byID[k.id] = i
	}
	return s
}

// Lifetime is the lifetime of the access tokens the set's keys sign.
func (s *KeySet) Lifetime() time.Duration { return s.lifetime }

// Current is the id of the key that signs.
func (s *KeySet) Current() string { return s.current().id }

// CanSign reports whether the set holds its private keys: false for a
// verify-only set (UnmarshalPublicKeySet), whose Authority verifies but
// cannot issue.
func (s *KeySet) CanSign() bool { return s.current().private != nil }

func (s *KeySet) current() *signingKey { return &s.keys[len(s.keys)-1] }

// Keys describes the set's keys, oldest first (the current key last).
func (s *KeySet) Keys() []KeyInfo {
	out := make([]KeyInfo, len(s.keys))
	for i, k := range s.keys {
		out[i] = KeyInfo{ID: k.id, Public: k.public, Created: k.created, Retire: k.retire}
	}
	return out
}

// verifier is the public key of id if the set holds it and it has not
// retired at now.
func (s *KeySet) verifier(id string, now time.Time) (ed25519.PublicKey, bool) {
	i, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	k := &s.keys[i]
	if !k.retire.IsZero() && !now.Before(k.retire) {
		return nil, false
	}
	return k.public, true
}

// Rotate returns the set with a fresh current key created at now. The key
// it replaces keeps verifying until now + lifetime + 2×Leeway: every token
// it signed has expired by then (one leeway for the verifiers' clock skew,
// one for a node that signs with it in the moment before the rotated set
// reaches it). The receiver is unchanged.
func (s *KeySet) Rotate(now time.Time) *KeySet {
	keys := make([]signingKey, len(s.keys), len(s.keys)+1)
	copy(keys, s.keys)
	keys[len(keys)-1].retire = now.UTC().Add(s.lifetime + 2*Leeway)
	return build(s.lifetime, append(keys, newKey(now)))
}

// Prune returns the set without the keys retired at now, and how many it
// dropped. The current key is never dropped. The receiver is unchanged.
func (s *KeySet) Prune(now time.Time) (*KeySet, int) {
	keys := make([]signingKey, 0, len(s.keys))
	for _, k := range s.keys {
		if k.retire.IsZero() || now.Before(k.retire) {
			keys = append(keys, k)
		}
	}
	return build(s.lifetime, keys), len(s.keys) - len(keys)
}

// WithLifetime returns the set signing tokens of another lifetime (a
// configuration change). Keys already retiring keep their retire time:
// they signed tokens of the old lifetime only.
func (s *KeySet) WithLifetime(lifetime time.Duration) (*KeySet, error) {
	if err := checkLifetime(lifetime); err != nil {
		return nil, err
	}
	return build(lifetime, s.keys), nil
}

// keySetJSON is the encoding of a set, whole or its public half: one
// shape, so both encodings share one header and one key loop.
type keySetJSON struct {
	Version  int       `json:"version"`
	Lifetime string    `json:"lifetime"` // a time.Duration string, "15m0s"
	Keys     []keyJSON `json:"keys"`
}

// keyJSON is one key: the whole encoding carries its seed (the private
// part; the encoding is then secret and stored sealed by the caller), the
// public half its public key — never both, so each encoding keeps the
// bytes it always had.
type keyJSON struct {
	ID      string     `json:"kid"`
	Seed    []byte     `json:"seed,omitempty"`   // base64, ed25519.SeedSize bytes
	Public  []byte     `json:"public,omitempty"` // base64, ed25519.PublicKeySize bytes
	Created time.Time  `json:"created"`
	Retire  *time.Time `json:"retire,omitempty"`
}

// MarshalBinary encodes the set, private keys included, for storage: the
// caller seals the result (as the audit key is sealed) and never stores or
// logs it in the clear. A verify-only set has no private keys to encode:
// ErrCannotSign.
func (s *KeySet) MarshalBinary() ([]byte, error) {
	for _, k := range s.keys {
		if k.private == nil {
			return nil, fmt.Errorf("%w: key %s has no private part to encode", ErrCannotSign, k.id)
		}
	}
	return s.marshal(true)
}

// MarshalPublic encodes the set's public half — ids, public keys, created
// and retire times, the lifetime — which is no secret: a node that cannot
// open the private keys (a sealed one) verifies tokens with it. The
// encoding is deterministic, so two encodings of the same set are equal.
func (s *KeySet) MarshalPublic() ([]byte, error) { return s.marshal(false) }

// marshal encodes the set with each key's seed (private) or public key.
func (s *KeySet) marshal(private bool) ([]byte, error) {
	w := keySetJSON{Version: keySetVersion, Lifetime: s.lifetime.String(), Keys: make([]keyJSON, len(s.keys))}
	for i, k := range s.keys {
		w.Keys[i] = keyJSON{ID: k.id, Created: k.created}
		if private {
			w.Keys[i].Seed = k.private.Seed()
		} else {
			w.Keys[i].Public = k.public
		}
		if !k.retire.IsZero() {
			r := k.retire
			w.Keys[i].Retire = &r
		}
	}
	return json.Marshal(w)
}

// UnmarshalKeySet decodes what MarshalBinary encoded and checks it: a known
// version, a lifetime in bounds, at least one key, unique well-formed ids,
// seeds of the right size, a retire time on every key but the last (the
// current one). Anything else is ErrKeySet.
func UnmarshalKeySet(b []byte) (*KeySet, error) { return unmarshal(b, true) }

// UnmarshalPublicKeySet decodes what MarshalPublic encoded into a
// verify-only set, with the checks UnmarshalKeySet makes (public keys of
// the right size instead of seeds). Anything else is ErrKeySet.
func UnmarshalPublicKeySet(b []byte) (*KeySet, error) { return unmarshal(b, false) }

// unmarshal decodes and checks either encoding; the only difference is
// whether each key must carry a seed (private) or a public key.
func unmarshal(b []byte, private bool) (*KeySet, error) {
	var w keySetJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeySet, err)
	}
	lifetime, err := checkHeader(w.Version, w.Lifetime, len(w.Keys))
	if err != nil {
		return nil, err
	}
	keys := make([]signingKey, len(w.Keys))
	seen := make(map[string]bool, len(w.Keys))
	for i, k := range w.Keys {
		if err := checkKey(k.ID, seen, i, len(w.Keys), k.Retire != nil); err != nil {
			return nil, err
		}
		var retire time.Time
		if k.Retire != nil {
			retire = *k.Retire
		}
		switch {
		case private && len(k.Seed) != ed25519.SeedSize:
			return nil, fmt.Errorf("%w: key %s: seed of %d bytes", ErrKeySet, k.ID, len(k.Seed))
		case private:
			keys[i] = fromSeed(k.ID, k.Seed, k.Created, retire)
		case len(k.Public) != ed25519.PublicKeySize:
			return nil, fmt.Errorf("%w: key %s: public key of %d bytes", ErrKeySet, k.ID, len(k.Public))
		default:
			keys[i] = signingKey{id: k.ID, public: ed25519.PublicKey(k.Public), created: k.Created, retire: retire}
		}
	}
	return build(lifetime, keys), nil
}

// checkHeader checks an encoding's version, lifetime and key count, and
// returns the lifetime.
func checkHeader(version int, lifetime string, keys int) (time.Duration, error) {
	if version != keySetVersion {
		return 0, fmt.Errorf("%w: version %d", ErrKeySet, version)
	}
	d, err := time.ParseDuration(lifetime)
	if err != nil {
		return 0, fmt.Errorf("%w: lifetime: %w", ErrKeySet, err)
	}
	if err := checkLifetime(d); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrKeySet, err)
	}
	if keys == 0 {
		return 0, fmt.Errorf("%w: no keys", ErrKeySet)
	}
	return d, nil
}

// checkKey checks key i of n: a well-formed id not seen before, and a
// retire time exactly when it is not the last (the current) key.
func checkKey(id string, seen map[string]bool, i, n int, retires bool) error {
	if raw, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(raw) != 12 || seen[id] {
		return fmt.Errorf("%w: key %d: bad or repeated id", ErrKeySet, i)
	}
	seen[id] = true
	if current := i == n-1; current == retires {
		return fmt.Errorf("%w: key %s: only the current (last) key has no retire time", ErrKeySet, id)
	}
	return nil
}
