package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/password"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/token"
	"github.com/custos/custos/appliance/identity/totp"
	"github.com/custos/custos/appliance/ratelimit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Limits.
const (
	MaxUsers       = 10000 // users per tenant
	MaxRoles       = 100   // custom roles per tenant
	MaxUsernameLen = 128   // characters
)

// Keys is the part of the keyring the service uses; *keyring.Hierarchy
// implements it.
type Keys interface {
	// DataKey seals usernames and TOTP states (subject "": the tenant's
	// own data key).
	DataKey(ctx context.Context, tenant, subject string) (*keyring.Key, error)
	// IndexKey keys the blind index of usernames.
	IndexKey(ctx context.Context, tenant string) ([]byte, error)
	// AuditKey keys the pseudonym of a username typed in a failed login.
	AuditKey(ctx context.Context, tenant string) ([]byte, error)
	// ClusterKey, ClusterIndexKey and ClusterAuditKey are the same three
	// for the operators' realm: the cluster's own key, sealed to the seal
	// recipients (a sealed node has none: *keyring.UnavailableError).
	ClusterKey(ctx context.Context) (*keyring.Key, error)
	ClusterIndexKey(ctx context.Context) ([]byte, error)
	ClusterAuditKey(ctx context.Context) ([]byte, error)
}

// OperatorRealm is the "tenant" of operator users: none. Every method
// that takes a tenant takes OperatorRealm for the operators' realm where
// its doc says so (users, login, sessions, MFA); see the package doc.
const OperatorRealm = ""

// OperatorRole is the one role of operator users.
const OperatorRole = "operator"

// realm is the store handle of tenant's people: the tenant's Scope, or
// the operators' realm for OperatorRealm.
func (s *Service) realm(tenant string) tenancy.Scope {
	if tenant == OperatorRealm {
		return s.tenancy.Operators()
	}
	return s.tenancy.Scope(tenant)
}

// dataKey, indexKey and auditKey are the realm's keys.
func (s *Service) dataKey(ctx context.Context, tenant string) (*keyring.Key, error) {
	if tenant == OperatorRealm {
		return s.keys.ClusterKey(ctx)
	}
	return s.keys.DataKey(ctx, tenant, "")
}

func (s *Service) indexKey(ctx context.Context, tenant string) ([]byte, error) {
	if tenant == OperatorRealm {
		return s.keys.ClusterIndexKey(ctx)
	}
	return s.keys.IndexKey(ctx, tenant)
}

func (s *Service) auditKey(ctx context.Context, tenant string) ([]byte, error) {
	if tenant == OperatorRealm {
		return s.keys.ClusterAuditKey(ctx)
	}
	return s.keys.AuditKey(ctx, tenant)
}

// actorKind is the principal kind of the realm's people: operator users
// are operators (contract: Kind operator, ID the user id), a tenant's are
// users.
func actorKind(tenant string) string {
	if tenant == OperatorRealm {
		return audit.ActorOperator
	}
	return audit.ActorUser
}

// tokenKind is the access-token kind of the realm's people.
func tokenKind(tenant string) string {
	if tenant == OperatorRealm {
		return token.KindOperator
	}
	return token.KindUser
}

// realmRole is the role named name for a user of tenant's realm: the
// Operator role (and nothing else) in the operators' realm, otherwise
// tenantRole.
func realmRole(r tenancy.Read, tenant, name string) (roles.Role, bool) {
	if tenant == OperatorRealm {
		if name != OperatorRole {
			return roles.Role{}, false
		}
		return roles.Builtin(OperatorRole)
	}
	return tenantRole(r, name)
}

var _ Keys = (*keyring.Hierarchy)(nil)

// Options configure a Service. Keys and Signer are required.
type Options struct {
	Keys   Keys
	Signer Signer
	// Hasher hashes and checks passwords (nil: OWASP parameters, the
	// default concurrency).
	Hasher *password.Hasher
	// Now is the clock of tokens, sessions, TOTP codes and entries (nil:
	// time.Now).
	Now func() time.Time
	// RefreshLifetime is a refresh token's (0:
	// token.DefaultRefreshLifetime).
	RefreshLifetime time.Duration
	// Backoff slows down password and code guessing per account and per
	// source (nil: none); the node shares one with the API.
	Backoff *ratelimit.Backoff
}

