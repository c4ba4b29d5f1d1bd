package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/custos/custos/internal/validation"
)

func TestNewKeySetLifetime(t *testing.T) {
	for _, d := range []time.Duration{0, time.Second, MinLifetime - 1, MaxLifetime + 1} {
		if _, err := NewKeySet(t0, d); !errors.Is(err, validation.ErrInvalid) {
			t.Errorf("lifetime %v: %v", d, err)
		}
	}
	keys, err := NewKeySet(t0, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := NewAuthority(testIssuer, keys)
	_, c, _ := a.Issue(t0, userClaims())
	if !c.ExpiresAt.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("exp %v", c.ExpiresAt)
	}
	longer, err := keys.WithLifetime(30 * time.Minute)
	if err != nil || longer.Lifetime() != 30*time.Minute || keys.Lifetime() != 5*time.Minute || longer.Current() != keys.Current() {
		t.Fatalf("WithLifetime: %v", err)
	}
	if _, err := keys.WithLifetime(2 * time.Hour); !errors.Is(err, validation.ErrInvalid) {
		t.Fatalf("WithLifetime(2h): %v", err)
	}
}

// After a rotation the new key signs; a token of the old key verifies until
// the old key retires (when every token it signed has expired), then not;
// Prune drops the retired key.
func TestRotation(t *testing.T) {
	keys, _ := NewKeySet(t0, DefaultLifetime)
	a, _ := NewAuthority(testIssuer, keys)
	oldKid := keys.Current()
	// Signed just before the rotation: expires at rotation + lifetime.
	rot := t0.Add(time.Hour)
	oldTok, _, err := a.Issue(rot.Add(-time.Second), userClaims())
	if err != nil {
		t.Fatal(err)
	}

	rotated := keys.Rotate(rot)
	if keys.Current() != oldKid || len(keys.Keys()) != 1 {
		t.Fatal("Rotate changed its receiver")
	}
	if rotated.Current() == oldKid || len(rotated.Keys()) != 2 {
		t.Fatalf("rotated: %+v", rotated.Keys())
	}
	retire := rot.Add(DefaultLifetime + 2*Leeway)
	if info := rotated.Keys()[0]; info.ID != oldKid || !info.Retire.Equal(retire) {
		t.Fatalf("old key %+v, want retire %v", info, retire)
	}
	b, _ := NewAuthority(testIssuer, rotated)
	newTok, _, _ := b.Issue(rot, userClaims())
	if kid := headerKid(t, newTok); kid != rotated.Current() {
		t.Fatalf("new token signed by %s", kid)
	}
	// The old key's token still verifies after the rotation, to its end.
	for _, at := range []time.Time{rot, rot.Add(DefaultLifetime - 2*time.Second)} {
		if _, err := b.Verify(at, oldTok); err != nil {
			t.Fatalf("old token at %v: %v", at, err)
		}
	}
	// A token of the old key that would outlive the key (one a thief kept
	// signing with it, say) is refused from the retire time on.
	w := validWire()
	w.IssuedAt, w.NotBefore = jwt.NewNumericDate(rot), jwt.NewNumericDate(rot)
	w.ExpiresAt = jwt.NewNumericDate(rot.Add(MaxLifetime))
	old := keys.current()
	late := sign(t, jwt.SigningMethodEdDSA, old.private, old.id, &w)
	if _, err := b.Verify(retire.Add(-time.Second), late); err != nil {
		t.Fatalf("before retire: %v", err)
	}
	if _, err := b.Verify(retire, late); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("at retire: %v", err)
	}
	// The new key's tokens are unaffected.
	fresh, _, _ := b.Issue(retire.Add(-time.Minute), userClaims())
	if _, err := b.Verify(retire, fresh); err != nil {
		t.Fatal(err)
	}

	// Prune keeps the old key until it retires, then drops it.
	if p, n := rotated.Prune(retire.Add(-time.Second)); n != 0 || len(p.Keys()) != 2 {
		t.Fatalf("early prune dropped %d", n)
	}
	pruned, n := rotated.Prune(retire)
	if n != 1 || len(pruned.Keys()) != 1 || pruned.Current() != rotated.Current() || len(rotated.Keys()) != 2 {
		t.Fatalf("prune: %d, %+v", n, pruned.Keys())
	}
	c, _ := NewAuthority(testIssuer, pruned)
	if _, err := c.Verify(retire.Add(-time.Second), late); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("after prune: %v", err)
	}
	// The current key is never pruned, however old.
	if p, n := pruned.Prune(t0.Add(100 * 365 * 24 * time.Hour)); n != 0 || p.Current() != pruned.Current() {
		t.Fatal("current key pruned")
	}
}

