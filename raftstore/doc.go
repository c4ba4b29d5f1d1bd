// Package raftstore is a replicated, transactional key-value store:
// hashicorp/raft for replication, bbolt for the state. It knows nothing of
// tenants; the appliance builds tenants, audit and consent on top of it.
//
// The unit of replication is a [Txn]: conditions (a key is absent, present,
// or at version N), then puts and deletes on nested buckets, then appends to
// named chains — append-only logs whose entries the state machine numbers
// and hash-links (SHA-256 over the previous link and the entry's Merkle leaf
// hash, [ChainLink]) as it applies them. A transaction applies entirely or not at all and has its own
// [Result], even though many transactions share one raft entry and many
// entries share one bbolt commit (group commit).
//
// Each chain is also a transparency log (RFC 6962, as Go's checksum database
// builds one with golang.org/x/mod/sumdb/tlog): the state machine stores the
// Merkle tree hashes of every entry as it applies it, so [ReadTx.ChainTreeHash],
// [ReadTx.ChainProveRecord] and [ReadTx.ChainProveTree] are reads, never
// recomputations, and every node answers with the same hashes. Retention
// deletes old entries with [PruneChain] and keeps the tree, so proofs and
// roots do not change. An append that cannot be made refuses its whole
// transaction ([ErrChainUnwritable]): audit records fail closed.
//
// Writes may be sent to any node ([Store.Apply]); followers forward them to
// the leader. Reads ([Store.View]) are linearizable by default — the node
// obtains a read index from the leader, which confirms its leadership with a
// quorum — or local and possibly stale on request.
//
// Every node-to-node connection is mutual TLS on one port, with a cluster CA
// created at init ([NewClusterCredentials]) and node certificates issued on
// join ([FetchCredentials]) against a join token that pins the CA.
//
// The node stops (fail-stop) on any write or fsync error of its log or state,
// and on any log entry it cannot decode: it never acknowledges after an I/O
// error and never skips an entry. See DESIGN.md for the reasoning.
//
// Deleting a key does not remove its bytes from disk: bbolt keeps them in
// free pages, the raft log and the snapshots keep older copies.
// [Store.Compact] rewrites the state file, takes fresh snapshots, truncates
// and rewrites the log, so that bytes deleted before the call are in no
// file of that node — what crypto-shredding needs. It is node-local: the
// caller runs it on every node.
package raftstore
