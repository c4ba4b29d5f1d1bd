package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/totp"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Enrolment is a started TOTP enrolment, to show the user once: the
// otpauth:// URI (it holds the secret) and a PNG QR code of it.
type Enrolment struct {
	URI string
	QR  []byte
}

// Enrol starts (or restarts) the TOTP enrolment of the user who acts:
// a new secret, stored sealed and pending until Confirm. A user with an
// active second factor must have it reset first (ErrMFAState).
func (s *Service) Enrol(ctx context.Context, who audit.Principal) (Enrolment, error) {
	var out Enrolment
	err := s.mfaChange(ctx, who, "user.mfa_enrol_start", func(dek *keyring.Key, u *userRecord, st totp.State) (map[string]string, error) {
		if st.Status() == totp.StatusActive {
			return nil, ErrMFAState
		}
		name, err := keyring.Open(dek, place(who.Tenant, u.ID, "username"), u.Username)
		if err != nil {
			return nil, fmt.Errorf("accounts: username of %s: %w", u.ID, err)
		}
		en, err := s.totp.Enrol(who.Tenant, string(name))
		if err != nil {
			return nil, fmt.Errorf("accounts: enrol: %w", err)
		}
		out = Enrolment{URI: en.URI, QR: en.QR}
		return nil, u.setTOTP(dek, who.Tenant, en.State)
	})
	return out, err
}

// Confirm completes the pending enrolment of the user who acts with a
// code from the new secret, and returns the 10 recovery codes (shown
// once; stored hashed). A wrong code is ErrInvalidCode (audited); no
// pending enrolment is ErrMFAState. From the next request on, a session
// that could only enrol can do what the user's role allows.
func (s *Service) Confirm(ctx context.Context, who audit.Principal, code string) ([]string, error) {
	var codes []string
	var failed error
	err := s.mfaChange(ctx, who, "user.mfa_enrol", func(dek *keyring.Key, u *userRecord, st totp.State) (map[string]string, error) {
		if st.Status() != totp.StatusPending {
			return nil, ErrMFAState
		}
		next, rc, err := s.totp.Confirm(st, code)
		if err != nil {
			failed = err
			return nil, nil
		}
		codes = rc
		return nil, u.setTOTP(dek, who.Tenant, next)
	})
	if err != nil {
		return nil, err
	}
	if failed != nil {
		e, err := entry(who, s.now().UTC(), "user.mfa_enrol", userTarget(who.ID), audit.OutcomeFailure, map[string]string{"reason": "mfa_wrong_code"})
		if err == nil {
			_ = s.apply(ctx, who.Tenant, &tenancy.Txn{Audit: [][]byte{e}}, "audit a failed confirmation")
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidCode, failed)
	}
	return codes, nil
}

// mfaChange reads the acting user and its TOTP state, lets change edit
// the user (nil details and an unchanged user: nothing is written), and
// writes it back with its entry.
func (s *Service) mfaChange(ctx context.Context, who audit.Principal, action string,
	change func(dek *keyring.Key, u *userRecord, st totp.State) (map[string]string, error)) error {
	if who.Kind != actorKind(who.Tenant) || who.Session == "" {
		return ErrInvalidSession
	}
	dek, err := s.dataKey(ctx, who.Tenant)
	if err != nil {
		return err
	}
	u, ver, err := s.readUser(ctx, who.Tenant, who.ID)
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidSession
	}
	if err != nil {
		return err
	}
	st, err := u.totpState(dek, who.Tenant)
	if err != nil {
		return err
	}
	before := string(u.TOTP)
	details, err := change(dek, &u, st)
	if err != nil {
		return err
	}
	if string(u.TOTP) == before {
		return nil
	}
	now := s.now().UTC()
	u.UpdatedAt, u.Version = now, u.Version+1
	e, err := entry(who, now, action, userTarget(u.ID), audit.OutcomeSuccess, details)
	if err != nil {
		return err
	}
	return s.apply(ctx, who.Tenant, &tenancy.Txn{
		Conds: []raftstore.Cond{cond(raftstore.CondVersion, usersPath, u.ID, ver)},
		Ops:   []raftstore.Op{putJSON(usersPath, u.ID, u)},
		Audit: [][]byte{e},
	}, action)
}
