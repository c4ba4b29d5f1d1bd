package password

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/custos/custos/internal/validation"
)

func TestPolicy(t *testing.T) {
	p := NewPolicy()
	for _, c := range []struct {
		name, pw string
		reason   string // "" when accepted
	}{
		{"11 characters", "kx7-vqm2-tp", reasonLength},
		{"12 characters", "kx7-vqm2-tpa", ""},
		{"128 characters", strings.Repeat("kx7-vqm2-tpa-", 9) + "kx7-vqm2-tp", ""},
		{"129 characters", strings.Repeat("kx7-vqm2-tpa-", 9) + "kx7-vqm2-tpa", reasonLength},
		{"empty", "", reasonLength},
		{"12 two-byte characters", "žluťoučkýkůň", ""},
		{"11 characters of 23 bytes", "žluťoučkýků", reasonLength},
		{"12 runes decomposed, 11 composed", "z\u030cluťoučkýků", reasonLength},
		{"128 four-byte characters", strings.Repeat("🐈", 64) + strings.Repeat("🦉", 64), ""},
		{"129 four-byte characters", strings.Repeat("🐈", 65) + strings.Repeat("🦉", 64), reasonLength},
		{"beyond the input bound", strings.Repeat("a\u0301", maxInputBytes), reasonLength},
		{"not UTF-8", "valid-until-\xff-here", reasonUTF8},
		{"common, listed at 12+", "1qaz2wsx3edc", reasonCommon},
		{"common, upper case", "1QAZ2WSX3EDC", reasonCommon},
		{"common, mixed case", "QazWsxEdcRfv", reasonCommon},
		{"common with digits appended", "monkey12345678", reasonCommon},
		{"common with digits in front", "2024sunshine99", reasonCommon},
		{"common repeated", "PasswordPassword", reasonCommon},
		{"one character repeated", "aaaaaaaaaaaa", reasonCommon},
		{"three characters repeated", "abcabcabcabc", reasonCommon},
		{"multibyte unit repeated", "éééééééééééé", reasonCommon},
		{"common word inside a phrase", "my monkey likes tea", ""},
		{"four-character uncommon unit repeated", "kx7qkx7qkx7q", ""},
		{"passphrase", "correct horse battery staple", ""},
	} {
		err := p.Check(c.pw)
		if c.reason == "" {
			if err != nil {
				t.Errorf("%s: Check = %v, want nil", c.name, err)
			}
			continue
		}
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != "password" || fe.Reason != c.reason {
			t.Errorf("%s: Check = %v, want password: %s", c.name, err, c.reason)
			continue
		}
		if !errors.Is(err, validation.ErrInvalid) {
			t.Errorf("%s: %v is not validation.ErrInvalid", c.name, err)
		}
		if c.pw != "" && strings.Contains(err.Error(), c.pw) {
			t.Errorf("%s: the error %q echoes the password", c.name, err)
		}
	}
}

// The embedded list is what the package documentation and the NOTICE say:
// tens of thousands of entries, folded, sorted, without duplicates or
// blanks — binary search depends on it.
func TestCommonList(t *testing.T) {
	p := NewPolicy()
	if n := len(p.common); n < 40000 {
		t.Fatalf("%d entries in the common-password list", n)
	}
	if !slices.IsSorted(p.common) {
		t.Fatal("the list is not sorted")
	}
	long := 0
	for i, w := range p.common {
		if w == "" || fold(w) != w || !utf8.ValidString(w) {
			t.Fatalf("entry %d (%q) is not folded", i, w)
		}
		if i > 0 && p.common[i-1] == w {
			t.Fatalf("entry %q twice", w)
		}
		if utf8.RuneCountInString(w) >= MinLength {
			long++
			if p.Check(w) == nil {
				t.Errorf("listed %q is accepted", w)
			}
		}
	}
	if long == 0 {
		t.Fatal("no listed password is long enough to reach the list check")
	}
	t.Logf("%d entries, %d of %d+ characters", len(p.common), long, MinLength)
}
