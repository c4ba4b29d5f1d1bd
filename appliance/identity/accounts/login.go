package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/token"
	"github.com/custos/custos/appliance/identity/totp"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// LoginInput is a login: the tenant (a tenant user's; OperatorRealm, "",
// for an operator user — a sealed node then answers a
// *keyring.UnavailableError, as it holds no cluster key), the username and
// password, and the second-factor code when the user has one — a TOTP
// code or one of the recovery codes.
type LoginInput struct {
	Tenant   string
	Username string
	Password string
	Code     string
	// SourceKey is the client's address as the request rate limits key
	// it (an IPv6 address by its /64): the login backoff's source.
	SourceKey string
}

// Grant is what a login or a refresh gives: an access token, the next
// refresh token (shown once; only its hash is stored) and the session.
type Grant struct {
	AccessToken  string
	RefreshToken string
	ExpiresAt    time.Time // of the access token
	Session      Session
	// EnrolmentOnly: the user's role requires MFA and the user has none
	// yet; the session may only enrol (Enrol, Confirm).
	EnrolmentOnly bool
}

// Login checks a user's password (and second factor) and starts a
// session. Unknown users, wrong passwords, disabled users and unknown
// tenants are all ErrInvalidCredentials, at the same cost (an unknown
// user's password is checked against a dummy hash). A user with a second
// factor and no code is ErrMFARequired; a wrong, replayed or used code is
// ErrInvalidCode. Failures are audited in the tenant's chain with from's
// request id and source, naming the user by id — or, for a username that
// names nobody, by its pseudonym under the tenant's audit key; never a
// password, code or token. An attempt the backoff refuses is a
// *BackoffError, its password unchecked; an account's refusals are
// audited once per lockout window, with their count in a later entry
// (see Audit in the package documentation).
func (s *Service) Login(ctx context.Context, from audit.Principal, in LoginInput) (Grant, error) {
	absent := func() (Grant, error) {
		if err := s.hasher.VerifyAbsent(ctx, in.Password); err != nil {
			return Grant{}, err
		}
		return Grant{}, ErrInvalidCredentials
	}
	switch {
	case in.Username == "":
		return Grant{}, validation.Field("username", "is required")
	case in.Password == "":
		return Grant{}, validation.Field("password", "is required")
	}
	if in.Tenant != OperatorRealm && !tenancy.ValidID(in.Tenant) {
		return absent()
	}
	_, folded, err := normalizeUsername(in.Username)
	if err != nil {
		return absent()
	}
	ikey, err := s.indexKey(ctx, in.Tenant)
	if errors.Is(err, keyring.ErrNoKeys) {
		return absent()
	}
	if err != nil {
		return Grant{}, err
	}
	var u userRecord
	var ver uint64
	var role roles.Role
	found := false
	err = s.realm(in.Tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		if !r.Exists() {
			return nil
		}
		uid, _, ok := r.Get(namesPath, []byte(nameIndex(ikey, folded)))
		if !ok {
			return nil
		}
		v, version, ok := r.Get(usersPath, uid)
		if !ok {
			return nil
		}
		var err error
		if u, err = decodeUser(v); err != nil {
			return err
		}
		ver, found = version, true
		role, _ = realmRole(r, in.Tenant, u.Role)
		return nil
	})
	if err != nil {
		return Grant{}, fmt.Errorf("accounts: login: %w", err)
	}
	now := s.now().UTC()
	account := accountKey(in.Tenant, folded)
	if s.backoff != nil {
		if found && u.UnlockedAt != nil {
			s.backoff.Unlock(account, *u.UnlockedAt)
		}
		v := s.backoff.Check(account, in.SourceKey, now, found)
		if !v.OK {
			// One entry per lockout window, not one per refusal: a
			// refused guess costs the cluster no write (see Audit in
			// the package documentation).
			if v.Opens {
				who := from
				who.Kind, who.ID, who.Tenant = actorKind(in.Tenant), u.ID, in.Tenant
				s.auditOutcome(ctx, in.Tenant, who, now, audit.OutcomeDenied, s.refusals(account, map[string]string{
					"reason": "backoff", "retry_at": now.Add(v.RetryAfter).Format(time.RFC3339Nano)}))
			}
			return Grant{}, &BackoffError{RetryAfter: v.RetryAfter}
		}
	}
	failed := func() {
		if s.backoff != nil {
			s.backoff.Failure(account, in.SourceKey, now)
		}
	}
	if !found {
		failed()
		g, err := absent()
		if akey, kerr := s.auditKey(ctx, in.Tenant); kerr == nil {
			who := from
			who.Kind, who.ID, who.Tenant = actorKind(in.Tenant), audit.Pseudonym(akey, "username", folded), in.Tenant
			s.auditOutcome(ctx, in.Tenant, who, now, audit.OutcomeFailure, map[string]string{"reason": "unknown_user"})
		}
		return g, err
	}
	who := from
	who.Kind, who.ID, who.Tenant, who.Role = actorKind(in.Tenant), u.ID, in.Tenant, u.Role
	ok, err := s.hasher.Verify(ctx, u.Password, in.Password)
	if err != nil {
		return Grant{}, err
	}
	if !ok || u.Disabled || role.Name() == "" {
		failed()
	}
	// failure audits a failed attempt on the account.
	failure := func(reason string) {
		s.auditOutcome(ctx, in.Tenant, who, now, audit.OutcomeFailure, s.refusals(account, map[string]string{"reason": reason}))
	}
	switch {
	case !ok:
		failure("wrong_password")
		return Grant{}, ErrInvalidCredentials
	case u.Disabled:
		failure("disabled")
		return Grant{}, ErrInvalidCredentials
	case role.Name() == "":
		failure("unknown_role")
		return Grant{}, ErrInvalidCredentials
	}
	dek, err := s.dataKey(ctx, in.Tenant)
	if err != nil {
		return Grant{}, err
	}
	st, err := u.totpState(dek, in.Tenant)
	if err != nil {
		return Grant{}, err
	}
	second := "none"
	if st.Status() == totp.StatusActive {
		if in.Code == "" {
			// The password alone is not a success: counting it as
			// one would let a holder of the password reset the
			// account's backoff between code guesses.
			failed()
			return Grant{}, ErrMFARequired
		}
		next, how, err := s.checkCode(st, in.Code)
		if err != nil {
			failed()
			failure(how)
			return Grant{}, ErrInvalidCode
		}
		if err := u.setTOTP(dek, in.Tenant, next); err != nil {
			return Grant{}, err
		}
		second = how
	}
	if s.hasher.NeedsRehash(u.Password) {
		if u.Password, err = s.hasher.Hash(ctx, in.Password); err != nil {
			return Grant{}, err
		}
	}
	enrolOnly := role.RequiresMFA() && st.Status() != totp.StatusActive
	if enrolOnly {
		second = "enrolment_required"
	}
	fam := token.NewFamily(now, s.refresh)
	sess := sessionRecord{ID: fam.Family, User: u.ID, CreatedAt: now, RefreshedAt: now, ExpiresAt: fam.ExpiresAt}
	who.Session = sess.ID
	e, err := entry(who, now, "session.login", userTarget(u.ID), audit.OutcomeSuccess, s.refusals(account, map[string]string{"session": sess.ID, "mfa": second}))
	if err != nil {
		return Grant{}, err
	}
	g, err := s.grant(ctx, in.Tenant, u, sess, fam.Token, enrolOnly)
	if err != nil {
		return Grant{}, err
	}
	// The user's record is written back (a used TOTP step, a rehash) on
	// the condition that it did not change since it was read: of two
	// logins with the same code, one wins; a user disabled meanwhile
	// starts no session.
	err = s.apply(ctx, in.Tenant, &tenancy.Txn{
		Conds: []raftstore.Cond{cond(raftstore.CondVersion, usersPath, u.ID, ver)},
		Ops: []raftstore.Op{
			putJSON(usersPath, u.ID, u),
			putJSON(sessionsPath, sessionKey(u.ID, sess.ID), sess),
			putJSON(refreshPath, fam.Hash.String(), refreshRecord{User: u.ID, Refresh: fam}),
			{Kind: raftstore.OpPut, Bucket: tokensPath, Key: []byte(tokenKey(u.ID, sess.ID, fam.Seq)), Value: []byte(fam.Hash.String())},
		},
		SystemOps: []raftstore.Op{sysIdentity.Put(refreshIndex(fam.Hash), []byte(in.Tenant))},
		Audit:     [][]byte{e},
	}, "login")
	if errors.Is(err, ErrConflict) {
		// Another login spent the same code, or the user changed.
		failed()
		return Grant{}, ErrInvalidCode
	}
	if err != nil {
		return Grant{}, err
	}
	if s.backoff != nil {
		s.backoff.Success(account, in.SourceKey, now)
	}
	return g, nil
}

