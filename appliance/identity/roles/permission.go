package roles

import (
	"fmt"
	"strings"
)

// Resource is what a permission is over.
type Resource string

// Resources. Tenant roles hold permissions over their own tenant's
// objects; the Operator's are over the cluster and tenants' metadata.
const (
	Tenants     Resource = "tenants"     // a tenant's record: name, state, counts
	Users       Resource = "users"       // a tenant's people: accounts, role bindings, sessions, MFA resets
	Roles       Resource = "roles"       // a tenant's custom roles
	APIKeys     Resource = "apikeys"     // a tenant's API keys (principals of its applications)
	Keys        Resource = "keys"        // a tenant's encryption keys: versions, rotation, provider
	Collections Resource = "collections" // schemas: fields, classifications, blind indexes
	Records     Resource = "records"     // the data
	Blobs       Resource = "blobs"       // files attached to subjects and records
	Subjects    Resource = "subjects"    // everything about one data subject
	Audit       Resource = "audit"       // a chain of audit entries (the tenant's; the Operator's: the system chain)
	Settings    Resource = "settings"    // a tenant's security settings (SSO, break-glass policy); the Operator's: the cluster's
	Cluster     Resource = "cluster"     // nodes, raft membership, leadership, status
	BreakGlass  Resource = "breakglass"  // time-limited access of an operator to a tenant's data
	Requests    Resource = "requests"    // data-subject requests: access, export, erasure, rectification, ...
	Consent     Resource = "consent"     // processing purposes (update) and data subjects' consent (read, create: record a subject's choice)
)

// Action is what a permission allows on its resource.
type Action string

// Actions.
const (
	Read   Action = "read"   // get, list, find, count
	Create Action = "create" // make a new one (for break-glass: request access)
	Update Action = "update" // change (users: role, disable, MFA reset; break-glass: approve, revoke; tenants: suspend)
	Delete Action = "delete" // remove (subjects: erase everything about one)
	// Export takes a copy out in bulk: an audit export, a collection's
	// records, a subject's data (an access request). It is an action
	// on each resource, not a resource of its own, because what is
	// exported decides who may: an audit export is pseudonymous, a
	// records export carries what its fields carry.
	Export Action = "export"
)

// Permission is an action on a resource; its text form is
// "resource:action", such as "records:read".
type Permission struct {
	Resource Resource
	Action   Action
}

func (p Permission) String() string { return string(p.Resource) + ":" + string(p.Action) }

// MarshalText returns the text form.
func (p Permission) MarshalText() ([]byte, error) {
	if _, ok := index(p); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownPermission, p.String())
	}
	return []byte(p.String()), nil
}

// UnmarshalText parses the text form; see ParsePermission.
func (p *Permission) UnmarshalText(b []byte) error {
	q, err := ParsePermission(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// ParsePermission parses "resource:action", which must be one of
// [Permissions] exactly (lower case, no spaces).
func ParsePermission(s string) (Permission, error) {
	res, act, ok := strings.Cut(s, ":")
	p := Permission{Resource(res), Action(act)}
	if _, known := index(p); !ok || !known {
		return Permission{}, fmt.Errorf("%w: %q", ErrUnknownPermission, s)
	}
	return p, nil
}

// P is shorthand for Permission{r, a}.
func P(r Resource, a Action) Permission { return Permission{r, a} }

// permissions is every permission there is, in the order of the table
// and the golden file. Only meaningful pairs are here: a pair that is
// not (cluster:create) is not a permission and no role can hold it.
var permissions = [...]Permission{
	{Tenants, Read}, {Tenants, Create}, {Tenants, Update}, {Tenants, Delete},
	{Users, Read}, {Users, Create}, {Users, Update}, {Users, Delete},
	{Roles, Read}, {Roles, Create}, {Roles, Update}, {Roles, Delete},
	{APIKeys, Read}, {APIKeys, Create}, {APIKeys, Delete},
	{Keys, Read}, {Keys, Update},
	{Collections, Read}, {Collections, Update}, {Collections, Delete},
	{Records, Read}, {Records, Create}, {Records, Update}, {Records, Delete}, {Records, Export},
	{Blobs, Read}, {Blobs, Create}, {Blobs, Delete}, {Blobs, Export},
	{Subjects, Read}, {Subjects, Delete}, {Subjects, Export},
	{Requests, Read}, {Requests, Create}, {Requests, Update},
	{Audit, Read}, {Audit, Export},
	{Settings, Read}, {Settings, Update},
	{Cluster, Read}, {Cluster, Update},
	{BreakGlass, Read}, {BreakGlass, Create}, {BreakGlass, Update},
	{Consent, Read}, {Consent, Create}, {Consent, Update},
}

// Permissions returns every permission, in a stable order.
func Permissions() []Permission { return append([]Permission(nil), permissions[:]...) }

// index is p's bit in a Set.
func index(p Permission) (int, bool) {
	for i, q := range permissions {
		if q == p {
			return i, true
		}
	}
	return 0, false
}

// Set is a set of permissions. The zero Set is empty; a Set is a value
// (copying it copies the set).
type Set uint64

// SetOf returns the set of ps; it panics on a permission that is not in
// [Permissions] (the table is code: a typo there is a bug, not input).
func SetOf(ps ...Permission) Set {
	var s Set
	for _, p := range ps {
		i, ok := index(p)
		if !ok {
			panic("roles: unknown permission " + p.String())
		}
		s |= 1 << i
	}
	return s
}

// Has reports whether p is in s.
func (s Set) Has(p Permission) bool {
	i, ok := index(p)
	return ok && s&(1<<i) != 0
}

// List returns s's permissions in the order of [Permissions].
func (s Set) List() []Permission {
	var ps []Permission
	for i, p := range permissions {
		if s&(1<<i) != 0 {
			ps = append(ps, p)
		}
	}
	return ps
}

// Union returns s ∪ t.
func (s Set) Union(t Set) Set { return s | t }

// Intersects reports whether s and t share a permission.
func (s Set) Intersects(t Set) bool { return s&t != 0 }

// Without returns s minus t.
func (s Set) Without(t Set) Set { return s &^ t }

// all is every permission.
var all = Set(1<<len(permissions) - 1)

// Classification is how sensitive a field is; the values are those of
// collections' field classifications.
type Classification string

// Classifications.
const (
	PII       Classification = "pii"       // identifies a person: name, email, phone, address, document numbers
	Sensitive Classification = "sensitive" // special categories and money: health, dietary needs, payment details
	Internal  Classification = "internal"  // the business's own notes and flags
)

// Classifications returns the classifications, most sensitive first.
func Classifications() []Classification { return []Classification{PII, Sensitive, Internal} }

// BlobClass is the classification blob content is read under: a blob is
// a document about someone (a passport scan, a signed form), and a file
// cannot be masked, so a role reads blob bytes only when it reads pii in
// clear; otherwise it sees only blob metadata (with blobs:read).
const BlobClass = PII

// Visibility is how a role reads the values of a classification.
type Visibility string

// Visibilities, from most to least.
const (
	Clear  Visibility = "clear"  // the value
	Masked Visibility = "masked" // that a value exists, and its masked form
	None   Visibility = "none"   // not even that: the field is left out
)

func (v Visibility) valid() bool { return v == Clear || v == Masked || v == None }
