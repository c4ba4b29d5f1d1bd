package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/sso"
	"github.com/custos/custos/appliance/identity/token"
	"github.com/custos/custos/appliance/identity/totp"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// This file is single sign-on's side of the service: appliance/identity/sso
// verifies a person at the tenant's identity provider and maps the
// provider's claims onto a role; SignInSSO finds (or creates) the user
// the provider's identity is linked to and starts its session, the same
// session a password login starts.
//
// Storage: a user linked to a provider's identity has the blind index of
// (issuer, subject) in IdP, and users_by_idp maps that index onto the
// user's id. Its password is the hash of a random secret nobody was
// told: the user signs in at the provider, not with a password.

var idpPath = raftstore.Path("users_by_idp")

var _ sso.Accounts = (*Service)(nil)

// SessionMFAIdP marks a session whose second factor the identity
// provider did (sessionRecord.MFA): the MFA rule of the user's role is
// met for that session without a TOTP enrolment.
const SessionMFAIdP = "idp"

// idpIndex is the blind index of a provider's identity.
func idpIndex(key []byte, issuer, subject string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("custos/idp/v1\x00"))
	m.Write([]byte(issuer))
	m.Write([]byte{0})
	m.Write([]byte(subject))
	return hex.EncodeToString(m.Sum(nil))
}

