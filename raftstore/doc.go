// Package raftstore is a replicated, transactional key-value store:
// hashicorp/raft for replication, bbolt for the state. It knows nothing of
// tenants; the appliance builds tenants, audit and consent on top of it.
//
// The unit of replication is a [Txn]: conditions (a key is absent, present,
// or at version N), then puts and deletes on nested buckets, then appends to
// named chains — append-only logs whose entries the state machine numbers
// and links as it applies them: an entry's link is SHA-256 over the
// previous entry's link and the entry's Merkle leaf hash ([ChainLink],
// [ChainPos.Link]). A transaction applies entirely or not at all and has its
// own [Result], even though many transactions share one raft entry and many
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
// obtains a read index from the leader, which confirms its leadership by
// committing a no-op entry (readindex.go says why not VerifyLeader) — or local and possibly stale on request.
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
//
// # Where things live
//
// A write goes [Store.Apply] → the proposer (proposer.go: group commit on
// the leader side, one raft entry for many transactions; forward.go when
// this node is a follower) → raft → the [FSM]: fsm.go is the thin raft.FSM
// wrapper, commit.go applies batches of entries into one bbolt transaction
// and commits it (with rollback-and-replay after a business error),
// apply.go applies one transaction, chain.go appends to chains and tlog.go
// stores their Merkle trees, snapshot.go takes and restores snapshots, and
// codec.go encodes log entries (txn.go defines and validates [Txn]). Reads:
// read.go ([ReadTx]) and readindex.go ([Store.View], the read gate). The
// node: store.go (open, close, status), logstore.go (the fail-stop raft
// log), cluster.go (cluster RPC and membership), transport.go and pki.go
// (the mutual-TLS port), compact.go ([Store.Compact]), errors.go (the
// sentinels) and file.go ([WriteFileAtomic]).
package raftstore
