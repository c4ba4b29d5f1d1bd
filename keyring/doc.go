// Package keyring encrypts Custos data under keys its tenants control.
//
// The cryptographic core: [Seal] and [Open] for values bound to their place,
// [NewWriter] and [NewReader] for blobs as a chunked stream, and
// [Wrap]/[Unwrap] for keys wrapped by a key-encryption key. On it, the key
// hierarchy: a per-tenant root ([AgeRoot], sealed to the cluster's seal
// identity, or [VaultRoot], a transit key in the customer's Vault),
// versioned tenant KEKs, per-subject and per-tenant data keys ([Hierarchy],
// stored in raftstore), the [Cache] of unwrapped keys, rotation, revocation,
// provider changes and shredding, and the per-node [Janitor] that finishes
// rewraps, purges caches cluster-wide, compacts files after a shred and trims
// superseded transit versions. See DESIGN.md.
//
// The hierarchy's files: hierarchy.go (the type, its storage names, seal
// recipients, audit and derived keys), provision.go (a tenant's first
// keys), datakey.go (reading and creating data keys), rotate.go (rotation,
// rewrap, provider changes), shred.go (shredding, tenant deletion, cache
// purges), janitor.go (the per-node background work).
//
// # Storage and audit
//
// keyring is below the appliance and imports none of it. It reaches tenant
// storage only through the tenancy boundary (internal/tenancy): a tenant's
// "keys" bucket and audit chain through the tenant's Scope, so every key
// operation is conditioned on the tenant existing; and its cluster-wide
// signals (cache purges, shreds, rewraps, Vault-key index) through its own
// system bucket, ["sys", "keyring"], which the boundary lets a tenant's
// transaction carry. Each key operation records an audit entry in the
// tenant's chain in the same transaction; keyring does not know the entry
// format: the caller passes an [Auditor] (audit.Principal is one) that makes
// the entry's bytes, and [HierarchyOptions] supply the auditor of the
// hierarchy's own work and the pseudonym function that names subjects.
//
// # Binding
//
// Every ciphertext is bound to its [Place] — tenant, collection, record id,
// field, record version — and to the version of the key that sealed it:
// they are the AEAD's associated data, so a ciphertext copied to another
// tenant, record, field or version does not open.
//
// # Nonces
//
// Values and wrapped keys use XAES-256-GCM (c2sp.org/XAES-256-GCM) with
// random 192-bit nonces; streams derive a fresh key per stream from a random
// 256-bit salt and number their chunks. No key comes near the 2^32-message
// bound of AES-GCM with random 96-bit nonces (DESIGN.md states the bounds).
//
// # Compatibility
//
// Every format starts with a magic byte and a version byte; a reader refuses
// what it does not know instead of guessing.
package keyring