// SignInSSO implements sso.Accounts: it finds the tenant's user linked to
// id.Issuer and id.Subject or, when jit, creates it (its username the
// verified email when that is free, else "sso-" and a part of the
// identity's index); binds it to id.Role and id.Scopes, which the
// provider decides at every sign-in (a change is audited as
// user.update); and starts a session, recorded as session.login with
// method sso in the same transaction. A session whose second factor the
// provider did (id.MFA) meets the MFA rule of the user's role; otherwise
// a user of a role that requires MFA without a TOTP enrolment gets an
// enrolment-only session, as at a password login. Errors:
// sso.ErrUnknownUser (no linked user, jit false), sso.ErrUserDisabled,
// sso.ErrTenantSuspended,
// ErrRoleNotFound, ErrExists (jit, both usernames taken), ErrTooMany.
func (s *Service) SignInSSO(ctx context.Context, from audit.Principal, tenant string, id sso.Identity, jit bool) (sso.Session, error) {
	scopes, err := checkScopes("scopes", id.Scopes)
	if err != nil {
		return sso.Session{}, err
	}
	ikey, err := s.keys.IndexKey(ctx, tenant)
	if err != nil {
		return sso.Session{}, err
	}
	dek, err := s.keys.DataKey(ctx, tenant, "")
	if err != nil {
		return sso.Session{}, err
	}
	akey, err := s.keys.AuditKey(ctx, tenant)
	if err != nil {
		return sso.Session{}, err
	}
	link := idpIndex(ikey, id.Issuer, id.Subject)
	var (
		u        userRecord
		ver, rev uint64
		found    bool
		role     roles.Role
		username string
	)
	err = s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		ent, ok := r.Entry()
		if !ok {
			return tenants.ErrNotFound
		}
		if t, err := tenants.Decode(ent); err != nil || t.State == tenants.StateSuspended {
			return errors.Join(sso.ErrTenantSuspended, err)
		}
		if role, ok = tenantRole(r, id.Role); !ok {
			return ErrRoleNotFound
		}
		_, rev, _ = r.Get(usersMeta, []byte(keyRev))
		if uid, _, ok := r.Get(idpPath, []byte(link)); ok {
			v, version, ok := r.Get(usersPath, uid)
			if !ok {
				return fmt.Errorf("accounts: the user of an identity link is gone: %w", ErrConflict)
			}
			var err error
			u, err = decodeUser(v)
			ver, found = version, true
			return err
		}
		if !jit {
			return sso.ErrUnknownUser
		}
		if r.Count(usersPath) >= MaxUsers {
			return ErrTooMany
		}
		username = ssoUsername(r, ikey, id, link)
		if username == "" {
			return ErrExists
		}
		return nil
	})
	if err != nil {
		return sso.Session{}, fmt.Errorf("accounts: sign in with sso: %w", err)
	}
	if found && u.Disabled {
		return sso.Session{}, sso.ErrUserDisabled
	}
	now := s.now().UTC()
	var conds []raftstore.Cond
	var ops []raftstore.Op
	var entries [][]byte
	who := from
	who.Kind, who.Tenant = audit.ActorUser, tenant
	changed := !found || u.Role != id.Role || !maps.EqualFunc(u.Scopes, scopes, slices.Equal)
	switch {
	case !found:
		// Nobody knows this password: the user signs in at the provider.
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		hash, err := s.hasher.Hash(ctx, base64.RawURLEncoding.EncodeToString(secret))
		if err != nil {
			return sso.Session{}, err
		}
		_, folded, _ := normalizeUsername(username)
		u = userRecord{ID: newUserID(), NameIndex: nameIndex(ikey, folded), Password: hash, Role: id.Role, Scopes: scopes,
			MFA: MFANone, IdP: link, CreatedAt: now, UpdatedAt: now, Version: 1}
		if u.Username, err = sealString(dek, tenant, u.ID, "username", username); err != nil {
			return sso.Session{}, err
		}
		who.ID = u.ID
		e, err := entry(who, now, "user.create", userTarget(u.ID), audit.OutcomeSuccess, map[string]string{"role": u.Role, "scoped": fmt.Sprint(scopes != nil), "method": "sso"})
		if err != nil {
			return sso.Session{}, err
		}
		conds = append(conds, cond(raftstore.CondAbsent, namesPath, u.NameIndex, 0), cond(raftstore.CondAbsent, usersPath, u.ID, 0),
			cond(raftstore.CondAbsent, idpPath, link, 0))
		ops = append(ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: namesPath, Key: []byte(u.NameIndex), Value: []byte(u.ID)},
			raftstore.Op{Kind: raftstore.OpPut, Bucket: idpPath, Key: []byte(link), Value: []byte(u.ID)})
		entries = append(entries, e)
	case changed:
		who.ID = u.ID
		u.Role, u.Scopes, u.UpdatedAt, u.Version = id.Role, scopes, now, u.Version+1
		e, err := entry(who, now, "user.update", userTarget(u.ID), audit.OutcomeSuccess, map[string]string{"role": u.Role, "scoped": fmt.Sprint(scopes != nil), "method": "sso"})
		if err != nil {
			return sso.Session{}, err
		}
		conds = append(conds, cond(raftstore.CondVersion, usersPath, u.ID, ver))
		entries = append(entries, e)
	default:
		conds = append(conds, cond(raftstore.CondVersion, usersPath, u.ID, ver))
	}
	if changed {
		rc, rp := revOps(rev)
		conds, ops = append(conds, rc), append(ops, rp)
	}
	who.ID, who.Role = u.ID, u.Role
	st, err := u.totpState(dek, tenant)
	if err != nil {
		return sso.Session{}, err
	}
	mfa := "none"
	enrolOnly := false
	switch {
	case id.MFA:
		mfa = SessionMFAIdP
	case role.RequiresMFA() && st.Status() != totp.StatusActive:
		mfa, enrolOnly = "enrolment_required", true
	}
	fam := token.NewFamily(now, s.refresh)
	sess := sessionRecord{ID: fam.Family, User: u.ID, CreatedAt: now, RefreshedAt: now, ExpiresAt: fam.ExpiresAt}
	if id.MFA {
		sess.MFA = SessionMFAIdP
	}
	who.Session = sess.ID
	e, err := entry(who, now, "session.login", userTarget(u.ID), audit.OutcomeSuccess, map[string]string{
		"session": sess.ID, "mfa": mfa, "method": "sso", "issuer": id.Issuer, "subject": audit.Pseudonym(akey, "idp-subject", id.Issuer+"\x00"+id.Subject)})
	if err != nil {
		return sso.Session{}, err
	}
	ops = append(ops,
		putJSON(usersPath, u.ID, u),
		putJSON(sessionsPath, sessionKey(u.ID, sess.ID), sess),
		putJSON(refreshPath, fam.Hash.String(), refreshRecord{User: u.ID, Refresh: fam}),
		raftstore.Op{Kind: raftstore.OpPut, Bucket: tokensPath, Key: []byte(tokenKey(u.ID, sess.ID, fam.Seq)), Value: []byte(fam.Hash.String())},
	)
	err = s.apply(ctx, tenant, &tenancy.Txn{
		Conds:     conds,
		Ops:       ops,
		SystemOps: []raftstore.Op{sysIdentity.Put(refreshIndex(fam.Hash), []byte(tenant))},
		Audit:     append(entries, e),
	}, "sign in with sso")
	if err != nil {
		return sso.Session{}, err
	}
	g, err := s.grant(ctx, tenant, u, sess, fam.Token, enrolOnly)
	if err != nil {
		return sso.Session{}, err
	}
	return sso.Session{AccessToken: g.AccessToken, RefreshToken: g.RefreshToken, ExpiresIn: int(g.ExpiresAt.Sub(now).Seconds()),
		TokenType: "Bearer", Session: sess.ID, MFAEnrolmentRequired: g.EnrolmentOnly, UserID: u.ID}, nil
}

// ssoUsername is the username of a user created at its first sign-in:
// its verified email when no user has it, else "sso-" and the first 16
// characters of its identity's index; "" when both are taken. An
// existing user of the same email is never linked: that the provider
// says an address is someone's does not make them the user who chose it
// here.
func ssoUsername(r tenancy.Read, ikey []byte, id sso.Identity, link string) string {
	var candidates []string
	if id.Email != "" && id.EmailVerified {
		candidates = append(candidates, id.Email)
	}
	candidates = append(candidates, "sso-"+link[:16])
	for _, c := range candidates {
		name, folded, err := normalizeUsername(c)
		if err != nil {
			continue
		}
		if _, _, taken := r.Get(namesPath, []byte(nameIndex(ikey, folded))); !taken {
			return name
		}
	}
	return ""
}
