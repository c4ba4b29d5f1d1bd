// Package tenants is the tenant registry: it creates, renames, suspends,
// resumes, lists and deletes the tenants of one cluster. It knows nothing
// of HTTP; the API adapts it.
//
// # Storage
//
// The layout of tenant storage, and the handle through which domain code
// reaches one tenant's data, belong to the tenancy boundary
// (internal/tenancy), which documents them. The registry keeps one entry
// per tenant, the JSON of [Tenant], and reaches it only through the
// boundary's registry storage (tenancy.Boundary.Registry): creating a
// tenant registers it and creates its bucket in one transaction, with its
// key hierarchy ([Keys]); deleting it removes the entry and the whole
// bucket — every byte the tenant owns — in one transaction, while its
// audit chain stays for its retention. A tenant id is a slug ([ValidID],
// the boundary's rule), so no id can name another tenant's data.
//
// # Transactions and audit
//
// Every change is one raftstore transaction that carries its own audit
// entry, appended to the cluster's "system" chain (tenancy.SystemChain):
// no entry, no change. Entries hold time, actor, action, target and request id, never display
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
//
// # Privacy settings
//
// A tenant carries the settings its data-subject requests and its
// retention are decided by: its regulation mode (gdpr, ccpa, pipeda or
// dpdp — appliance/privacy/deadline's modes; default gdpr), the IANA time
// zone whose calendar days request deadlines are counted in (default UTC),
// its response period under dpdp (1 to 90 days, default 30) and its
// default retention (retention_days, 1 to 36500, default 365): how long a
// record of a collection that sets no retention_days of its own is kept
// before the retention sweeper erases it. An entry written before these
// settings existed reads with the defaults ([Decode]), so every tenant has
// them; [Tenant.Deadlines] turns them into the deadline rule and zone.
//
// The default retention is one year in every mode, GDPR included. The
// GDPR fixes no period (Art. 5(1)(e), storage limitation: no longer than
// necessary for the purposes), and the "two years" of the trust pages is a
// suggestion a GDPR tenant may choose (retention_days 730), not what the
// law requires; keeping data longer than the tenant decided is the error
// the law punishes, so choosing the regulation mode never lengthens
// retention by itself, and changing one setting never changes another.
package tenants
