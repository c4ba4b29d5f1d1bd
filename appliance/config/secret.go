package config

import (
	"encoding/json"
	"fmt"
)

const redacted = "[redacted]"

// Secret is a string that never prints. String, Format (every verb, so
// %v, %+v and %#v of an enclosing struct are safe too), MarshalText and
// MarshalJSON give "[redacted]" when the value is non-empty and "" when it is
// empty, so logs and -config-dump show whether a secret is set but never its
// value. Reveal returns the value; call it only where the secret is used.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Format implements fmt.Formatter so that no verb prints the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.String())
		return
	}
	fmt.Fprint(f, s.String())
}

// MarshalText implements encoding.TextMarshaler; the value is redacted.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON implements json.Marshaler; the value is redacted.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalText implements encoding.TextUnmarshaler, so that the secret
// decodes from the strings that files, environment variables and flags give.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(b)
	return nil
}
