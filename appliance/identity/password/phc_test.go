package password

import (
	"errors"
	"strings"
	"testing"
)

const validPHC = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1JkYAmn6gBs4nNlNV5HkFwZy0KRkyMjvGVVtpAyO0vQ"

func TestParseAcceptsCanonical(t *testing.T) {
	h, err := parse(validPHC)
	if err != nil {
		t.Fatal(err)
	}
	want := Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	if h.params != want {
		t.Errorf("params = %+v, want %+v", h.params, want)
	}
	if h.String() != validPHC {
		t.Errorf("String() = %q, want %q", h.String(), validPHC)
	}
}

func TestParseRefuses(t *testing.T) {
	salt, key := "c29tZXNhbHRzb21lc2FsdA", "1JkYAmn6gBs4nNlNV5HkFwZy0KRkyMjvGVVtpAyO0vQ"
	with := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	for _, c := range []struct{ name, in string }{
		{"empty", ""},
		{"no leading dollar", strings.TrimPrefix(validPHC, "$")},
		{"trailing dollar", validPHC + "$"},
		{"trailing newline", validPHC + "\n"},
		{"argon2i", strings.Replace(validPHC, "argon2id", "argon2i", 1)},
		{"argon2d", strings.Replace(validPHC, "argon2id", "argon2d", 1)},
		{"upper case algorithm", strings.Replace(validPHC, "argon2id", "ARGON2ID", 1)},
		{"version 16", strings.Replace(validPHC, "v=19", "v=16", 1)},
		{"no version", strings.Replace(validPHC, "$v=19", "", 1)},
		{"parameters reordered", with("t=2,m=19456,p=1")},
		{"parameter missing", with("m=19456,t=2")},
		{"extra parameter", with("m=19456,t=2,p=1,k=1")},
		{"leading zero", with("m=019456,t=2,p=1")},
		{"plus sign", with("m=+19456,t=2,p=1")},
		{"negative", with("m=19456,t=-2,p=1")},
		{"space", with("m=19456, t=2,p=1")},
		{"hex", with("m=0x4c00,t=2,p=1")},
		{"zero time", with("m=19456,t=0,p=1")},
		{"zero lanes", with("m=19456,t=2,p=0")},
		{"memory below 8p", with("m=15,t=2,p=2")},
		{"memory too large", with("m=1048577,t=2,p=1")},
		{"time too large", with("m=19456,t=33,p=1")},
		{"lanes too many", with("m=19456,t=2,p=65")},
		{"lanes overflow uint8", with("m=19456,t=2,p=257")},
		{"memory overflow uint32", with("m=4294967296,t=2,p=1")},
		{"padded salt", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key},
		{"url alphabet", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$-_" + key[2:]},
		{"line break in key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key[:10] + "\n" + key[10:]},
		{"trailing bits in salt", "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdB$" + key},
		{"salt too short", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$" + key},
		{"key too short", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$a2V5"},
		{"empty key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$"},
		{"keyid field", "$argon2id$v=19$m=19456,t=2,p=1$k=1$" + salt + "$" + key},
	} {
		if _, err := parse(c.in); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: parse(%q) = %v, want ErrMalformedHash", c.name, c.in, err)
		}
	}
}

// FuzzParse: parse never panics, and whatever it accepts is within the
// bounds and re-encodes to exactly its input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		validPHC,
		"$argon2id$v=19$m=46080,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$1JkYAmn6gBs4nNlNV5HkFwZy0KRkyMjvGVVtpAyO0vQ",
		"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
		"$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA",
		"$argon2id$v=19$m=019456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1JkYAmn6gBs4nNlNV5HkFwZy0KRkyMjvGVVtpAyO0vQ",
		"$argon2id$$$$",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parse(%q) = %v, not ErrMalformedHash", s, err)
			}
			return
		}
		if err := h.params.check(); err != nil {
			t.Fatalf("parse(%q) accepted out-of-bounds %+v: %v", s, h.params, err)
		}
		if h.String() != s {
			t.Fatalf("parse(%q) re-encodes to %q", s, h.String())
		}
	})
}
