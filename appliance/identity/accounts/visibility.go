package accounts

import (
	"context"
	"fmt"

	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/visibility"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

var _ visibility.CustomRoles = (*Service)(nil)

// CustomRole returns tenant's custom role named name; found is false
// when the tenant defines none of that name (built-in roles are the
// table's, not the tenant's). It makes the service the custom-role
// source of the visibility resolver (visibility.WithCustomRoles), so a
// user bound to a custom role reads records as the role's visibility
// says. The read is linearizable, as resolving the user's session is: a
// changed role's visibility counts from the change on, on every node.
func (s *Service) CustomRole(ctx context.Context, tenant, name string) (roles.Role, bool, error) {
	if _, builtin := roles.Builtin(name); builtin {
		return roles.Role{}, false, nil
	}
	var role roles.Role
	found := false
	err := s.tenancy.Scope(tenant).View(ctx, raftstore.Linearizable, func(r tenancy.Read) error {
		role, found = tenantRole(r, name)
		return nil
	})
	if err != nil {
		return roles.Role{}, false, fmt.Errorf("accounts: custom role: %w", err)
	}
	return role, found, nil
}
