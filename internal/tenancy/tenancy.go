package tenancy

import (
	"context"
	"errors"
	"strings"

	"github.com/custos/custos/raftstore"
)

// Errors. ErrNoTenant is also what appliance/tenants reports for an unknown
// id (tenants.ErrNotFound is this error), so a write to a tenant deleted
// meanwhile and a lookup of an unknown one answer alike.
var (
	// ErrNoTenant: the tenant does not exist (or its id is malformed); a
	// transaction that met it applied nothing.
	ErrNoTenant = errors.New("tenant not found")
	// ErrOutOfScope: a transaction names something outside its tenant (an
	// empty bucket path, a chain prune, a write on a bucket that is not a
	// component's system bucket). It is a bug in the caller, and nothing of
	// the transaction is applied.
	ErrOutOfScope = errors.New("tenancy: the transaction reaches outside its tenant")
	// ErrRestricted: a transaction of a restricted Scope writes an item
	// outside its attribute scope (or a bucket its layout does not
	// declare); nothing of it is applied.
	ErrRestricted = errors.New("tenancy: the write reaches outside the attribute scope")
)

// SystemChain is the cluster's audit chain: operator actions on the cluster
// (tenant creation and deletion, membership, bootstrap).
const SystemChain = "system"

// Tenant id limits.
const (
	MinIDLen = 2
	MaxIDLen = 63
)

const (
	tenantPrefix = "tenant:" // of a tenant's bucket, chain and audit target
	sysBucket    = "sys"
	registryName = "tenants" // ["sys", "tenants"]
	metaKey      = "meta"
	// operatorsBucket is the operators' realm's bucket (Operators).
	operatorsBucket = "operators"
)

// registryPath is ["sys", "tenants"]. It is only ever put into transactions
// this package builds, never handed out.
var registryPath = raftstore.Path(sysBucket, registryName)

// Store is the replicated store the boundary wraps; *raftstore.Store
// implements it.
type Store interface {
	Apply(ctx context.Context, t *raftstore.Txn) (raftstore.Result, error)
	View(ctx context.Context, c raftstore.Consistency, fn func(*raftstore.ReadTx) error) error
}

var _ Store = (*raftstore.Store)(nil)

// Boundary hands out tenant-scoped handles on the replicated store. It is
// made once, by the node, and given to every service that touches tenant
// data; it is safe for concurrent use.
type Boundary struct{ raw Store }

// New wraps the replicated store.
func New(raw Store) *Boundary {
	if raw == nil {
		panic("tenancy: New needs a store")
	}
	return &Boundary{raw: raw}
}

// ValidID reports whether id is a well-formed tenant id:
// ^[a-z0-9][a-z0-9-]{1,62}$. Ids that are not well formed cannot exist, so
// callers may answer "not found" for them without a lookup. The rule is
// part of the isolation guarantee: an id holds no ':' or '/', so no id can
// name another tenant's bucket or chain, or a system bucket.
func ValidID(id string) bool {
	if len(id) < MinIDLen || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ChainOf is the name of tenant's audit chain, for the audit service's
// reads, proofs and exports ("" for a malformed id). A chain outlives its
// tenant, so this does not check that the tenant exists. Appends go through
// the tenant's Scope, which names the chain itself.
func ChainOf(tenant string) string {
	if !ValidID(tenant) {
		return ""
	}
	return tenantPrefix + tenant
}

// TenantOfChain is the tenant whose audit chain is chain; ok is false for
// the system chain and any other chain.
func TenantOfChain(chain string) (tenant string, ok bool) {
	id, ok := strings.CutPrefix(chain, tenantPrefix)
	if !ok || !ValidID(id) {
		return "", false
	}
	return id, true
}

// AuditTarget is how an audit entry names tenant as its target
// ("tenant:<id>", spelled like its bucket and chain).
func AuditTarget(tenant string) string { return tenantPrefix + tenant }
