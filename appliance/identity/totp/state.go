package totp

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
)

// Status says how far an account's enrolment has come.
type Status int

// The statuses of a State.
const (
	// StatusNone: no secret; the account has not enrolled.
	StatusNone Status = iota
	// StatusPending: a secret was issued but no code has confirmed it; it
	// does not count as a second factor.
	StatusPending
	// StatusActive: confirmed; codes and recovery codes are checked.
	StatusActive
)

// String returns the status's name: "none", "pending" or "active".
func (s Status) String() string {
	switch s {
	case StatusNone:
		return "none"
	case StatusPending:
		return "pending"
	case StatusActive:
		return "active"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// State is one account's MFA state: the TOTP secret, whether the
// enrolment is confirmed, the last time step a code was accepted for, and
// the hashes of the unused recovery codes. The zero State is an account
// that has not enrolled.
//
// A State is a value: operations return a new one (never modifying the
// one they are given), which the caller persists — sealed, because it
// holds the secret (see the package documentation) — with
// [State.MarshalBinary] and reads back with [ParseState].
type State struct {
	secret   []byte              // SecretSize bytes; nil: not enrolled
	active   bool                // confirmed by one valid code
	lastStep uint64              // last step a code was accepted for; 0: none
	salt     []byte              // saltSize bytes of the current recovery set; nil while pending
	recovery [][sha256.Size]byte // hashes of the unused recovery codes
}

// Status returns how far the enrolment has come.
func (s State) Status() Status {
	switch {
	case s.secret == nil:
		return StatusNone
	case !s.active:
		return StatusPending
	}
	return StatusActive
}

// RecoveryRemaining returns how many recovery codes are still unused.
func (s State) RecoveryRemaining() int { return len(s.recovery) }

// stateVersion is the version of the encoding, so that a later change of
// it can be recognised.
const stateVersion = 1

// wireState is the encoded form of a State. Byte slices are standard
// base64, as encoding/json writes them.
type wireState struct {
	V        int      `json:"v"`
	Secret   []byte   `json:"secret"`
	Active   bool     `json:"active"`
	LastStep uint64   `json:"last_step"`
	Salt     []byte   `json:"recovery_salt,omitempty"`
	Recovery [][]byte `json:"recovery,omitempty"`
}

// MarshalBinary encodes s for storage as canonical JSON. The encoding
// holds the secret in the clear: the caller must seal it. The zero State
// has nothing to store and returns ErrNotEnrolled.
func (s State) MarshalBinary() ([]byte, error) {
	if s.secret == nil {
		return nil, ErrNotEnrolled
	}
	w := wireState{V: stateVersion, Secret: s.secret, Active: s.active, LastStep: s.lastStep, Salt: s.salt}
	for _, h := range s.recovery {
		w.Recovery = append(w.Recovery, h[:])
	}
	return json.Marshal(w)
}

// UnmarshalBinary replaces s with the state ParseState decodes from b.
func (s *State) UnmarshalBinary(b []byte) error {
	st, err := ParseState(b)
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// ParseState decodes a state encoded by MarshalBinary. It is strict: the
// bytes must be one JSON object of the known fields, describe a valid
// state (a secret of SecretSize bytes; a pending state has no accepted
// step and no recovery codes; an active one has an accepted step, a salt
// and at most Count distinct recovery hashes) and re-encode to exactly
// the same bytes. Anything else is ErrMalformedState.
func ParseState(b []byte) (State, error) {
	fail := func(why string) (State, error) { return State{}, fmt.Errorf("%w: %s", ErrMalformedState, why) }
	var w wireState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fail("not a state object")
	}
	if dec.More() {
		return fail("data after the object")
	}
	switch {
	case w.V != stateVersion:
		return fail("unknown version")
	case len(w.Secret) != SecretSize:
		return fail("secret is not 20 bytes")
	case !w.Active && (w.LastStep != 0 || w.Salt != nil || w.Recovery != nil):
		return fail("a pending enrolment has an accepted step or recovery codes")
	case w.Active && w.LastStep == 0:
		return fail("an active enrolment has no accepted step")
	case w.Active && len(w.Salt) != saltSize:
		return fail("recovery salt is not 16 bytes")
	case len(w.Recovery) > Count:
		return fail("more than 10 recovery codes")
	}
	st := State{secret: w.Secret, active: w.Active, lastStep: w.LastStep, salt: w.Salt}
	for i, h := range w.Recovery {
		if len(h) != sha256.Size {
			return fail("a recovery hash is not 32 bytes")
		}
		for _, prev := range w.Recovery[:i] {
			if subtle.ConstantTimeCompare(prev, h) == 1 {
				return fail("duplicate recovery hash")
			}
		}
		st.recovery = append(st.recovery, [sha256.Size]byte(h))
	}
	again, err := st.MarshalBinary()
	if err != nil || !bytes.Equal(again, b) {
		return fail("not in canonical form")
	}
	return st, nil
}
