package accounts

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// RoleInfo is a role as the API shows it: its definition in the form of
// a custom role (roles.Custom), whether it is built in, and whether it
// requires MFA.
type RoleInfo struct {
	roles.Custom
	Builtin     bool `json:"builtin"`
	RequiresMFA bool `json:"requires_mfa"`
}

func info(r roles.Role) RoleInfo {
	return RoleInfo{Custom: r.Custom(), Builtin: r.IsBuiltin(), RequiresMFA: r.RequiresMFA()}
}

// ListRoles returns the roles a tenant's users may hold: the built-in
// tenant roles, in the table's order, then the tenant's custom roles by
// name.
func (s *Service) ListRoles(ctx context.Context, tenant string) ([]RoleInfo, error) {
	var out []RoleInfo
	for _, r := range roles.Builtins() {
		if !r.ClusterWide() {
			out = append(out, info(r))
		}
	}
	var bad error
	exists := false
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		exists = r.Exists()
		r.Scan(rolesPath, nil, 0, func(_, v []byte, _ uint64) bool {
			role, err := roles.ParseCustom(v)
			if err != nil {
				bad = fmt.Errorf("accounts: stored role: %w", err)
				return false
			}
			out = append(out, info(role))
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: list roles: %w", err)
	}
	if !exists {
		return nil, fmt.Errorf("accounts: list roles: %w", tenants.ErrNotFound)
	}
	return out, bad
}

// GetRole returns one role of the tenant (ErrRoleNotFound).
func (s *Service) GetRole(ctx context.Context, tenant, name string) (RoleInfo, error) {
	var out RoleInfo
	found := false
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		role, ok := tenantRole(r, name)
		out, found = info(role), ok
		return nil
	})
	if err != nil {
		return RoleInfo{}, fmt.Errorf("accounts: get role: %w", err)
	}
	if !found {
		return RoleInfo{}, ErrRoleNotFound
	}
	return out, nil
}

// CreateRole defines a custom role of the tenant from the permission
// table's permissions (roles.Custom.Validate's rules; *validation.FieldError
// otherwise). A tenant principal may define only roles whose permissions
// its own role holds (ErrForbidden). Errors: ErrExists, ErrTooMany.
func (s *Service) CreateRole(ctx context.Context, who audit.Principal, tenant string, c roles.Custom) (RoleInfo, error) {
	if err := ownPrincipal(who, tenant); err != nil {
		return RoleInfo{}, err
	}
	role, err := c.Role()
	if err != nil {
		return RoleInfo{}, err
	}
	val, err := json.Marshal(role.Custom())
	if err != nil {
		return RoleInfo{}, fmt.Errorf("accounts: role: %w", err)
	}
	err = s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		if !r.Exists() {
			return tenants.ErrNotFound
		}
		if _, _, ok := r.Get(rolesPath, []byte(c.Name)); ok {
			return ErrExists
		}
		if r.Count(rolesPath) >= MaxRoles {
			return ErrTooMany
		}
		return mayGrant(r, who, role)
	})
	if err != nil {
		return RoleInfo{}, fmt.Errorf("accounts: create role: %w", err)
	}
	e, err := entry(who, s.now().UTC(), "role.create", "role:"+c.Name, audit.OutcomeSuccess, map[string]string{"permissions": fmt.Sprint(len(c.Permissions)), "mfa": fmt.Sprint(role.RequiresMFA())})
	if err != nil {
		return RoleInfo{}, err
	}
	if err := s.apply(ctx, tenant, &tenancy.Txn{
		Conds: []raftstore.Cond{cond(raftstore.CondAbsent, rolesPath, c.Name, 0)},
		Ops:   []raftstore.Op{{Kind: raftstore.OpPut, Bucket: rolesPath, Key: []byte(c.Name), Value: val}},
		Audit: [][]byte{e},
	}, "create role"); err != nil {
		return RoleInfo{}, err
	}
	return info(role), nil
}

// ValidRoleName reports whether name has the form of a role's name, built
// in ("qa", "read-only") or custom: 2 to 40 lower-case letters, digits and
// hyphens, starting with a letter.
func ValidRoleName(name string) bool {
	if len(name) < 2 || len(name) > 40 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