// checkCode checks a second-factor code: six digits are a TOTP code,
// anything else a recovery code. It returns the state to persist and how
// the factor was given ("totp", "recovery_code") or, on error, the
// reason to audit.
func (s *Service) checkCode(st totp.State, code string) (totp.State, string, error) {
	if _, err := totp.ParseCode(code); err == nil {
		next, err := s.totp.Verify(st, code)
		switch {
		case errors.Is(err, totp.ErrReplayed):
			return st, "mfa_replayed", err
		case err != nil:
			return st, "mfa_wrong_code", err
		}
		return next, "totp", nil
	}
	next, err := s.totp.Recover(st, code)
	if err != nil {
		return st, "mfa_wrong_recovery_code", err
	}
	return next, "recovery_code", nil
}

// auditOutcome records a login that did not start a session — failed, or
// denied by the backoff (a lockout) — best effort: the answer does not
// change when it cannot be written.
func (s *Service) auditOutcome(ctx context.Context, tenant string, who audit.Principal, now time.Time, outcome string, details map[string]string) {
	e, err := entry(who, now, "session.login", userTarget(who.ID), outcome, details)
	if err != nil {
		return
	}
	_ = s.apply(ctx, tenant, &tenancy.Txn{Audit: [][]byte{e}}, "audit a failed login")
}

