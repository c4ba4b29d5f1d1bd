package totp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A state survives encoding, and the encoding is canonical.
func TestStateRoundTrip(t *testing.T) {
	c := &clock{start}
	a := New(c.now)
	e, err := a.Enrol("acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	act, codes := active(t, a, c)
	used, err := a.Recover(act, codes[3])
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]State{"pending": e.State, "active": act, "one code used": used} {
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got State
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, b)
		}
		again, _ := got.MarshalBinary()
		if !bytes.Equal(again, b) || got.Status() != st.Status() || got.RecoveryRemaining() != st.RecoveryRemaining() {
			t.Errorf("%s: %s became %s", name, b, again)
		}
	}
	// The parsed state works: codes still verify, used ones stay used.
	b, _ := used.MarshalBinary()
	parsed, _ := ParseState(b)
	if _, err := a.Recover(parsed, codes[3]); !errors.Is(err, ErrWrongCode) {
		t.Errorf("a used recovery code against the stored state: %v", err)
	}
	if _, err := a.Recover(parsed, codes[4]); err != nil {
		t.Errorf("an unused recovery code against the stored state: %v", err)
	}
	if _, err := (State{}).MarshalBinary(); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("encoding the zero state: %v, want ErrNotEnrolled", err)
	}
}

func TestParseStateRefuses(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	hash := func(i byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{i}, 32)) }
	hashes := func(n int) string {
		var hs []string
		for i := range n {
			hs = append(hs, `"`+hash(byte(i))+`"`)
		}
		return "[" + strings.Join(hs, ",") + "]"
	}
	secret, salt := b64(20), b64(16)
	good := fmt.Sprintf(`{"v":1,"secret":"%s","active":true,"last_step":5,"recovery_salt":"%s","recovery":%s}`, secret, salt, hashes(2))
	if _, err := ParseState([]byte(good)); err != nil {
		t.Fatalf("the well-formed sample: %v", err)
	}
	for name, in := range map[string]string{
		"empty":            ``,
		"null":             `null`,
		"array":            `[]`,
		"unknown field":    strings.Replace(good, `{"v":1,`, `{"v":1,"x":1,`, 1),
		"version 2":        strings.Replace(good, `"v":1`, `"v":2`, 1),
		"no version":       strings.Replace(good, `"v":1,`, ``, 1),
		"space":            strings.Replace(good, `"v":1,`, `"v": 1,`, 1),
		"trailing newline": good + "\n",
		"trailing object":  good + `{}`,
		"duplicate key":    strings.Replace(good, `"v":1,`, `"v":1,"v":1,`, 1),
		"field order":      strings.Replace(strings.Replace(good, `"v":1,`, ``, 1), `}`, `,"v":1}`, 1),
		"short secret":     strings.Replace(good, secret, b64(19), 1),
		"long secret":      strings.Replace(good, secret, b64(21), 1),
		"no secret":        `{"v":1,"secret":null,"active":false,"last_step":0}`,
		"bad base64":       strings.Replace(good, secret, "!"+secret[1:], 1),
		"unpadded base64":  strings.Replace(good, salt, strings.TrimRight(salt, "="), 1),
		"active, no step":  strings.Replace(good, `"last_step":5`, `"last_step":0`, 1),
		"negative step":    strings.Replace(good, `"last_step":5`, `"last_step":-5`, 1),
		"step as float":    strings.Replace(good, `"last_step":5`, `"last_step":5.0`, 1),
		"step leading 0":   strings.Replace(good, `"last_step":5`, `"last_step":05`, 1),
		"active, no salt":  fmt.Sprintf(`{"v":1,"secret":"%s","active":true,"last_step":5}`, secret),
		"short salt":       strings.Replace(good, salt, b64(15), 1),
		"short hash":       strings.Replace(good, hash(1), b64(31), 1),
		"duplicate hash":   strings.Replace(good, hash(1), hash(0), 1),
		"11 hashes":        strings.Replace(good, hashes(2), hashes(11), 1),
		"empty hash list":  strings.Replace(good, hashes(2), `[]`, 1),
		"pending, step":    fmt.Sprintf(`{"v":1,"secret":"%s","active":false,"last_step":5}`, secret),
		"pending, codes":   strings.Replace(strings.Replace(good, `"active":true`, `"active":false`, 1), `"last_step":5`, `"last_step":0`, 1),
	} {
		if _, err := ParseState([]byte(in)); !errors.Is(err, ErrMalformedState) {
			t.Errorf("%s: %v, want ErrMalformedState\n%s", name, err, in)
		}
	}
}
