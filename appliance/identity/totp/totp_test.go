package totp

import (
	"bytes"
	"encoding/base32"
	"errors"
	"image/png"
	"net/url"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/custos/custos/internal/validation"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// start is the middle of a time step, so that ±1 step is ±30 s.
var start = time.Date(2026, 12, 3, 10, 0, 15, 0, time.UTC)

// codeAt is the code an authenticator app shows at t for st's secret,
// computed by pquerna/otp's own TOTP generator.
func codeAt(t testing.TB, st State, at time.Time) string {
	t.Helper()
	c, err := pqtotp.GenerateCode(base32.StdEncoding.EncodeToString(st.secret), at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// active enrols alice of acme and confirms the enrolment at c's time; it
// returns the active state and its recovery codes.
func active(t testing.TB, a *Authenticator, c *clock) (State, []string) {
	t.Helper()
	e, err := a.Enrol("acme", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	st, codes, err := a.Confirm(e.State, codeAt(t, e.State, c.t))
	if err != nil {
		t.Fatal(err)
	}
	return st, codes
}

// The URI carries what an authenticator app needs, under the tenant's
// issuer; an operator's has the plain issuer.
func TestEnrolURI(t *testing.T) {
	a := New(nil)
	for _, c := range []struct{ tenant, issuer string }{
		{"acme", "Custos (acme)"},
		{"", "Custos"},
	} {
		e, err := a.Enrol(c.tenant, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if e.State.Status() != StatusPending {
			t.Errorf("status %v, want pending", e.State.Status())
		}
		u, err := url.Parse(e.URI)
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme != "otpauth" || u.Host != "totp" {
			t.Errorf("URI %q is not otpauth://totp", e.URI)
		}
		if want := "/" + c.issuer + ":alice@example.com"; u.Path != want {
			t.Errorf("label %q, want %q", u.Path, want)
		}
		q := u.Query()
		secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(q.Get("secret"))
		if err != nil || !bytes.Equal(secret, e.State.secret) || len(secret) != SecretSize {
			t.Errorf("secret %q does not encode the state's %d-byte secret", q.Get("secret"), SecretSize)
		}
		for k, want := range map[string]string{"issuer": c.issuer, "algorithm": "SHA1", "digits": "6", "period": "30"} {
			if got := q.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		key, err := otp.NewKeyFromURL(e.URI)
		if err != nil || key.Issuer() != c.issuer || key.AccountName() != "alice@example.com" {
			t.Errorf("pquerna/otp reads %q as issuer %q account %q (%v)", e.URI, key.Issuer(), key.AccountName(), err)
		}
	}
}

// The QR code is a PNG of QRSize pixels square and of a sensible size.
func TestEnrolQR(t *testing.T) {
	e, err := New(nil).Enrol("acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(e.QR))
	if err != nil {
		t.Fatalf("QR is not a PNG: %v", err)
	}
	if cfg.Width != QRSize || cfg.Height != QRSize {
		t.Errorf("QR is %d×%d, want %d×%d", cfg.Width, cfg.Height, QRSize, QRSize)
	}
	if _, err := png.Decode(bytes.NewReader(e.QR)); err != nil {
		t.Errorf("QR does not decode: %v", err)
	}
	if n := len(e.QR); n < 200 || n > 64<<10 {
		t.Errorf("QR PNG is %d bytes", n)
	}
}

func TestEnrolInvalid(t *testing.T) {
	for _, c := range []struct{ tenant, account, field string }{
		{"Acme", "alice", "tenant"},
		{"a", "alice", "tenant"},
		{"acme", "", "account"},
		{"acme", "al:ice", "account"},
		{"acme", " alice", "account"},
		{"acme", "alice\n", "account"},
		{"acme", "al\x00ice", "account"},
		{"acme", "\xffalice", "account"},
		{"acme", string(bytes.Repeat([]byte("é"), MaxAccountLen+1)), "account"},
	} {
		_, err := New(nil).Enrol(c.tenant, c.account)
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("Enrol(%q, %q) = %v, want a field error on %s", c.tenant, c.account, err, c.field)
		}
	}
	if _, err := New(nil).Enrol("acme", string(bytes.Repeat([]byte("é"), MaxAccountLen))); err != nil {
		t.Errorf("an account of %d characters: %v", MaxAccountLen, err)
	}
}

// A pending enrolment is no second factor: login codes and recovery are
// refused until one code confirms it.
func TestPendingUntilConfirmed(t *testing.T) {
	c := &clock{start}
	a := New(c.now)
	e, err := a.Enrol("acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	pending := e.State
	if _, err := a.Verify(pending, codeAt(t, pending, c.t)); !errors.Is(err, ErrPending) {
		t.Errorf("Verify on a pending enrolment: %v, want ErrPending", err)
	}
	if _, err := a.Recover(pending, "0000-0000-0000-0000"); !errors.Is(err, ErrPending) {
		t.Errorf("Recover on a pending enrolment: %v, want ErrPending", err)
	}
	if _, _, err := a.RegenerateRecovery(pending); !errors.Is(err, ErrPending) {
		t.Errorf("RegenerateRecovery on a pending enrolment: %v, want ErrPending", err)
	}
	if _, _, err := a.Confirm(pending, wrongCode(t, pending, c.t)); !errors.Is(err, ErrWrongCode) {
		t.Errorf("Confirm with a wrong code: %v, want ErrWrongCode", err)
	}
	if _, _, err := a.Confirm(State{}, "123456"); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("Confirm without enrolment: %v, want ErrNotEnrolled", err)
	}
	if _, err := a.Verify(State{}, "123456"); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("Verify without enrolment: %v, want ErrNotEnrolled", err)
	}

	code := codeAt(t, pending, c.t)
	st, codes, err := a.Confirm(pending, code)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status() != StatusActive || pending.Status() != StatusPending {
		t.Errorf("after Confirm: %v (given state %v), want active (pending)", st.Status(), pending.Status())
	}
	if len(codes) != Count || st.RecoveryRemaining() != Count {
		t.Errorf("%d recovery codes, %d remaining, want %d", len(codes), st.RecoveryRemaining(), Count)
	}
	if _, err := a.Verify(st, code); !errors.Is(err, ErrReplayed) {
		t.Errorf("the confirming code used to log in: %v, want ErrReplayed", err)
	}
	if _, _, err := a.Confirm(st, code); !errors.Is(err, ErrAlreadyActive) {
		t.Errorf("Confirm again: %v, want ErrAlreadyActive", err)
	}
	c.t = c.t.Add(Period * time.Second)
	if _, err := a.Verify(st, codeAt(t, st, c.t)); err != nil {
		t.Errorf("the next step's code: %v", err)
	}
}

// inWindow reports whether code is right for a step within Skew of at.
func inWindow(t *testing.T, st State, at time.Time, code string) bool {
	t.Helper()
	for d := -Skew; d <= Skew; d++ {
		if codeAt(t, st, at.Add(time.Duration(d)*Period*time.Second)) == code {
			return true
		}
	}
	return false
}

// wrongCode returns a well-formed code that is right for no step near at.
func wrongCode(t testing.TB, st State, at time.Time) string {
	t.Helper()
	used := map[string]bool{}
	for d := -3; d <= 3; d++ {
		used[codeAt(t, st, at.Add(time.Duration(d)*Period*time.Second))] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333", "444444", "555555", "666666", "777777"} {
		if !used[c] {
			return c
		}
	}
	t.Fatal("no wrong code")
	return ""
}

// A code is accepted for the current step and one either side, not two.
func TestVerifyWindow(t *testing.T) {
	c := &clock{start}
	a := New(c.now)
	st, _ := active(t, a, c)
	// Log in an hour later, so the confirming step is long past.
	c.t = c.t.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		steps int
		want  error
	}{
		{"current", 0, nil},
		{"previous", -1, nil},
		{"next", 1, nil},
		{"two before", -2, ErrWrongCode},
		{"two after", 2, ErrWrongCode},
		{"ten before", -10, ErrWrongCode},
	} {
		code := codeAt(t, st, c.t.Add(time.Duration(tc.steps)*Period*time.Second))
		if tc.want != nil && inWindow(t, st, c.t, code) {
			// One chance in a few hundred thousand with a random secret:
			// this case cannot tell a wrong code from a right one.
			t.Logf("%s: the code coincides with one of the window; case not checked", tc.name)
			continue
		}
		next, err := a.Verify(st, code)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if err == nil {
			cur := uint64(c.t.Unix() / Period)
			if want := uint64(int64(cur) + int64(tc.steps)); next.lastStep != want {
				t.Errorf("%s: last step %d, want %d", tc.name, next.lastStep, want)
			}
		}
	}
	if _, err := a.Verify(st, wrongCode(t, st, c.t)); !errors.Is(err, ErrWrongCode) {
		t.Errorf("a wrong code: %v, want ErrWrongCode", err)
	}
}

// A code accepted for step N is refused again, and so is any code of a
// step up to N; the next step's code is accepted.
func TestReplay(t *testing.T) {
	c := &clock{start}
	a := New(c.now)
	st, _ := active(t, a, c)
	c.t = c.t.Add(time.Hour)

	code := codeAt(t, st, c.t)
	st, err := a.Verify(st, code)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(st, code); !errors.Is(err, ErrReplayed) {
		t.Errorf("the same code again: %v, want ErrReplayed", err)
	}
	older := codeAt(t, st, c.t.Add(-Period*time.Second))
	if _, err := a.Verify(st, older); !errors.Is(err, ErrReplayed) {
		t.Errorf("the previous step's code: %v, want ErrReplayed", err)
	}
	// One step later the used code is the previous step's: still refused.
	c.t = c.t.Add(Period * time.Second)
	if _, err := a.Verify(st, code); !errors.Is(err, ErrReplayed) {
		t.Errorf("the used code one step later: %v, want ErrReplayed", err)
	}
	if st, err = a.Verify(st, codeAt(t, st, c.t)); err != nil {
		t.Errorf("the new step's code: %v", err)
	}

	// After the next step's code (clock skew), the current step's is used
	// up too.
	ahead := codeAt(t, st, c.t.Add(2*Period*time.Second))
	c.t = c.t.Add(Period * time.Second)
	if st, err = a.Verify(st, ahead); err != nil {
		t.Fatalf("the next step's code: %v", err)
	}
	if _, err := a.Verify(st, codeAt(t, st, c.t)); !errors.Is(err, ErrReplayed) {
		t.Errorf("the current step's code after the next one's: %v, want ErrReplayed", err)
	}

	// The state survives storage with its last step.
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	stored, err := ParseState(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(stored, ahead); !errors.Is(err, ErrReplayed) {
		t.Errorf("a used code against the stored state: %v, want ErrReplayed", err)
	}
}

// Before 1970-01-01T00:00:30 no step is acceptable; the clock does not
// wrap.
func TestVerifyEarlyClock(t *testing.T) {
	c := &clock{start}
	a := New(c.now)
	st, _ := active(t, a, c)
	st.lastStep = 0
	for _, at := range []time.Time{time.Unix(0, 0), time.Unix(-3600, 0)} {
		c.t = at
		if _, err := a.Verify(st, codeAt(t, st, at)); !errors.Is(err, ErrWrongCode) {
			t.Errorf("at %v: %v, want ErrWrongCode", at, err)
		}
	}
}

func TestParseCode(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"123456", true},
		{"000000", true},
		{"12345", false},
		{"1234567", false},
		{" 123456", false},
		{"123 456", false},
		{"12345a", false},
		{"１２３４５６", false},
		{"", false},
	} {
		got, err := ParseCode(c.in)
		var fe *validation.FieldError
		switch {
		case c.ok && (err != nil || got != c.in):
			t.Errorf("ParseCode(%q) = %q, %v", c.in, got, err)
		case !c.ok && (!errors.As(err, &fe) || fe.Field != "code"):
			t.Errorf("ParseCode(%q) = %v, want a field error on code", c.in, err)
		}
	}
}