// refusals adds to the details of an entry about account the attempts
// the backoff refused in its lockout windows that closed since an entry
// last said so (ratelimit.Backoff.TakeRefusals): "refused" (how many),
// "refused_first" and "refused_last" (RFC 3339). Best effort, like the
// entries: a tally whose entry is not written is lost.
func (s *Service) refusals(account string, details map[string]string) map[string]string {
	if s.backoff == nil {
		return details
	}
	r := s.backoff.TakeRefusals(account)
	if r.Count == 0 {
		return details
	}
	details["refused"] = strconv.Itoa(r.Count)
	details["refused_first"] = r.First.UTC().Format(time.RFC3339Nano)
	details["refused_last"] = r.Last.UTC().Format(time.RFC3339Nano)
	return details
}

// grant issues the access token of a session — before the session is
// stored, so that a node that cannot sign (sealed) starts none.
func (s *Service) grant(ctx context.Context, tenant string, u userRecord, sess sessionRecord, refresh string, enrolOnly bool) (Grant, error) {
	tok, claims, err := s.signer.Issue(ctx, token.Claims{Subject: u.ID, Tenant: tenant, Kind: tokenKind(tenant), Role: u.Role, Session: sess.ID})
	var ue *keyring.UnavailableError
	if errors.As(err, &ue) {
		return Grant{}, err
	}
	if err != nil {
		return Grant{}, fmt.Errorf("accounts: issue access token: %w", err)
	}
	return Grant{AccessToken: tok, RefreshToken: refresh, ExpiresAt: claims.ExpiresAt, Session: sess.public(tenant), EnrolmentOnly: enrolOnly}, nil
}