// Service manages a tenant's users, custom roles and sessions. It is
// safe for concurrent use.
type Service struct {
	tenancy *tenancy.Boundary
	keys    Keys
	signer  Signer
	hasher  *password.Hasher
	policy  *password.Policy
	totp    *totp.Authenticator
	now     func() time.Time
	refresh time.Duration
	backoff *ratelimit.Backoff
}

// New makes the service. Options without Keys or Signer are a wiring
// mistake, and panic.
func New(b *tenancy.Boundary, o Options) (*Service, error) {
	if b == nil || o.Keys == nil || o.Signer == nil {
		panic("accounts: New needs a boundary, keys and a signer")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Hasher == nil {
		h, err := password.NewHasher(password.Options{})
		if err != nil {
			return nil, fmt.Errorf("accounts: %w", err)
		}
		o.Hasher = h
	}
	if o.RefreshLifetime == 0 {
		o.RefreshLifetime = token.DefaultRefreshLifetime
	}
	return &Service{tenancy: b, keys: o.Keys, signer: o.Signer, hasher: o.Hasher, policy: password.NewPolicy(),
		totp: totp.New(o.Now), now: o.Now, refresh: o.RefreshLifetime, backoff: o.Backoff}, nil
}

// Paths relative to the tenant's bucket (see the package doc).
var (
	usersPath    = raftstore.Path("users")
	namesPath    = raftstore.Path("users_by_name")
	usersMeta    = raftstore.Path("users_meta")
	rolesPath    = raftstore.Path("roles")
	sessionsPath = raftstore.Path("sessions")
	tokensPath   = raftstore.Path("session_tokens")
	refreshPath  = raftstore.Path("refresh")
)

// sysIdentity is the package's system bucket, ["sys", "identity"]: the
// refresh-token index (see the package doc).
var sysIdentity = tenancy.SystemOf("identity")

// keyRev is the users_meta record every change of a user's role or
// state bumps, so that a decision over all users (the tenant's first
// Owner, its last enabled Owner) is conditioned on none of them changing.
const keyRev = "rev"

// The MFA statuses a User shows (totp.Status names).
const (
	MFANone    = "none"
	MFAPending = "pending"
	MFAActive  = "active"
)

// User is a tenant's user as the service answers it: the username
// opened, no hashes, no secrets.
type User struct {
	ID       string              `json:"id"`
	Tenant   string              `json:"tenant"`
	Username string              `json:"username"`
	Role     string              `json:"role"`
	Scopes   map[string][]string `json:"scopes,omitempty"`
	Disabled bool                `json:"disabled"`
	// MFA is none, pending (enrolment started, not confirmed) or active.
	MFA string `json:"mfa"`
	// RecoveryCodes is how many unused recovery codes remain (active
	// MFA only).
	RecoveryCodes int       `json:"recovery_codes,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	Version       uint64    `json:"version"`
}

// userRecord is a user as stored: no personal data in the clear.
type userRecord struct {
	ID string `json:"id"`
	// Username is sealed under the tenant's data key, bound to the user
	// id; NameIndex is its blind index (hex), the key of users_by_name.
	Username  []byte `json:"username"`
	NameIndex string `json:"name_index"`
	// Password is the argon2id PHC string.
	Password string              `json:"password"`
	Role     string              `json:"role"`
	Scopes   map[string][]string `json:"scopes,omitempty"`
	Disabled bool                `json:"disabled,omitempty"`
	// TOTP is the totp.State, sealed like Username; MFA its status, in
	// the clear so that listing users and resolving a session need not
	// open it, and RecoveryLeft the number of unused recovery codes.
	TOTP         []byte `json:"totp,omitempty"`
	MFA          string `json:"mfa"`
	RecoveryLeft int    `json:"recovery_left,omitempty"`
	// UnlockedAt is an administrator's last unlock: every node forgets
	// the account's failed attempts made before it (ratelimit.Backoff).
	UnlockedAt *time.Time `json:"unlocked_at,omitempty"`
	// IdP is the blind index of the identity-provider identity the user
	// is linked to (its key in users_by_idp; see sso.go); empty for a
	// user who signs in with a password.
	IdP       string    `json:"idp,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Version   uint64    `json:"version"`
}

// place is where a user's sealed field lives (keyring binds the
// ciphertext to it).
func place(tenant, uid, field string) keyring.Place {
	return keyring.Place{Tenant: tenant, Collection: "users", RecordID: uid, Field: field}
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newUserID is "usr_" and 80 random bits in lower-case base 32.
func newUserID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail
	return "usr_" + strings.ToLower(b32.EncodeToString(b[:]))
}

// newOperatorID is "op_" and 80 random bits in lower-case base 32.
func newOperatorID() string { return "op_" + newUserID()[len("usr_"):] }

// newID is a new user id of tenant's realm.
func newID(tenant string) string {
	if tenant == OperatorRealm {
		return newOperatorID()
	}
	return newUserID()
}

// validID reports whether id has the form of a user id of tenant's realm.
func validID(tenant, id string) bool {
	if tenant == OperatorRealm {
		return ValidOperatorID(id)
	}
	return ValidUserID(id)
}

// ValidUserID reports whether id has the form of a tenant user's id.
func ValidUserID(id string) bool { return validIDAfter(id, "usr_") }

// ValidOperatorID reports whether id has the form of an operator user's id.
func ValidOperatorID(id string) bool { return validIDAfter(id, "op_") }

func validIDAfter(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != 16 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// normalizeUsername checks a username and returns it as stored (NFC,
// trimmed) and folded (lower case: what the blind index is of, so that
// "Jane@Example.com" and "jane@example.com" are one user). A username is
// 1 to 128 characters without control characters or colons (it names the
// account in authenticator apps, whose labels a colon splits).
func normalizeUsername(s string) (stored, folded string, err error) {
	bad := validation.Field("username", "must be 1 to 128 characters without control characters or colons")
	if !utf8.ValidString(s) || len(s) > 4*MaxUsernameLen {
		return "", "", bad
	}
	s = strings.TrimSpace(norm.NFC.String(s))
	if s == "" || utf8.RuneCountInString(s) > MaxUsernameLen {
		return "", "", bad
	}
	for _, r := range s {
		if r == ':' || unicode.IsControl(r) {
			return "", "", bad
		}
	}
	return s, strings.ToLower(s), nil
}

// nameIndex is the blind index of a folded username.
func nameIndex(key []byte, folded string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("custos/username/v1\x00"))
	m.Write([]byte(folded))
	return hex.EncodeToString(m.Sum(nil))
}

// checkScopes validates attribute scopes by the one rule for them
// (validation.Scopes) and returns them with sorted values (nil when
// empty: unscoped).
func checkScopes(field string, in map[string][]string) (map[string][]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	if err := validation.Scopes(field, in); err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(in))
	for name, values := range in {
		out[name] = slices.Sorted(slices.Values(values))
	}
	return out, nil
}

