package tenants

// Scope is a tenant-scoped handle on storage. The only way it builds bucket
// paths is below the tenant's own top-level bucket, so code holding a Scope
// cannot name another tenant's data or the system buckets. It is a value:
// cheap to copy, and safe for concurrent use.
//
// The zero Scope, and the Scope of a malformed id, build no paths at all:
// Path returns nil, which raftstore refuses as an empty bucket path. A
// mistake therefore fails closed instead of reaching a bucket outside any
// tenant.
type Scope struct {
	id   string
	root []byte // "tenant:" + id; nil for an invalid scope
}

// Scope returns the storage handle of tenant id. It does not check that the
// tenant exists; the API resolves and authorizes the tenant before handing
// a Scope to domain code.
func (s *Service) Scope(id string) Scope { return newScope(id) }

// ScopeOf is the storage handle of tenant id, for domain packages that are
// handed a tenant the API has already resolved and authorized. Like Scope,
// it builds paths only below that tenant's bucket (none for a malformed id).
func ScopeOf(id string) Scope { return newScope(id) }

func newScope(id string) Scope {
	if !ValidID(id) {
		return Scope{}
	}
	return Scope{id: id, root: []byte(tenantBucketPrefix + id)}
}

// ID is the tenant's id ("" for an invalid scope).
func (sc Scope) ID() string { return sc.id }

// Valid reports whether the scope belongs to a well-formed tenant id.
func (sc Scope) Valid() bool { return sc.root != nil }

// Path returns the bucket path ["tenant:<id>", names...]. With no names it
// is the tenant's top-level bucket. Every call returns fresh slices, so a
// caller that modifies a path cannot affect another.
func (sc Scope) Path(names ...string) [][]byte {
	if sc.root == nil {
		return nil
	}
	p := make([][]byte, 0, 1+len(names))
	p = append(p, append([]byte(nil), sc.root...))
	for _, n := range names {
		p = append(p, []byte(n))
	}
	return p
}