// Refresh spends a refresh token and returns the next one with a new
// access token. A token presented again after it was spent means that
// someone else holds it: the whole session is revoked and the reuse
// audited (session.refresh_reuse, a security event). Every refusal is
// ErrInvalidSession.
func (s *Service) Refresh(ctx context.Context, from audit.Principal, refresh string) (Grant, error) {
	if refresh == "" {
		return Grant{}, validation.Field("refresh_token", "is required")
	}
	h, err := token.HashOf(refresh)
	if err != nil {
		return Grant{}, ErrInvalidSession
	}
	var (
		tenant    string
		rec       refreshRecord
		recVer    uint64
		sess      sessionRecord
		sessVer   uint64
		u         userRecord
		found     bool
		enrolOnly bool
		revoke    []raftstore.Op
		revokeSys []raftstore.Op
	)
	err = s.tenancy.ViewSystem(ctx, raftstore.Linearizable, sysIdentity, func(sr tenancy.SystemRead) error {
		t, _, ok := sr.Get(refreshIndex(h))
		if !ok {
			return nil
		}
		tenant = string(t)
		r := sr.Tenant(tenant)
		if tenant == OperatorRealm {
			r = sr.Operators()
		}
		v, ver, ok := r.Get(refreshPath, []byte(h.String()))
		if !ok || json.Unmarshal(v, &rec) != nil {
			return nil
		}
		recVer = ver
		key := sessionKey(rec.User, rec.Refresh.Family)
		v, ver, ok = r.Get(sessionsPath, []byte(key))
		if !ok || json.Unmarshal(v, &sess) != nil {
			return nil
		}
		sessVer = ver
		v, _, ok = r.Get(usersPath, []byte(rec.User))
		if !ok {
			return nil
		}
		var err error
		if u, err = decodeUser(v); err != nil {
			return err
		}
		found = true
		role, _ := realmRole(r, tenant, u.Role)
		enrolOnly = role.RequiresMFA() && u.MFA != MFAActive && sess.MFA != SessionMFAIdP
		if rec.Refresh.Spent {
			revoke, revokeSys = revokeOps(r, rec.User, rec.Refresh.Family)
		}
		return nil
	})
	if err != nil {
		return Grant{}, fmt.Errorf("accounts: refresh: %w", err)
	}
	if !found {
		return Grant{}, ErrInvalidSession
	}
	now := s.now().UTC()
	next, err := token.Redeem(now, rec.Refresh, s.refresh)
	var reuse *token.ReuseError
	if errors.As(err, &reuse) {
		who := from
		who.Kind, who.ID, who.Tenant, who.Session = actorKind(tenant), u.ID, tenant, sess.ID
		e, eerr := entry(who, now, "session.refresh_reuse", userTarget(u.ID), audit.OutcomeDenied,
			map[string]string{"session": sess.ID, "security_event": "refresh_token_reuse", "seq": fmt.Sprint(rec.Refresh.Seq)})
		if eerr != nil {
			return Grant{}, eerr
		}
		if err := s.apply(ctx, tenant, &tenancy.Txn{Ops: revoke, SystemOps: revokeSys, Audit: [][]byte{e}}, "revoke a reused session"); err != nil {
			return Grant{}, err
		}
		return Grant{}, ErrInvalidSession
	}
	if err != nil || u.Disabled {
		return Grant{}, ErrInvalidSession
	}
	spent := rec.Refresh
	spent.Spent = true
	sess.RefreshedAt, sess.ExpiresAt, sess.Seq = now, next.ExpiresAt, next.Seq
	g, err := s.grant(ctx, tenant, u, sess, next.Token, enrolOnly)
	if err != nil {
		return Grant{}, err
	}
	who := from
	who.Kind, who.ID, who.Tenant, who.Role, who.Session = actorKind(tenant), u.ID, tenant, u.Role, sess.ID
	e, err := entry(who, now, "session.refresh", userTarget(u.ID), audit.OutcomeSuccess, map[string]string{"session": sess.ID, "seq": fmt.Sprint(next.Seq)})
	if err != nil {
		return Grant{}, err
	}
	err = s.apply(ctx, tenant, &tenancy.Txn{
		Conds: []raftstore.Cond{cond(raftstore.CondVersion, refreshPath, h.String(), recVer), cond(raftstore.CondVersion, sessionsPath, sessionKey(u.ID, sess.ID), sessVer)},
		Ops: []raftstore.Op{
			putJSON(refreshPath, h.String(), refreshRecord{User: u.ID, Refresh: spent}),
			putJSON(refreshPath, next.Hash.String(), refreshRecord{User: u.ID, Refresh: next}),
			{Kind: raftstore.OpPut, Bucket: tokensPath, Key: []byte(tokenKey(u.ID, sess.ID, next.Seq)), Value: []byte(next.Hash.String())},
			putJSON(sessionsPath, sessionKey(u.ID, sess.ID), sess),
		},
		SystemOps: []raftstore.Op{sysIdentity.Put(refreshIndex(next.Hash), []byte(tenant))},
		Audit:     [][]byte{e},
	}, "refresh")
	if errors.Is(err, ErrConflict) {
		// Spent by a concurrent refresh (the token is now spent: its
		// next presentation is reuse), or the session was revoked.
		return Grant{}, ErrInvalidSession
	}
	if err != nil {
		return Grant{}, err
	}
	return g, nil
}