// tenantRole is the role named name for a user of a tenant: a built-in
// tenant role, or one of the tenant's custom roles read in r.
func tenantRole(r tenancy.Read, name string) (roles.Role, bool) {
	if b, ok := roles.Builtin(name); ok {
		return b, !b.ClusterWide()
	}
	v, _, ok := r.Get(rolesPath, []byte(name))
	if !ok {
		return roles.Role{}, false
	}
	role, err := roles.ParseCustom(v)
	return role, err == nil
}

// decodeUser decodes a stored user.
func decodeUser(v []byte) (userRecord, error) {
	var u userRecord
	if err := json.Unmarshal(v, &u); err != nil {
		return userRecord{}, fmt.Errorf("accounts: stored user: %w", err)
	}
	return u, nil
}

// open returns the user as answered, its username opened with key.
func (u *userRecord) open(key *keyring.Key, tenant string) (User, error) {
	name, err := keyring.Open(key, place(tenant, u.ID, "username"), u.Username)
	if err != nil {
		return User{}, fmt.Errorf("accounts: username of %s: %w", u.ID, err)
	}
	return User{ID: u.ID, Tenant: tenant, Username: string(name), Role: u.Role, Scopes: u.Scopes, Disabled: u.Disabled,
		MFA: u.MFA, RecoveryCodes: u.RecoveryLeft, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, Version: u.Version}, nil
}

