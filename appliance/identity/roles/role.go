package roles

// Role is a named set of permissions with a visibility per field
// classification. A Role is an immutable value: the built-in ones come
// from [Builtin] and [Builtins], a tenant's own from [Custom.Role]; the
// zero Role allows nothing and sees nothing.
type Role struct {
	name    string
	title   string
	perms   Set
	vis     visibility
	mfa     bool
	cluster bool
	builtin bool
}

// visibility is a role's visibility per classification.
type visibility struct{ pii, sensitive, internal Visibility }

func (v visibility) of(c Classification) Visibility {
	var got Visibility
	switch c {
	case PII:
		got = v.pii
	case Sensitive:
		got = v.sensitive
	case Internal:
		got = v.internal
	}
	if !got.valid() {
		return None
	}
	return got
}

// Name is the role's identifier ("owner", "read-only", a custom role's
// name).
func (r Role) Name() string { return r.name }

// Title is the role's name for people ("Front of house").
func (r Role) Title() string { return r.title }

// Permissions returns the role's permissions.
func (r Role) Permissions() Set { return r.perms }

// Allows reports whether the role holds p.
func (r Role) Allows(p Permission) bool { return r.perms.Has(p) }

// Visibility is how the role reads values of classification c; an
// unknown classification is read as None (fail closed).
func (r Role) Visibility(c Classification) Visibility { return r.vis.of(c) }

// ReadsBlobContent reports whether the role may download blob bytes:
// it reads blobs and reads [BlobClass] in clear.
func (r Role) ReadsBlobContent() bool {
	return r.Allows(P(Blobs, Read)) && r.Visibility(BlobClass) == Clear
}

// RequiresMFA reports whether a principal bound to the role must have
// enrolled a second factor before it may do anything but enrol: a
// built-in role says so in the table; any role holding a privileged
// permission (one that grants access, takes data out in bulk or changes
// security settings) requires it whatever it says, so that a custom role
// cannot copy an Owner's powers without an Owner's MFA.
func (r Role) RequiresMFA() bool { return r.mfa || r.perms.Intersects(privileged) }

// ClusterWide reports whether the role is the Operator's: bound to
// cluster operators, not to a tenant's principals.
func (r Role) ClusterWide() bool { return r.cluster }

// IsBuiltin reports whether the role is one of the table's.
func (r Role) IsBuiltin() bool { return r.builtin }

// Allows reports whether role may do action on resource.
func Allows(role Role, resource Resource, action Action) bool {
	return role.Allows(Permission{resource, action})
}

// VisibilityOf is how role reads values of classification c.
func VisibilityOf(role Role, c Classification) Visibility { return role.Visibility(c) }

// Builtin returns the built-in role named name ("owner", "foh",
// "read-only", ...).
func Builtin(name string) (Role, bool) {
	for _, r := range builtins {
		if r.name == name {
			return r, true
		}
	}
	return Role{}, false
}

// Builtins returns the 11 built-in roles in the table's order: the ten
// tenant roles, then the Operator.
func Builtins() []Role { return append([]Role(nil), builtins[:]...) }
