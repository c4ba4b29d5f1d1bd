// Package backup takes backups of the whole replicated state, reads them
// back, and keeps the log archive of point-in-time restores.
//
// # A backup
//
// One age file, encrypted to the cluster's backup recipients (public
// keys in ["sys"] backup_recipients, appliance/cluster; their identities
// are the operators', never a node's — "separate key storage"). Inside:
//
//  1. the state dump (raftstore.Store.Dump): every bucket, key and value
//     at one raft index, read after a read barrier from one bbolt read
//     transaction. A logical dump rather than a copy of the file: the
//     file's free pages may still hold keys shredded by erasures (see
//     raftstore's DESIGN.md, "Compaction for crypto-shredding"), and a
//     backup lives for months;
//  2. the manifest (Manifest: index, term, revision, time, size and
//     SHA-256 of the dump, tenants, every audit chain's size, Merkle root
//     and last link), signed with the cluster's audit key as a note.
//
// The manifest comes after the dump because it holds the dump's digest.
// Records in the state are sealed per tenant already; age is a second
// layer over everything, and authenticates it: a file altered by one
// byte, or cut short, does not decrypt (ErrDamaged). Read checks, in
// order: the identity opens it (ErrIdentity), the dump loads, the
// manifest's signature is the audit key's (the one recorded in the state,
// or a pinned one — pin it: anyone with the public recipients could
// otherwise sign with a key of their own), its digest is the dump's and
// its index and chains the loaded state's (ErrSignature). On any failure
// no state file is left.
//
// Service.Backup writes one and records backup.taken in the system chain;
// the API streams it (POST /v1/sys/backup). Scheduler takes one into a
// directory every interval on the leader and keeps the newest N; its
// LastBackup is the backup-age metric.
//
// # Restores
//
// Read loads a backup's state into a new state file; the node package's
// Restore makes a data directory of it (new cluster credentials, a
// restore file its first start consumes). Ledgers reads every tenant's
// erasure ledger from a state file offline (through the tenancy boundary
// over raftstore.Offline) — the newer cluster's, from a newer backup —
// for the first start to re-apply (erasure.Service.Reapply). Drill is the
// restore drill: Read into a scratch directory, the audit self-check over
// every chain, counts.
//
// # The log archive
//
// See archive.go: the leader writes the committed raft log in encrypted,
// signed segments; ReplayArchive replays them onto a backup's state up to
// an index or a time, through the state machine itself (raftstore.Replay),
// which is deterministic — so the result is the state at that index.
package backup