// totpState opens the user's TOTP state (the zero State when none).
func (u *userRecord) totpState(key *keyring.Key, tenant string) (totp.State, error) {
	if u.TOTP == nil {
		return totp.State{}, nil
	}
	b, err := keyring.Open(key, place(tenant, u.ID, "totp"), u.TOTP)
	if err != nil {
		return totp.State{}, fmt.Errorf("accounts: totp state of %s: %w", u.ID, err)
	}
	return totp.ParseState(b)
}

// setTOTP seals st into the record (the zero State clears it).
func (u *userRecord) setTOTP(key *keyring.Key, tenant string, st totp.State) error {
	u.MFA, u.RecoveryLeft = st.Status().String(), 0
	if st.Status() == totp.StatusNone {
		u.TOTP = nil
		return nil
	}
	b, err := st.MarshalBinary()
	if err != nil {
		return fmt.Errorf("accounts: totp state: %w", err)
	}
	if u.TOTP, err = keyring.Seal(key, place(tenant, u.ID, "totp"), b); err != nil {
		return fmt.Errorf("accounts: seal totp state: %w", err)
	}
	if st.Status() == totp.StatusActive {
		u.RecoveryLeft = st.RecoveryRemaining()
	}
	return nil
}

// apply applies t in tenant's realm (its scope, or the operators') and maps its outcome: a failed
// condition is ErrConflict unless onCond says otherwise.
func (s *Service) apply(ctx context.Context, tenant string, t *tenancy.Txn, what string) error {
	res, err := s.realm(tenant).Apply(ctx, t)
	if err != nil {
		return fmt.Errorf("accounts: %s: %w", what, err)
	}
	if res.Err != nil {
		return fmt.Errorf("accounts: %s: %w", what, res.Err)
	}
	if !res.Applied {
		return fmt.Errorf("accounts: %s: %w", what, ErrConflict)
	}
	return nil
}

// entry encodes p's entry of action on target.
func entry(p audit.Principal, now time.Time, action, target, outcome string, details map[string]string) ([]byte, error) {
	b, err := p.Entry(now, action, target, outcome, details).Encode()
	if err != nil {
		return nil, fmt.Errorf("accounts: audit entry: %w", err)
	}
	return b, nil
}

func userTarget(uid string) string { return "user:" + uid }

func putJSON(bucket [][]byte, key string, v any) raftstore.Op {
	b, _ := json.Marshal(v) // the package's own types always encode
	return raftstore.Op{Kind: raftstore.OpPut, Bucket: bucket, Key: []byte(key), Value: b}
}

func del(bucket [][]byte, key string) raftstore.Op {
	return raftstore.Op{Kind: raftstore.OpDelete, Bucket: bucket, Key: []byte(key)}
}

func cond(kind raftstore.CondKind, bucket [][]byte, key string, version uint64) raftstore.Cond {
	return raftstore.Cond{Kind: kind, Bucket: bucket, Key: []byte(key), Version: version}
}

// revCond and revPut condition a change on users_meta/rev being at
// version (0: absent) and bump it.
func revOps(version uint64) (raftstore.Cond, raftstore.Op) {
	c := cond(raftstore.CondVersion, usersMeta, keyRev, version)
	if version == 0 {
		c = cond(raftstore.CondAbsent, usersMeta, keyRev, 0)
	}
	return c, raftstore.Op{Kind: raftstore.OpPut, Bucket: usersMeta, Key: []byte(keyRev), Value: []byte("1")}
}

// sealString seals a user's text field under the tenant's data key.
func sealString(key *keyring.Key, tenant, uid, field, value string) ([]byte, error) {
	b, err := keyring.Seal(key, place(tenant, uid, field), []byte(value))
	if err != nil {
		return nil, fmt.Errorf("accounts: seal %s: %w", field, err)
	}
	return b, nil
}

// accountKey names an account in the login backoff (node memory only):
// the tenant and the folded username, typed names of nobody included.
func accountKey(tenant, folded string) string { return tenant + "/" + folded }
