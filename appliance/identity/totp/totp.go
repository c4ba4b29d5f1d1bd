package totp

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"image/png"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
)

// The TOTP parameters (the package documentation says why).
const (
	Digits     = 6  // digits of a code
	Period     = 30 // seconds of a time step
	Skew       = 1  // steps accepted either side of the current one
	SecretSize = 20 // bytes of a secret (160 bits)

	// Issuer names the appliance in authenticator apps; a tenant's
	// accounts show as "Custos (tenant)".
	Issuer = "Custos"
	// QRSize is the width and height in pixels of the QR code image.
	QRSize = 256
	// MaxAccountLen is the longest account name, in characters.
	MaxAccountLen = 128
)

// Authenticator enrols accounts and checks their codes. It holds only the
// clock; it is safe for concurrent use.
type Authenticator struct {
	now func() time.Time
}

// New returns an Authenticator that reads the time from now (time.Now if
// nil).
func New(now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	return &Authenticator{now: now}
}

// Enrolment is a new, pending enrolment: the State to persist, and what
// to show the person so that their authenticator app can add the account.
type Enrolment struct {
	State State  // pending until Confirm accepts a code
	URI   string // otpauth://totp/... with the secret; show it, never log it
	QR    []byte // PNG of a QRSize×QRSize QR code of URI
}

// Enrol issues a new secret for account (a user name or e-mail address:
// 1 to MaxAccountLen characters, no control characters, no colon, no
// leading or trailing space) of tenant (a tenant id; empty for a cluster
// operator). The returned State is pending: it is no second factor until
// Confirm accepts a code made from it. Enrolling again issues a new,
// unrelated secret; persisting it replaces any earlier enrolment.
func (a *Authenticator) Enrol(tenant, account string) (Enrolment, error) {
	issuer := Issuer
	if tenant != "" {
		if !tenancy.ValidID(tenant) {
			return Enrolment{}, fmt.Errorf("totp: enrol: %w", validation.Field("tenant", "must be a tenant id"))
		}
		issuer += " (" + tenant + ")"
	}
	if err := checkAccount(account); err != nil {
		return Enrolment{}, fmt.Errorf("totp: enrol: %w", err)
	}
	secret := make([]byte, SecretSize)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails
	key, err := pqtotp.Generate(pqtotp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      Period,
		Secret:      secret,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return Enrolment{}, fmt.Errorf("totp: enrol: %w", err)
	}
	img, err := key.Image(QRSize, QRSize)
	if err != nil {
		return Enrolment{}, fmt.Errorf("totp: enrol: qr code: %w", err)
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return Enrolment{}, fmt.Errorf("totp: enrol: qr code: %w", err)
	}
	return Enrolment{State: State{secret: secret}, URI: key.URL(), QR: qr.Bytes()}, nil
}

// checkAccount applies Enrol's rule for account names. A colon would
// split the label of the URI ("issuer:account") in the wrong place.
func checkAccount(account string) error {
	bad := func() error {
		return validation.Field("account", "must be 1 to 128 characters without control characters, colons or surrounding spaces")
	}
	if !utf8.ValidString(account) || account == "" || utf8.RuneCountInString(account) > MaxAccountLen ||
		strings.TrimSpace(account) != account {
		return bad()
	}
	for _, r := range account {
		if r == ':' || unicode.IsControl(r) {
			return bad()
		}
	}
	return nil
}

// Confirm completes a pending enrolment with a code made from its secret:
// it returns the active State (the code's step counts as used) and the
// first Count recovery codes, to show the person once. Errors:
// ErrNotEnrolled, ErrAlreadyActive, ErrWrongCode, or a
// *validation.FieldError for input that is not a code.
func (a *Authenticator) Confirm(st State, input string) (State, []string, error) {
	code, err := ParseCode(input)
	if err != nil {
		return st, nil, err
	}
	switch st.Status() {
	case StatusNone:
		return st, nil, ErrNotEnrolled
	case StatusActive:
		return st, nil, ErrAlreadyActive
	}
	step, err := a.match(st.secret, code, 0)
	if err != nil {
		return st, nil, err
	}
	next := st
	next.active = true
	next.lastStep = step
	return withNewRecovery(next)
}

// Verify checks a login code against an active enrolment. It returns the
// State to persist (the code's step now counts as used) or ErrWrongCode,
// ErrReplayed (right code, step already used), ErrNotEnrolled, ErrPending,
// or a *validation.FieldError for input that is not a code. On error the
// State is returned unchanged.
func (a *Authenticator) Verify(st State, input string) (State, error) {
	code, err := ParseCode(input)
	if err != nil {
		return st, err
	}
	if err := st.mustBeActive(); err != nil {
		return st, err
	}
	step, err := a.match(st.secret, code, st.lastStep)
	if err != nil {
		return st, err
	}
	next := st
	next.lastStep = step
	return next, nil
}

// mustBeActive returns ErrNotEnrolled or ErrPending unless st is active.
func (st State) mustBeActive() error {
	switch st.Status() {
	case StatusNone:
		return ErrNotEnrolled
	case StatusPending:
		return ErrPending
	}
	return nil
}

// match finds the step in the window around now whose code is code and
// which comes after last: it returns the latest such step, ErrReplayed if
// code is right only for steps at or before last, or ErrWrongCode. Every
// step of the window is computed and compared in constant time, whatever
// matches.
func (a *Authenticator) match(secret []byte, code string, last uint64) (uint64, error) {
	cur := floorDiv(a.now().Unix(), Period)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
	var step uint64
	var replayed bool
	for d := int64(-Skew); d <= Skew; d++ {
		s := cur + d
		want, err := hotp.GenerateCodeCustom(enc, uint64(max(s, 0)), hotp.ValidateOpts{
			Digits:    otp.DigitsSix,
			Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			return 0, fmt.Errorf("totp: code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 || s <= 0 {
			// Steps before 1970-01-01T00:00:30 are never accepted: step
			// 0 is the "none" of State.lastStep.
			continue
		}
		if uint64(s) > last {
			step = uint64(s)
		} else {
			replayed = true
		}
	}
	switch {
	case step != 0:
		return step, nil
	case replayed:
		return 0, ErrReplayed
	}
	return 0, ErrWrongCode
}

// floorDiv divides rounding towards minus infinity, so that times before
// 1970 fall in negative steps rather than in step 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// ParseCode checks a typed TOTP code: exactly Digits ASCII digits, nothing
// around or between them (the client strips the space some apps show in
// the middle). It returns the code, or a *validation.FieldError naming
// "code".
func ParseCode(s string) (string, error) {
	if len(s) != Digits {
		return "", validation.Field("code", "must be 6 digits")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", validation.Field("code", "must be 6 digits")
		}
	}
	return s, nil
}
