package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/token"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Session is one login of a user: the family of its refresh tokens,
// whose id is the sid of its access tokens.
type Session struct {
	ID     string `json:"id"`
	User   string `json:"user"`
	Tenant string `json:"tenant"`
	// CreatedAt is the login; RefreshedAt the last refresh (the login's
	// time until one).
	CreatedAt   time.Time `json:"created_at"`
	RefreshedAt time.Time `json:"refreshed_at"`
	// ExpiresAt is when its current refresh token expires: a session
	// refreshed at least once every 30 days lasts.
	ExpiresAt time.Time `json:"expires_at"`
}

// sessionRecord is a session as stored (sessions/<uid>.<sid>).
type sessionRecord struct {
	ID          string    `json:"id"`
	User        string    `json:"user"`
	CreatedAt   time.Time `json:"created_at"`
	RefreshedAt time.Time `json:"refreshed_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	Seq         uint64    `json:"seq"`
	// MFA is SessionMFAIdP when the identity provider did the session's
	// second factor (a single sign-on the tenant's settings accept as
	// MFA); empty otherwise.
	MFA string `json:"mfa,omitempty"`
}

func (r sessionRecord) public(tenant string) Session {
	return Session{ID: r.ID, User: r.User, Tenant: tenant, CreatedAt: r.CreatedAt, RefreshedAt: r.RefreshedAt, ExpiresAt: r.ExpiresAt}
}

// refreshRecord is a refresh token as stored (refresh/<hash>): which
// user's session it belongs to, and the token's state.
type refreshRecord struct {
	User    string        `json:"user"`
	Refresh token.Refresh `json:"refresh"`
}

// sessionKey is a session's key: the user's id and the session's, so a
// user's sessions are one prefix.
func sessionKey(uid, sid string) string { return uid + "." + sid }

// tokenKey is the key of the seq'th refresh token of a session in
// session_tokens: what revoking the session deletes.
func tokenKey(uid, sid string, seq uint64) string { return fmt.Sprintf("%s.%s.%020d", uid, sid, seq) }

// refreshIndex is a refresh token's entry in the system bucket: it finds
// the token's tenant before any tenant is known (as API keys' index does).
func refreshIndex(h token.Hash) string { return "refresh/" + h.String() }

// scanPrefix calls fn for the keys of bucket that start with prefix.
func scanPrefix(r tenancy.Read, bucket [][]byte, prefix string, fn func(key string, v []byte) bool) {
	r.Scan(bucket, []byte(prefix), 0, func(k, v []byte, _ uint64) bool {
		if !strings.HasPrefix(string(k), prefix) {
			return false
		}
		return fn(string(k), v)
	})
}

// revokeOps are the writes that end a session of uid (sid "": all of
// them): the session, its refresh tokens, spent or not, and their index
// entries.
func revokeOps(r tenancy.Read, uid, sid string) (ops, sysOps []raftstore.Op) {
	prefix := uid + "."
	if sid != "" {
		prefix = sessionKey(uid, sid)
		if _, _, ok := r.Get(sessionsPath, []byte(prefix)); !ok {
			return nil, nil
		}
		ops = append(ops, del(sessionsPath, prefix))
		prefix += "."
	} else {
		scanPrefix(r, sessionsPath, prefix, func(k string, _ []byte) bool {
			ops = append(ops, del(sessionsPath, k))
			return true
		})
	}
	scanPrefix(r, tokensPath, prefix, func(k string, v []byte) bool {
		var h token.Hash
		if h.UnmarshalText(v) == nil {
			ops = append(ops, del(refreshPath, h.String()))
			sysOps = append(sysOps, sysIdentity.Delete(refreshIndex(h)))
		}
		ops = append(ops, del(tokensPath, k))
		return true
	})
	return ops, sysOps
}

// countSessions is how many sessions of a user revokeOps(r, uid, "")
// ends.
func countSessions(r tenancy.Read, uid string) int {
	n := 0
	scanPrefix(r, sessionsPath, uid+".", func(string, []byte) bool { n++; return true })
	return n
}

// Resolved is what an access token stands for on this request, read from
// the local replicated store: the principal with its current role and
// scopes, whether its tenant is suspended, and whether its session may
// only enrol a second factor.
type Resolved struct {
	Principal audit.Principal
	Role      roles.Role
	Suspended bool
	// EnrolmentOnly: the user's role requires MFA and the user has not
	// enrolled; the session may only enrol (Enrol, Confirm), see who it
	// is and log out.
	EnrolmentOnly bool
	// MFAEnrolled: the user has an active second factor (replacing it
	// takes an administrator's reset first).
	MFAEnrolled bool
	// SessionCreated is the session's login: the web UI ends a session
	// an absolute time after it.
	SessionCreated time.Time
}

// IsAccessToken tells an access token (a JWT) from the other bearer
// tokens by its form: three base64url parts.
func IsAccessToken(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// Resolve verifies an access token and reads, in one snapshot of this
// node's replicated state, its session (not revoked, not expired), its
// user (not disabled; the current role and scopes) and its tenant's state.
// The read is linearizable, as an API key's is: a logout, disable or role
// change acknowledged anywhere is seen by every request that arrives on
// any node after it. Every refusal is
// ErrInvalidSession; a key that cannot be had is a
// *keyring.UnavailableError.
func (s *Service) Resolve(ctx context.Context, access string) (Resolved, error) {
	c, err := s.signer.Verify(ctx, access)
	if errors.As(err, new(*keyring.UnavailableError)) {
		return Resolved{}, err
	}
	if err != nil {
		return Resolved{}, fmt.Errorf("%w: %w", ErrInvalidSession, err)
	}
	now := s.now()
	if c.Kind != tokenKind(c.Tenant) {
		return Resolved{}, fmt.Errorf("%w: kind %q", ErrInvalidSession, c.Kind)
	}
	var out Resolved
	found := false
	err = s.realm(c.Tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		ent, ok := r.Entry()
		if !ok && c.Tenant != OperatorRealm {
			return nil
		}
		v, _, ok := r.Get(sessionsPath, []byte(sessionKey(c.Subject, c.Session)))
		if !ok {
			return nil
		}
		var sess sessionRecord
		if json.Unmarshal(v, &sess) != nil || !now.Before(sess.ExpiresAt) {
			return nil
		}
		v, _, ok = r.Get(usersPath, []byte(c.Subject))
		if !ok {
			return nil
		}
		u, err := decodeUser(v)
		if err != nil || u.Disabled {
			return nil
		}
		role, ok := realmRole(r, c.Tenant, u.Role)
		if !ok {
			return nil
		}
		suspended := false
		if c.Tenant != OperatorRealm {
			t, err := tenants.Decode(ent)
			if err != nil {
				return err
			}
			suspended = t.State == tenants.StateSuspended
		}
		out = Resolved{
			Principal: audit.Principal{Kind: actorKind(c.Tenant), ID: u.ID, Tenant: c.Tenant, Role: u.Role, Scopes: u.Scopes, Session: sess.ID},
			Role:      role, Suspended: suspended,
			EnrolmentOnly:  role.RequiresMFA() && u.MFA != MFAActive && sess.MFA != SessionMFAIdP,
			MFAEnrolled:    u.MFA == MFAActive,
			SessionCreated: sess.CreatedAt,
		}
		found = true
		return nil
	})
	if err != nil {
		return Resolved{}, fmt.Errorf("accounts: resolve: %w", err)
	}
	if !found {
		return Resolved{}, ErrInvalidSession
	}
	return out, nil
}

// ListSessions returns a user's sessions to one of its tenant's own
// principals.
func (s *Service) ListSessions(ctx context.Context, who audit.Principal, tenant, uid string) ([]Session, error) {
	if err := ownPrincipal(who, tenant); err != nil {
		return nil, err
	}
	if !validID(tenant, uid) {
		return nil, ErrNotFound
	}
	out := []Session{}
	var decodeErr error
	err := s.realm(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		if _, _, ok := r.Get(usersPath, []byte(uid)); !ok {
			return ErrNotFound
		}
		scanPrefix(r, sessionsPath, uid+".", func(_ string, v []byte) bool {
			var sr sessionRecord
			if decodeErr = json.Unmarshal(v, &sr); decodeErr != nil {
				return false
			}
			out = append(out, sr.public(tenant))
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: list sessions: %w", err)
	}
	return out, decodeErr
}

// RevokeSession ends one session of a user at once (ErrNotFound when it
// does not exist): its refresh tokens stop working, and its access
// tokens from the next request on every node that has applied it.
func (s *Service) RevokeSession(ctx context.Context, who audit.Principal, tenant, uid, sid string) error {
	n, err := s.revoke(ctx, who, tenant, uid, sid, "session.revoke")
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// RevokeSessions ends every session of a user and returns how many there
// were.
func (s *Service) RevokeSessions(ctx context.Context, who audit.Principal, tenant, uid string) (int, error) {
	return s.revoke(ctx, who, tenant, uid, "", "session.revoke_all")
}

// Logout ends the session who acts in.
func (s *Service) Logout(ctx context.Context, who audit.Principal) error {
	if who.Kind != actorKind(who.Tenant) || who.Session == "" {
		return ErrInvalidSession
	}
	_, err := s.revoke(ctx, who, who.Tenant, who.ID, who.Session, "session.logout")
	return err
}

// LogoutEverywhere ends every session of the user who acts (the web
// UI's "sign out everywhere") and returns how many there were.
func (s *Service) LogoutEverywhere(ctx context.Context, who audit.Principal) (int, error) {
	if who.Kind != actorKind(who.Tenant) || who.Session == "" {
		return 0, ErrInvalidSession
	}
	return s.revoke(ctx, who, who.Tenant, who.ID, "", "session.logout_all")
}

func (s *Service) revoke(ctx context.Context, who audit.Principal, tenant, uid, sid, action string) (int, error) {
	if err := ownPrincipal(who, tenant); err != nil {
		return 0, err
	}
	if !validID(tenant, uid) {
		return 0, ErrNotFound
	}
	var ops, sysOps []raftstore.Op
	n := 0
	err := s.realm(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		if _, _, ok := r.Get(usersPath, []byte(uid)); !ok {
			return ErrNotFound
		}
		if sid == "" {
			n = countSessions(r, uid)
		} else if _, _, ok := r.Get(sessionsPath, []byte(sessionKey(uid, sid))); ok {
			n = 1
		}
		ops, sysOps = revokeOps(r, uid, sid)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("accounts: %s: %w", action, err)
	}
	if n == 0 {
		return 0, nil
	}
	details := map[string]string{"sessions": fmt.Sprint(n)}
	if sid != "" {
		details = map[string]string{"session": sid}
	}
	e, err := entry(who, s.now().UTC(), action, userTarget(uid), audit.OutcomeSuccess, details)
	if err != nil {
		return 0, err
	}
	if err := s.apply(ctx, tenant, &tenancy.Txn{Ops: ops, SystemOps: sysOps, Audit: [][]byte{e}}, action); err != nil {
		return 0, err
	}
	return n, nil
}

// ValidSessionID reports whether id has the form of a session id (a
// refresh family's: 128 bits in unpadded base64url).
func ValidSessionID(id string) bool {
	if len(id) != 22 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
