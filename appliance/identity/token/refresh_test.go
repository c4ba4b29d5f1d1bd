package token

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRefreshFamily(t *testing.T) {
	first := NewFamily(t0, DefaultRefreshLifetime)
	if !strings.HasPrefix(first.Token, "crt_") || len(first.Token) != 4+43 || first.Seq != 0 || first.Family == "" {
		t.Fatalf("%+v", first)
	}
	if !first.ExpiresAt.Equal(t0.Add(30 * 24 * time.Hour)) {
		t.Fatalf("expires %v", first.ExpiresAt)
	}
	h, err := HashOf(first.Token)
	if err != nil || h != first.Hash {
		t.Fatalf("HashOf: %v", err)
	}
	if other := NewFamily(t0, DefaultRefreshLifetime); other.Family == first.Family || other.Token == first.Token {
		t.Fatal("families repeat")
	}
	// Rotation keeps the family and makes a new secret.
	next := Rotate(t0.Add(time.Hour), first, DefaultRefreshLifetime)
	if next.Family != first.Family || next.Seq != 1 || next.Token == first.Token || next.Hash == first.Hash {
		t.Fatalf("next %+v", next)
	}
	if !next.ExpiresAt.Equal(t0.Add(time.Hour + DefaultRefreshLifetime)) {
		t.Fatalf("next expires %v", next.ExpiresAt)
	}
}

// A store's view of a family: redeeming spends the token and yields the
// next; presenting a spent one is reuse naming the family; an expired one
// is refused without being reuse.
func TestRedeem(t *testing.T) {
	store := map[Hash]Refresh{}
	put := func(r Refresh) { r.Token = ""; store[r.Hash] = r }
	redeem := func(at time.Time, tok string) (Refresh, error) {
		h, err := HashOf(tok)
		if err != nil {
			return Refresh{}, err
		}
		rec, ok := store[h]
		if !ok {
			return Refresh{}, ErrInvalidToken
		}
		next, err := Redeem(at, rec, DefaultRefreshLifetime)
		if err != nil {
			return Refresh{}, err
		}
		rec.Spent = true
		store[h] = rec
		put(next)
		return next, nil
	}
	first := NewFamily(t0, DefaultRefreshLifetime)
	put(first)
	second, err := redeem(t0.Add(time.Minute), first.Token)
	if err != nil || second.Seq != 1 || second.Token == "" {
		t.Fatalf("%+v %v", second, err)
	}
	third, err := redeem(t0.Add(2*time.Minute), second.Token)
	if err != nil || third.Seq != 2 {
		t.Fatalf("%+v %v", third, err)
	}
	// The first token again: reuse, naming the family to revoke.
	_, err = redeem(t0.Add(3*time.Minute), first.Token)
	var re *ReuseError
	if !errors.As(err, &re) || re.Family != first.Family || !errors.Is(err, ErrReused) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("reuse: %v", err)
	}
	if strings.Contains(err.Error(), first.Token) {
		t.Fatal("error names the token")
	}
	// Expiry (the third token's, 30 days after its issue).
	_, err = redeem(third.ExpiresAt, third.Token)
	if !errors.Is(err, ErrExpired) || !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrReused) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := redeem(third.ExpiresAt.Add(-time.Second), third.Token); err != nil {
		t.Fatal(err)
	}
	// An unknown token of the right shape.
	if _, err := redeem(t0, NewFamily(t0, time.Hour).Token); !errors.Is(err, ErrInvalidToken) {
		t.Fatal(err)
	}
}

func TestHashOfRefusesMalformed(t *testing.T) {
	good := NewFamily(t0, time.Hour).Token
	for _, s := range []string{
		"", "crt_", good[:len(good)-1], good + "A", "xrt_" + good[4:],
		good[:len(good)-1] + "=", good[:10] + "+" + good[11:],
	} {
		if _, err := HashOf(s); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("HashOf(%q): %v", s, err)
		}
	}
}

// A stored Refresh is readable JSON that never holds the token.
func TestRefreshEncoding(t *testing.T) {
	r := NewFamily(t0, time.Hour)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), r.Token) || !strings.Contains(string(b), `"hash":"`+r.Hash.String()+`"`) {
		t.Fatalf("%s", b)
	}
	var back Refresh
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	r.Token = ""
	if back != r {
		t.Fatalf("%+v, want %+v", back, r)
	}
	if err := json.Unmarshal([]byte(`{"hash":"AAAA"}`), &back); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("short hash: %v", err)
	}
}