func headerKid(t *testing.T, tok string) string {
	t.Helper()
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &wireClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := parsed.Header["kid"].(string)
	return kid
}

// A set survives encoding: tokens signed before verify after, the current
// key still signs, retire times are kept.
func TestKeySetEncoding(t *testing.T) {
	keys, _ := NewKeySet(t0, DefaultLifetime)
	a, _ := NewAuthority(testIssuer, keys)
	tok, _, _ := a.Issue(t0, userClaims())
	keys = keys.Rotate(t0.Add(time.Minute))
	b, err := keys.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalKeySet(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Current() != keys.Current() || back.Lifetime() != keys.Lifetime() {
		t.Fatal("current key or lifetime lost")
	}
	for i, k := range back.Keys() {
		w := keys.Keys()[i]
		if k.ID != w.ID || !k.Public.Equal(w.Public) || !k.Created.Equal(w.Created) || !k.Retire.Equal(w.Retire) {
			t.Fatalf("key %d: %+v, want %+v", i, k, w)
		}
	}
	c, _ := NewAuthority(testIssuer, back)
	if _, err := c.Verify(t0.Add(2*time.Minute), tok); err != nil {
		t.Fatal(err)
	}
	tok2, _, _ := c.Issue(t0, userClaims())
	d, _ := NewAuthority(testIssuer, keys)
	if _, err := d.Verify(t0, tok2); err != nil {
		t.Fatal(err)
	}
}

func TestUnmarshalKeySetRefuses(t *testing.T) {
	keys, _ := NewKeySet(t0, DefaultLifetime)
	keys = keys.Rotate(t0)
	good, _ := keys.MarshalBinary()
	mod := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	key := func(m map[string]any, i int) map[string]any { return m["keys"].([]any)[i].(map[string]any) }
	for name, b := range map[string][]byte{
		"not json":          []byte("{"),
		"version":           mod(func(m map[string]any) { m["version"] = 2 }),
		"lifetime":          mod(func(m map[string]any) { m["lifetime"] = "fortnight" }),
		"lifetime too long": mod(func(m map[string]any) { m["lifetime"] = "48h" }),
		"no keys":           mod(func(m map[string]any) { m["keys"] = []any{} }),
		"bad kid":           mod(func(m map[string]any) { key(m, 0)["kid"] = "x" }),
		"repeated kid":      mod(func(m map[string]any) { key(m, 1)["kid"] = key(m, 0)["kid"] }),
		"short seed":        mod(func(m map[string]any) { key(m, 0)["seed"] = "AAAA" }),
		"current retires":   mod(func(m map[string]any) { key(m, 1)["retire"] = key(m, 0)["retire"] }),
		"old never retires": mod(func(m map[string]any) { delete(key(m, 0), "retire") }),
	} {
		if _, err := UnmarshalKeySet(b); !errors.Is(err, ErrKeySet) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if strings.Contains(string(good), "private") {
		t.Fatal("unexpected field")
	}
}

// Verification with a set runs alongside rotations and prunes made from it
// (run with -race): the set is never written once made.
func TestConcurrentRotation(t *testing.T) {
	keys, _ := NewKeySet(t0, DefaultLifetime)
	a, _ := NewAuthority(testIssuer, keys)
	tok, _, _ := a.Issue(t0, userClaims())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := keys
		for i := range 20 {
			s = s.Rotate(t0.Add(time.Duration(i) * time.Second))
			s, _ = s.Prune(t0.Add(time.Hour))
			if _, err := s.MarshalBinary(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 20 {
		if _, err := a.Verify(t0, tok); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}

// The public half of a set round-trips into a verify-only set: it
// verifies what the whole set signed, and neither issues nor encodes
// private keys.
func TestPublicKeySet(t *testing.T) {
	keys, _ := NewKeySet(t0, DefaultLifetime)
	keys = keys.Rotate(t0.Add(time.Hour))
	a, _ := NewAuthority(testIssuer, keys)
	tok, _, err := a.Issue(t0.Add(time.Hour), userClaims())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.MarshalPublic()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := keys.MarshalPublic()
	if string(pub) != string(again) {
		t.Fatal("MarshalPublic is not deterministic")
	}
	whole, _ := keys.MarshalBinary()
	var w keySetJSON
	if err := json.Unmarshal(whole, &w); err != nil {
		t.Fatal(err)
	}
	for _, k := range w.Keys {
		if strings.Contains(string(pub), string(k.Seed)) || strings.Contains(string(pub), base64.StdEncoding.EncodeToString(k.Seed)) {
			t.Fatal("the public half holds a seed")
		}
	}
	vo, err := UnmarshalPublicKeySet(pub)
	if err != nil {
		t.Fatal(err)
	}
	if vo.CanSign() || !keys.CanSign() || vo.Current() != keys.Current() || len(vo.Keys()) != 2 || vo.Lifetime() != keys.Lifetime() {
		t.Fatalf("verify-only set %+v", vo.Keys())
	}
	b, _ := NewAuthority(testIssuer, vo)
	if _, err := b.Verify(t0.Add(time.Hour), tok); err != nil {
		t.Fatalf("verify-only set refuses a token of the set: %v", err)
	}
	if _, _, err := b.Issue(t0, userClaims()); !errors.Is(err, ErrCannotSign) {
		t.Fatalf("Issue with a verify-only set: %v", err)
	}
	if _, err := vo.MarshalBinary(); !errors.Is(err, ErrCannotSign) {
		t.Fatalf("MarshalBinary of a verify-only set: %v", err)
	}
	if again, _ := vo.MarshalPublic(); string(again) != string(pub) {
		t.Fatal("the verify-only set's public half differs")
	}
	for name, bad := range map[string]string{
		"short key": strings.Replace(string(pub), `"public":"`, `"public":"AAAA`, 1),
		"no keys":   `{"version":1,"lifetime":"15m0s","keys":[]}`,
		"version":   strings.Replace(string(pub), `"version":1`, `"version":2`, 1),
		"not json":  "{",
		"bad kid":   strings.Replace(string(pub), `"kid":"`, `"kid":"!`, 1),
		"long life": strings.Replace(string(pub), `"lifetime":"15m0s"`, `"lifetime":"2h"`, 1),
		"no retire": `{"version":1,"lifetime":"15m0s","keys":[` + firstKeyWithoutRetire(t, pub) + `,` + lastKey(t, pub) + `]}`,
	} {
		if _, err := UnmarshalPublicKeySet([]byte(bad)); !errors.Is(err, ErrKeySet) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func publicKeys(t *testing.T, pub []byte) []json.RawMessage {
	t.Helper()
	var w struct{ Keys []json.RawMessage }
	if err := json.Unmarshal(pub, &w); err != nil {
		t.Fatal(err)
	}
	return w.Keys
}

func firstKeyWithoutRetire(t *testing.T, pub []byte) string {
	var k map[string]any
	if err := json.Unmarshal(publicKeys(t, pub)[0], &k); err != nil {
		t.Fatal(err)
	}
	delete(k, "retire")
	b, _ := json.Marshal(k)
	return string(b)
}

func lastKey(t *testing.T, pub []byte) string {
	ks := publicKeys(t, pub)
	return string(ks[len(ks)-1])
}
