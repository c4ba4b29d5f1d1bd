// Package tenants is the tenant registry: it creates, renames, suspends,
// resumes, lists and deletes the tenants of one cluster, and hands domain
// code a tenant-scoped handle ([Scope]) through which all of a tenant's
// storage is reached. It knows nothing of HTTP; the API adapts it.
//
// # Storage layout
//
// raftstore knows nothing of tenants, so the layout is defined here:
//
//	["sys","tenants"] / <id>   the registry: JSON of [Tenant], one key per tenant
//	["tenant:<id>"] / "meta"   marker written at creation
//	["tenant:<id>", ...]       everything else the tenant owns, via [Scope.Path]
//
// Below a tenant's bucket each domain package owns its own names, and
// documents them in its package doc: "keys" (keyring), "apikeys" and
// "apikeys_used" (apikeys), "collections" and "collections_history"
// (collections), "records", "index" and "subjects" (records), "blobs",
// "blob_uploads", "blob_chunks" and "blob_subjects" (blobs). The tenant's
// audit chain is "tenant:<id>" in raftstore's chain namespace.
//
// Each tenant owns exactly one top-level bucket, so deleting a tenant is one
// bucket deletion, and isolation is a property of how paths are built: a
// [Scope] can only produce paths below its own tenant's bucket, and tenant
// ids cannot contain ':' so no id can name another tenant's bucket or the
// "sys" bucket. Domain services are meant to reach storage only through a
// Scope, the way row-level security confines queries in a database, rather
// than by every handler remembering to filter by tenant.
//
// # Transactions and audit
//
// Every change is one raftstore transaction that carries its own audit
// entry, appended to the "system" chain ([AuditChain]): no entry, no change.
// Entries hold time, actor, action, target and request id, never display
// names or other free text, so the log holds no PII and never needs
// rewriting. Times and generated ids are chosen before proposing, because
// the state machine must be deterministic.
//
// Creation is conditioned on the registry key being absent ([ErrExists]
// otherwise). Updates read the tenant with its version and are conditioned
// on that version (optimistic concurrency); when another writer got there
// first the read-decide-write cycle is retried a few times before giving up
// with [ErrConflict]. A request therefore either applies completely or
// changes nothing. Suspending a suspended tenant, resuming an active one or
// renaming a tenant to its current name changes nothing and writes no audit
// entry.
//
// # Validation
//
// Ids are slugs matching ^[a-z0-9][a-z0-9-]{1,62}$ (2 to 63 characters);
// an empty id at creation is replaced by a generated one ("t-" and ten
// random base32 characters). Display names are trimmed and must then hold
// 1 to 200 characters of valid UTF-8 with no control characters and no
// bidirectional formatting characters (which can make a name display as
// something else). A tenant's region must be the cluster's own region
// (residency): an empty region means the cluster's, any other is refused
// with a [*RegionMismatchError]. Invalid input is reported as a
// [*validation.FieldError] that names the field and unwraps to
// [validation.ErrInvalid]. Lookups
// of ids that cannot be valid report [ErrNotFound] without touching storage.
package tenants
