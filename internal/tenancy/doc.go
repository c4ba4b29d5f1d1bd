// Package tenancy is the tenant boundary: the one package that knows how a
// tenant's data and audit chain are named in the replicated store, and the
// only way into them. Everything else — the key hierarchy, API keys,
// collections, records, blobs, the read-audit batcher, the tenant registry
// — is handed a [*Boundary] and reaches a tenant's storage through the
// tenant-scoped handle it gives out, a [Scope], the way row-level security
// confines every query of a database to one tenant, rather than by every
// handler remembering to filter by tenant.
//
// It sits below both appliance/ and keyring/ (it imports only raftstore and
// the standard library), because keyring — a top-level package that must
// not depend on the appliance — keeps tenant key material and so must reach
// tenant storage through the same boundary as everyone else.
//
// # Layout
//
// raftstore knows nothing of tenants; the layout is defined here, and the
// names are those the cluster has always written (existing data stays
// valid):
//
//	["sys", "tenants"] / <id>     the registry: one key per tenant, its value
//	                              the registry's JSON (appliance/tenants)
//	["tenant:<id>"] / "meta"      marker written when the tenant is created
//	["tenant:<id>", <name>, ...]  everything the tenant owns, reached through
//	                              its Scope with paths relative to its bucket
//	["sys", <component>] / <key>  a component's own cluster-wide records
//	                              ([System]): "keyring", "apikeys"
//	["operators", <name>, ...]    the operators' realm ([Boundary.Operators]):
//	                              the cluster's own people (identity/accounts)
//	chain "tenant:<id>"           the tenant's audit chain
//	chain "system"                the cluster's audit chain ([SystemChain])
//
// Below a tenant's bucket each domain package owns its names and documents
// them in its package doc: "keys" (keyring), "apikeys" and "apikeys_used"
// (apikeys), "collections" and "collections_history" (collections),
// "records", "index" and "subjects" (records), "blobs", "blob_uploads",
// "blob_chunks" and "blob_subjects" (blobs), "users", "users_by_name",
// "users_meta", "roles", "sessions", "session_tokens" and "refresh"
// (identity/accounts), "consent_purposes", "consent_purpose_versions"
// and "consent_ledger" (privacy/consent). An audit entry that targets a tenant names it as
// "tenant:<id>" too ([AuditTarget]).
//
// # Isolation
//
// A [Scope] belongs to one well-formed tenant id ([ValidID]: a slug, so it
// cannot contain ':' or '/' and no id can name another tenant's bucket or
// the "sys" bucket) and builds no path outside that tenant's bucket: every
// bucket path handed to it is made relative to the tenant's bucket, an
// empty path is refused, and its transactions append only to the tenant's
// own chain, whose name the Scope supplies — a caller cannot name a chain.
// Every write through a Scope is also conditioned on the tenant existing in
// the registry, so nothing is written for a tenant deleted meanwhile
// ([ErrNoTenant] then, and nothing of the transaction is applied). The Scope
// of a malformed id reaches nothing: its every call fails with ErrNoTenant.
//
// # Attribute scopes
//
// A Scope may be restricted to the items of a principal's attribute scope
// ([Scope.Restrict], with a [Restriction] and the service's [Layout] of
// its buckets): its reads then see only the items inside the scope, and
// the references to them, as if nothing else existed, and its writes
// cannot put an item outside it. Services build the restricted handle from
// the principal they are handed, so the filter is the handle's, not each
// query's (restrict.go).
//
// # Component system records
//
// Some components keep cluster-wide records that must change in the same
// transaction as tenant data: keyring's purge, rewrap, Vault-key and shred
// signals (["sys", "keyring"]), and authentication's token-to-tenant index
// (["sys", "apikeys"]), which it must read before any tenant is known. A
// component declares its bucket once with [SystemOf]; a scoped [Txn] may
// carry conditions and writes on such a bucket (SystemConds, SystemOps) and
// nothing else outside its tenant: the boundary checks that each is a put,
// delete or condition on exactly ["sys", <component>] for a component name
// other than the registry's. Reads of a component's bucket
// ([Boundary.ViewSystem]) may open scoped reads of the tenants its records
// name ([SystemRead.Tenant]) in the same snapshot — an index is useless
// otherwise — but writes always go through a Scope.
//
// # The operators' realm
//
// The cluster's own people — operator users, their sessions and refresh
// tokens (appliance/identity/accounts) — belong to no tenant, yet are kept
// exactly as a tenant's users are. [Boundary.Operators] is their Scope: the
// same handle, rooted at the top-level "operators" bucket instead of a
// tenant's, appending to the system chain instead of a tenant's, with no
// condition on a tenant existing. So the accounts code is one code for
// both realms, and an operator's login, change or logout is written in
// one transaction with its entry in the system chain (and with the
// component system-bucket writes it carries, as a tenant's transaction
// may). No tenant id names this bucket (tenant buckets are "tenant:<id>").
//
// # The registry
//
// Only appliance/tenants creates, changes and deletes tenants, through
// [Boundary.Registry]: creating a tenant writes its registry entry and its
// bucket's marker (refused if either exists) with whatever else belongs to
// the creation (its keys); deleting one removes its entry and its whole
// bucket in one transaction. Every registry change carries its entry for the
// system chain.
//
// # Batched audit appends
//
// Reads of personal data are audited through a group commit (the
// read-audit batcher in appliance/audit): [Boundary.AppendBatch] appends
// entries of several scopes' chains in one transaction, each on the
// conditions (relative to its own tenant) its read saw. They are not
// conditioned on their tenants existing: each records an access that was
// made, and a tenant's chain outlives the tenant for its retention.
//
// # Keeping it so
//
// The tests of this package scan the module's sources and fail when a
// package other than this one spells a tenant bucket or chain name, when a
// domain package reaches the raw store (names raftstore.Txn, Append or
// ReadTx), or when keyring, raftstore or this package imports the
// appliance.
package tenancy
