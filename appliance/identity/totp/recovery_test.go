package totp

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/custos/custos/internal/validation"
)

var codeForm = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$`)

// Each recovery code works once, in any of its accepted spellings.
func TestRecoveryOnce(t *testing.T) {
	c := &clock{start}
	a := New(c.now)
	st, codes := active(t, a, c)
	seen := map[string]bool{}
	for _, code := range codes {
		if !codeForm.MatchString(code) || seen[code] {
			t.Fatalf("recovery code %q is malformed or repeated", code)
		}
		seen[code] = true
	}
	spell := []func(string) string{
		func(s string) string { return s },
		strings.ToUpper,
		func(s string) string { return strings.ReplaceAll(s, "-", "") },
	}
	for i, code := range codes {
		next, err := a.Recover(st, spell[i%len(spell)](code))
		if err != nil {
			t.Fatalf("code %d: %v", i, err)
		}
		if next.RecoveryRemaining() != st.RecoveryRemaining()-1 {
			t.Errorf("code %d: %d remaining after, %d before", i, next.RecoveryRemaining(), st.RecoveryRemaining())
		}
		if _, err := a.Recover(next, code); !errors.Is(err, ErrWrongCode) {
			t.Errorf("code %d used twice: %v, want ErrWrongCode", i, err)
		}
		st = next
	}
	if st.RecoveryRemaining() != 0 {
		t.Errorf("%d remaining after using all", st.RecoveryRemaining())
	}
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseState(b); err != nil {
		t.Errorf("a state with every recovery code used: %v", err)
	}
}

// The state given to Recover is not changed: what is used is what the
// caller persists.
func TestRecoverDoesNotAlias(t *testing.T) {
	c := &clock{start}
	a := New(c.now)
	st, codes := active(t, a, c)
	before, _ := st.MarshalBinary()
	if _, err := a.Recover(st, codes[0]); err != nil {
		t.Fatal(err)
	}
	after, _ := st.MarshalBinary()
	if string(before) != string(after) {
		t.Error("Recover changed the state it was given")
	}
}

// Regenerating invalidates every old code; the new ones work.
func TestRegenerateRecovery(t *testing.T) {
	c := &clock{start}
	a := New(c.now)
	st, old := active(t, a, c)
	st, err := a.Recover(st, old[0])
	if err != nil {
		t.Fatal(err)
	}
	st, fresh, err := a.RegenerateRecovery(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != Count || st.RecoveryRemaining() != Count {
		t.Errorf("%d new codes, %d remaining, want %d", len(fresh), st.RecoveryRemaining(), Count)
	}
	for i, code := range old {
		if _, err := a.Recover(st, code); !errors.Is(err, ErrWrongCode) {
			t.Errorf("old code %d after regenerating: %v, want ErrWrongCode", i, err)
		}
	}
	for i, code := range fresh {
		if _, err := a.Recover(st, code); err != nil {
			t.Errorf("new code %d: %v", i, err)
		}
	}
	if _, _, err := a.RegenerateRecovery(State{}); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("RegenerateRecovery without enrolment: %v, want ErrNotEnrolled", err)
	}
}

func TestParseRecoveryCode(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"7k2m-q9xa-4bcd-zt0e", true},
		{"7K2M-Q9XA-4BCD-ZT0E", true},
		{"7k2mq9xa4bcdzt0e", true},
		{"7k2m-q9xa-4bcd-zt0", false},       // short
		{"7k2m-q9xa-4bcd-zt0ee", false},     // long
		{"7k2mq9xa-4bcd-zt0e", false},       // some hyphens
		{"7k2m q9xa 4bcd zt0e", false},      // spaces
		{"7k2m--9xa-4bcd-zt0e", false},      // hyphen in a group
		{"7k2m-q9xa-4bcd-zt0i", false},      // look-alike letter
		{"7k2m-q9xa-4bcd-zt0u", false},      // not in the alphabet
		{"7k2mq9xa4bcdzt0\n", false},        // a line break the decoder would skip
		{"7k2m-q9xa-4bcd-zt0\u212a", false}, // Kelvin sign, not K
		{"", false},
	} {
		raw, err := ParseRecoveryCode(c.in)
		var fe *validation.FieldError
		switch {
		case c.ok && (err != nil || len(raw) != codeBytes || formatRecovery(raw) != "7k2m-q9xa-4bcd-zt0e"):
			t.Errorf("ParseRecoveryCode(%q) = %x, %v", c.in, raw, err)
		case !c.ok && (!errors.As(err, &fe) || fe.Field != "recovery_code"):
			t.Errorf("ParseRecoveryCode(%q) = %v, want a field error on recovery_code", c.in, err)
		}
	}
}
