package totp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/validation"
)

// FuzzVerifyInput feeds arbitrary typed input to every check of a code: it
// never panics, malformed input is always a field error, input ParseCode
// accepts is exactly six digits, and input ParseRecoveryCode accepts is
// one spelling of the code it returns.
func FuzzVerifyInput(f *testing.F) {
	for _, s := range []string{"123456", "000000", "12345", " 123456", "７２３４５６",
		"7k2m-q9xa-4bcd-zt0e", "7K2MQ9XA4BCDZT0E", "7k2m-q9xa-4bcd-zt0\n", "----------------", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 3, 10, 0, 15, 0, time.UTC)
	a := New(func() time.Time { return now })
	e, err := a.Enrol("acme", "alice")
	if err != nil {
		f.Fatal(err)
	}
	// A fixed secret, so that what the fuzzer finds reproduces.
	e.State.secret = bytes.Repeat([]byte{1}, SecretSize)
	st, _, err := a.Confirm(e.State, codeAt(f, e.State, now))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if code, err := ParseCode(in); err == nil {
			if len(code) != Digits || strings.Trim(code, "0123456789") != "" {
				t.Errorf("ParseCode(%q) accepted %q", in, code)
			}
		} else if !isField(err) {
			t.Errorf("ParseCode(%q): %v is no field error", in, err)
		}
		if raw, err := ParseRecoveryCode(in); err == nil {
			canon := formatRecovery(raw)
			low := strings.ToLower(in)
			if low != canon && low != strings.ReplaceAll(canon, "-", "") {
				t.Errorf("ParseRecoveryCode(%q) accepted it as %q", in, canon)
			}
		} else if !isField(err) {
			t.Errorf("ParseRecoveryCode(%q): %v is no field error", in, err)
		}
		for name, check := range map[string]func() error{
			"Verify":  func() error { _, err := a.Verify(st, in); return err },
			"Recover": func() error { _, err := a.Recover(st, in); return err },
			"Confirm": func() error { _, _, err := a.Confirm(e.State, in); return err },
		} {
			err := check()
			if err != nil && !isField(err) && !errors.Is(err, ErrWrongCode) && !errors.Is(err, ErrReplayed) {
				t.Errorf("%s(%q): unexpected %v", name, in, err)
			}
		}
	})
}

func isField(err error) bool {
	var fe *validation.FieldError
	return errors.As(err, &fe)
}

// FuzzParseState feeds arbitrary bytes to the parser of stored states: it
// never panics, refuses with ErrMalformedState, and what it accepts
// re-encodes to the same bytes.
func FuzzParseState(f *testing.F) {
	now := time.Date(2026, 12, 3, 10, 0, 15, 0, time.UTC)
	a := New(func() time.Time { return now })
	e, err := a.Enrol("acme", "alice")
	if err != nil {
		f.Fatal(err)
	}
	pending, _ := e.State.MarshalBinary()
	st, _, err := a.Confirm(e.State, codeAt(f, e.State, now))
	if err != nil {
		f.Fatal(err)
	}
	act, _ := st.MarshalBinary()
	f.Add(pending)
	f.Add(act)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseState(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedState) {
				t.Errorf("ParseState: %v is not ErrMalformedState", err)
			}
			return
		}
		again, err := st.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("ParseState accepted %q, which re-encodes as %q (%v)", b, again, err)
		}
	})
}
