package accounts

import (
	"context"
	"fmt"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/totp"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

// BootstrapRole is the role an operator may give a tenant's first user
// (see CreateUser).
const BootstrapRole = "owner"

// CreateUserInput is a new user: a username, an initial password (the
// password policy applies), a role (built in or the tenant's custom role)
// and optional attribute scopes.
type CreateUserInput struct {
	Username string
	Password string
	Role     string
	Scopes   map[string][]string
}

// callerRole is what the tenant principal who may grant: the role it acts
// in, read in r (an old API key's through its permissions). ok is false
// for an operator or the system.
func callerRole(r tenancy.Read, who audit.Principal) (roles.Role, bool, error) {
	switch who.Kind {
	case audit.ActorUser, audit.ActorAPIKey:
	default:
		return roles.Role{}, false, nil
	}
	if who.Role == "" && who.Kind == audit.ActorAPIKey {
		role, err := roles.FromAPIKey(who.Permissions)
		return role, err == nil, err
	}
	role, ok := tenantRole(r, who.Role)
	if !ok {
		return roles.Role{}, false, fmt.Errorf("accounts: the caller's role %q: %w", who.Role, ErrForbidden)
	}
	return role, true, nil
}

// ownPrincipal refuses a principal acting on people of a realm it is not
// of: an operator (or the system) on a tenant's people — the Operator's
// role holds no users:* or roles:* permission of a tenant, and its one
// exception is creating a tenant's first Owner (CreateUser) — and
// anything but an operator on the operators' realm.
func ownPrincipal(who audit.Principal, tenant string) error {
	if tenant == OperatorRealm {
		if who.Kind != audit.ActorOperator {
			return fmt.Errorf("accounts: only operators manage operators: %w", ErrForbidden)
		}
		return nil
	}
	if who.Kind != audit.ActorUser && who.Kind != audit.ActorAPIKey {
		return fmt.Errorf("accounts: only the tenant's own principals manage its people: %w", ErrForbidden)
	}
	return nil
}

// mayGrant refuses a tenant principal granting a role that holds a
// permission its own role lacks: granting access must not widen it.
func mayGrant(r tenancy.Read, who audit.Principal, granted roles.Role) error {
	mine, tenantCaller, err := callerRole(r, who)
	if err != nil {
		return err
	}
	if tenantCaller && granted.Permissions().Without(mine.Permissions()) != 0 {
		return fmt.Errorf("accounts: role %s holds permissions the caller's role lacks: %w", granted.Name(), ErrForbidden)
	}
	return nil
}

// CreateUser makes a user of tenant. A tenant principal (authorized by
// the API for users:create) may give only roles whose permissions its own
// role holds. An operator may create a tenant's first Owner — only an
// Owner, and only while the tenant has no Owner user (the bootstrap rule);
// anything else is ErrForbidden. In the operators' realm (tenant
// OperatorRealm) only an operator creates, and only operator users (role
// OperatorRole, the default; never scoped). Errors: ErrExists (the username is
// taken), ErrRoleNotFound, ErrTooMany, tenants.ErrNotFound, a
// *validation.FieldError.
func (s *Service) CreateUser(ctx context.Context, who audit.Principal, tenant string, in CreateUserInput) (User, error) {
	name, folded, err := normalizeUsername(in.Username)
	if err != nil {
		return User{}, err
	}
	if err := s.policy.Check(in.Password); err != nil {
		return User{}, err
	}
	scopes, err := checkScopes("scopes", in.Scopes)
	if err != nil {
		return User{}, err
	}
	if tenant == OperatorRealm {
		if err := ownPrincipal(who, tenant); err != nil {
			return User{}, err
		}
		if scopes != nil {
			return User{}, validation.Field("scopes", "an operator is not scoped")
		}
		if in.Role == "" {
			in.Role = OperatorRole
		}
	}
	if in.Role == "" {
		return User{}, validation.Field("role", "is required")
	}
	ikey, err := s.indexKey(ctx, tenant)
	if err != nil {
		return User{}, err
	}
	dek, err := s.dataKey(ctx, tenant)
	if err != nil {
		return User{}, err
	}
	index := nameIndex(ikey, folded)
	var rev uint64
	err = s.realm(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		if !r.Exists() {
			return tenants.ErrNotFound
		}
		role, ok := realmRole(r, tenant, in.Role)
		if !ok {
			return errUnknownRole()
		}
		if tenant == OperatorRealm {
			// Any operator may: the API admitted it by its role's
			// permission (ownPrincipal checked it is an operator).
		} else if who.Kind == audit.ActorOperator {
			if role.Name() != BootstrapRole || hasRole(r, BootstrapRole) {
				return fmt.Errorf("accounts: an operator creates only a tenant's first owner: %w", ErrForbidden)
			}
		} else if err := mayGrant(r, who, role); err != nil {
			return err
		}
		if _, _, taken := r.Get(namesPath, []byte(index)); taken {
			return ErrExists
		}
		if r.Count(usersPath) >= MaxUsers {
			return ErrTooMany
		}
		_, rev, _ = r.Get(usersMeta, []byte(keyRev))
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("accounts: create user: %w", err)
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	now := s.now().UTC()
	u := userRecord{ID: newID(tenant), NameIndex: index, Password: hash, Role: in.Role, Scopes: scopes,
		MFA: MFANone, CreatedAt: now, UpdatedAt: now, Version: 1}
	if u.Username, err = sealString(dek, tenant, u.ID, "username", name); err != nil {
		return User{}, err
	}
	e, err := entry(who, now, "user.create", userTarget(u.ID), audit.OutcomeSuccess, map[string]string{"role": u.Role, "scoped": fmt.Sprint(scopes != nil)})
	if err != nil {
		return User{}, err
	}
	rc, rp := revOps(rev)
	err = s.apply(ctx, tenant, &tenancy.Txn{
		Conds: []raftstore.Cond{cond(raftstore.CondAbsent, namesPath, index, 0), cond(raftstore.CondAbsent, usersPath, u.ID, 0), rc},
		Ops:   []raftstore.Op{putJSON(usersPath, u.ID, u), {Kind: raftstore.OpPut, Bucket: namesPath, Key: []byte(index), Value: []byte(u.ID)}, rp},
		Audit: [][]byte{e},
	}, "create user")
	if err != nil {
		return User{}, err
	}
	return u.open(dek, tenant)
}

// hasRole reports whether a user of the role exists.
func hasRole(r tenancy.Read, role string) bool {
	found := false
	r.Scan(usersPath, nil, 0, func(_, v []byte, _ uint64) bool {
		u, err := decodeUser(v)
		found = err == nil && u.Role == role
		return !found
	})
	return found
}

// enabledWithRole counts the enabled users of the role.
func enabledWithRole(r tenancy.Read, role string) int {
	n := 0
	r.Scan(usersPath, nil, 0, func(_, v []byte, _ uint64) bool {
		if u, err := decodeUser(v); err == nil && u.Role == role && !u.Disabled {
			n++
		}
		return true
	})
	return n
}

// ListUsers returns the tenant's users, by id, to one of its own
// principals (ErrForbidden for an operator: usernames are its people's
// personal data); the operators' realm's to an operator.
func (s *Service) ListUsers(ctx context.Context, who audit.Principal, tenant string) ([]User, error) {
	if err := ownPrincipal(who, tenant); err != nil {
		return nil, err
	}
	var recs []userRecord
	var decodeErr error
	exists := false
	err := s.realm(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		exists = r.Exists()
		r.Scan(usersPath, nil, 0, func(_, v []byte, _ uint64) bool {
			u, err := decodeUser(v)
			if err != nil {
				decodeErr = err
				return false
			}
			recs = append(recs, u)
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: list users: %w", err)
	}
	if !exists {
		return nil, fmt.Errorf("accounts: list users: %w", tenants.ErrNotFound)
	}
	if decodeErr != nil {
		return nil, decodeErr
	}
	out := []User{}
	if len(recs) == 0 {
		return out, nil
	}
	dek, err := s.dataKey(ctx, tenant)
	if err != nil {
		return nil, err
	}
	for i := range recs {
		u, err := recs[i].open(dek, tenant)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// GetUser returns one user of the tenant (ErrNotFound) to one of its own
// principals.
func (s *Service) GetUser(ctx context.Context, who audit.Principal, tenant, uid string) (User, error) {
	if err := ownPrincipal(who, tenant); err != nil {
		return User{}, err
	}
	u, _, err := s.readUser(ctx, tenant, uid)
	if err != nil {
		return User{}, err
	}
	dek, err := s.dataKey(ctx, tenant)
	if err != nil {
		return User{}, err
	}
	return u.open(dek, tenant)
}

func (s *Service) readUser(ctx context.Context, tenant, uid string) (userRecord, uint64, error) {
	if !validID(tenant, uid) {
		return userRecord{}, 0, ErrNotFound
	}
	var v []byte
	var ver uint64
	var ok bool
	err := s.realm(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		v, ver, ok = r.Get(usersPath, []byte(uid))
		return nil
	})
	if err != nil {
		return userRecord{}, 0, fmt.Errorf("accounts: read user: %w", err)
	}
	if !ok {
		return userRecord{}, 0, ErrNotFound
	}
	u, err := decodeUser(v)
	return u, ver, err
}

// Patch changes a user's role binding: Role (nil: unchanged) and Scopes
// (nil: unchanged; a pointer to an empty map: unscoped).
type Patch struct {
	Role   *string
	Scopes *map[string][]string
}

// UpdateUser changes a user's role or scopes. The caller may not change
// its own binding, give a role whose permissions its own lacks, or take
// the Owner role from the tenant's last enabled Owner (ErrForbidden). The
// change applies to every session of the user from the request after it
// (sessions read the user's current role).
func (s *Service) UpdateUser(ctx context.Context, who audit.Principal, tenant, uid string, p Patch) (User, error) {
	var scopes map[string][]string
	if p.Scopes != nil {
		var err error
		if scopes, err = checkScopes("scopes", *p.Scopes); err != nil {
			return User{}, err
		}
	}
	if p.Role == nil && p.Scopes == nil {
		return User{}, validation.Field("role", "or scopes must be given")
	}
	if tenant == OperatorRealm && scopes != nil {
		return User{}, validation.Field("scopes", "an operator is not scoped")
	}
	if err := ownPrincipal(who, tenant); err != nil {
		return User{}, err
	}
	if who.Kind == actorKind(tenant) && who.ID == uid {
		return User{}, fmt.Errorf("accounts: a user's own role binding: %w", ErrForbidden)
	}
	details := map[string]string{}
	return s.changeUser(ctx, who, tenant, uid, "user.update", details, func(r tenancy.Read, u *userRecord) error {
		if p.Role != nil {
			role, ok := realmRole(r, tenant, *p.Role)
			if !ok {
				return errUnknownRole()
			}
			if err := mayGrant(r, who, role); err != nil {
				return err
			}
			if u.Role == BootstrapRole && *p.Role != BootstrapRole && !u.Disabled && enabledWithRole(r, BootstrapRole) <= 1 {
				return fmt.Errorf("accounts: the tenant's last enabled owner: %w", ErrForbidden)
			}
			details["old_role"], details["role"] = u.Role, *p.Role
			u.Role = *p.Role
		}
		if p.Scopes != nil {
			details["scoped"] = fmt.Sprint(scopes != nil)
			u.Scopes = scopes
		}
		return nil
	}, nil)
}

// SetDisabled disables (revoking all of the user's sessions in the same
// transaction) or enables a user. Disabling oneself, or the tenant's last
// enabled Owner, is ErrForbidden.
func (s *Service) SetDisabled(ctx context.Context, who audit.Principal, tenant, uid string, disabled bool) (User, error) {
	if err := ownPrincipal(who, tenant); err != nil {
		return User{}, err
	}
	action := "user.enable"
	if disabled {
		action = "user.disable"
		if who.Kind == actorKind(tenant) && who.ID == uid {
			return User{}, fmt.Errorf("accounts: disabling oneself: %w", ErrForbidden)
		}
	}
	var revoke func(r tenancy.Read) ([]raftstore.Op, []raftstore.Op)
	if disabled {
		revoke = func(r tenancy.Read) ([]raftstore.Op, []raftstore.Op) { return revokeOps(r, uid, "") }
	}
	return s.changeUser(ctx, who, tenant, uid, action, nil, func(r tenancy.Read, u *userRecord) error {
		if disabled && !u.Disabled && u.Role == BootstrapRole && enabledWithRole(r, BootstrapRole) <= 1 {
			return fmt.Errorf("accounts: the tenant's last enabled owner: %w", ErrForbidden)
		}
		u.Disabled = disabled
		return nil
	}, revoke)
}

// ResetMFA removes a user's second factor and recovery codes (an
// administrator's help for a lost phone; audited). A user whose role
// requires MFA can then only enrol again.
func (s *Service) ResetMFA(ctx context.Context, who audit.Principal, tenant, uid string) (User, error) {
	if err := ownPrincipal(who, tenant); err != nil {
		return User{}, err
	}
	return s.changeUser(ctx, who, tenant, uid, "user.mfa_reset", nil, func(_ tenancy.Read, u *userRecord) error {
		u.TOTP, u.MFA, u.RecoveryLeft = nil, totp.StatusNone.String(), 0
		return nil
	}, nil)
}

// changeUser reads a user, lets change edit it (and extra add writes),
// and writes it back with its entry, conditioned on the user and the
// users' revision not having changed.
func (s *Service) changeUser(ctx context.Context, who audit.Principal, tenant, uid, action string, details map[string]string,
	change func(r tenancy.Read, u *userRecord) error, extra func(r tenancy.Read) ([]raftstore.Op, []raftstore.Op)) (User, error) {
	if !validID(tenant, uid) {
		return User{}, ErrNotFound
	}
	dek, err := s.dataKey(ctx, tenant)
	if err != nil {
		return User{}, err
	}
	var u userRecord
	var ver, rev uint64
	var ops, sysOps []raftstore.Op
	err = s.realm(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		v, version, ok := r.Get(usersPath, []byte(uid))
		if !ok {
			return ErrNotFound
		}
		var err error
		if u, err = decodeUser(v); err != nil {
			return err
		}
		ver = version
		_, rev, _ = r.Get(usersMeta, []byte(keyRev))
		if err := change(r, &u); err != nil {
			return err
		}
		if extra != nil {
			ops, sysOps = extra(r)
		}
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("accounts: %s: %w", action, err)
	}
	now := s.now().UTC()
	u.UpdatedAt, u.Version = now, u.Version+1
	e, err := entry(who, now, action, userTarget(uid), audit.OutcomeSuccess, details)
	if err != nil {
		return User{}, err
	}
	rc, rp := revOps(rev)
	if err := s.apply(ctx, tenant, &tenancy.Txn{
		Conds:     []raftstore.Cond{cond(raftstore.CondVersion, usersPath, uid, ver), rc},
		Ops:       append([]raftstore.Op{putJSON(usersPath, uid, u), rp}, ops...),
		SystemOps: sysOps,
		Audit:     [][]byte{e},
	}, action); err != nil {
		return User{}, err
	}
	return u.open(dek, tenant)
}

// Unlock forgets a user's failed login attempts (the login backoff's
// delays for the account) on every node: the unlock time is stored with
// the user and audited, and each node applies it at the user's next login
// attempt there (this node at once).
func (s *Service) Unlock(ctx context.Context, who audit.Principal, tenant, uid string) (User, error) {
	if err := ownPrincipal(who, tenant); err != nil {
		return User{}, err
	}
	var at time.Time
	u, err := s.changeUser(ctx, who, tenant, uid, "user.unlock", nil, func(_ tenancy.Read, u *userRecord) error {
		at = s.now().UTC()
		u.UnlockedAt = &at
		return nil
	}, nil)
	if err != nil {
		return User{}, err
	}
	if s.backoff != nil {
		_, folded, _ := normalizeUsername(u.Username)
		s.backoff.Unlock(accountKey(tenant, folded), at)
	}
	return u, nil
}

// errUnknownRole refuses a role binding that names no role of the tenant.
func errUnknownRole() error {
	return fmt.Errorf("%w: %w", ErrRoleNotFound, validation.Field("role", "must be a built-in tenant role or one of the tenant's custom roles"))
}

// HasOwnerUser reports whether tenant has a user of the Owner role
// (enabled or not): until it has, the tenant is bootstrapping, and the
// operator may create its first principals (the API's authorization and
// CreateUser decide by the same rule).
func (s *Service) HasOwnerUser(ctx context.Context, tenant string) (bool, error) {
	has := false
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		has = hasRole(r, BootstrapRole)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("accounts: owners of %s: %w", tenant, err)
	}
	return has, nil
}
