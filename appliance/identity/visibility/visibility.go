package visibility

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
)

// ErrWithheld is what the services wrap when they refuse a principal
// something its sight does not read: a find by a field it does not read
// in clear, a blob's bytes.
var ErrWithheld = errors.New("visibility: withheld from this principal")

// Sight is how one principal reads one tenant's data: a visibility per
// classification, and whether it downloads blob bytes. The zero Sight
// reads nothing.
type Sight struct {
	pii, sensitive, internal roles.Visibility
	blobs                    bool
}

// Of returns the visibility of classification c; an unknown
// classification reads as None.
func (s Sight) Of(c roles.Classification) roles.Visibility {
	var v roles.Visibility
	switch c {
	case roles.PII:
		v = s.pii
	case roles.Sensitive:
		v = s.sensitive
	case roles.Internal:
		v = s.internal
	}
	if v != roles.Clear && v != roles.Masked {
		return roles.None
	}
	return v
}

// Masked is s for a request that asks for masked values: pii and
// sensitive read in clear become masked; nothing becomes more visible.
func (s Sight) Masked() Sight {
	if s.pii == roles.Clear {
		s.pii = roles.Masked
	}
	if s.sensitive == roles.Clear {
		s.sensitive = roles.Masked
	}
	return s
}

// String is how s reads each classification, as read entries record it:
// "pii=clear,sensitive=masked,internal=clear".
func (s Sight) String() string {
	var b strings.Builder
	for i, c := range roles.Classifications() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(c) + "=" + string(s.Of(c)))
	}
	return b.String()
}

// BlobContent reports whether the principal downloads blob bytes.
func (s Sight) BlobContent() bool { return s.blobs }

// FromRole is the sight of a principal bound to role r.
func FromRole(r roles.Role) Sight {
	return Sight{
		pii: r.Visibility(roles.PII), sensitive: r.Visibility(roles.Sensitive), internal: r.Visibility(roles.Internal),
		blobs: r.ReadsBlobContent(),
	}
}

// Clear is the sight of a principal that reads everything: Custos
// itself, an operator under an active break-glass grant.
func Clear() Sight {
	return Sight{pii: roles.Clear, sensitive: roles.Clear, internal: roles.Clear, blobs: true}
}

// CustomRoles looks up a tenant's custom roles by name; found is false
// when the tenant has no role of that name.
type CustomRoles interface {
	CustomRole(ctx context.Context, tenant, name string) (r roles.Role, found bool, err error)
}

// Grants answers whether an operator holds an active, approved
// break-glass grant to read a tenant's data now.
type Grants interface {
	Granted(ctx context.Context, tenant string, operator audit.Principal) (bool, error)
}

// Resolver decides principals' sights. The zero Resolver is usable: no
// custom roles (users bound to one read nothing), no break-glass
// (operators read nothing).
type Resolver struct {
	custom CustomRoles
	grants Grants
}

// Option varies a Resolver.
type Option func(*Resolver)

// WithCustomRoles has the resolver look tenants' custom roles up in c.
func WithCustomRoles(c CustomRoles) Option { return func(r *Resolver) { r.custom = c } }

// WithGrants has operators read a tenant's data only under a break-glass
// grant g reports active.
func WithGrants(g Grants) Option { return func(r *Resolver) { r.grants = g } }

// New makes a resolver.
func New(opts ...Option) *Resolver {
	r := &Resolver{}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Sight is how p reads tenant's data (see the package doc). An error is
// a lookup that failed (a custom role, a grant), never a refusal: a
// principal that reads nothing gets the zero Sight.
func (r *Resolver) Sight(ctx context.Context, p audit.Principal, tenant string) (Sight, error) {
	switch p.Kind {
	case audit.ActorSystem:
		return Clear(), nil
	case audit.ActorOperator:
		if r != nil && r.grants != nil {
			ok, err := r.grants.Granted(ctx, tenant, p)
			if err != nil {
				return Sight{}, fmt.Errorf("visibility: break-glass grant: %w", err)
			}
			if ok {
				return Clear(), nil
			}
		}
		op, _ := roles.Builtin("operator")
		return FromRole(op), nil
	case audit.ActorAPIKey, audit.ActorUser:
		if p.Tenant != "" && p.Tenant != tenant {
			return Sight{}, nil
		}
		if p.Kind == audit.ActorAPIKey && p.Role == "" {
			role, err := roles.FromAPIKey(p.Permissions)
			if err != nil {
				return Sight{}, nil
			}
			return FromRole(role), nil
		}
		return r.named(ctx, tenant, p.Role)
	}
	return Sight{}, nil
}

// named is the sight of a tenant principal bound to the role named name.
func (r *Resolver) named(ctx context.Context, tenant, name string) (Sight, error) {
	if role, ok := roles.Builtin(name); ok {
		if role.ClusterWide() {
			return Sight{}, nil // a tenant's principal is never the Operator
		}
		return FromRole(role), nil
	}
	if r == nil || r.custom == nil || name == "" {
		return Sight{}, nil
	}
	role, ok, err := r.custom.CustomRole(ctx, tenant, name)
	if err != nil {
		return Sight{}, fmt.Errorf("visibility: custom role %q: %w", name, err)
	}
	if !ok {
		return Sight{}, nil
	}
	return FromRole(role), nil
}
