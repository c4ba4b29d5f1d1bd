// Package cluster owns the records a Custos cluster keeps about itself in
// its replicated state — the cluster record and the hashes of the two
// cluster secrets — and the checks made against them: the operator token
// for the API ([Service.CheckOperatorToken] implements api.Auth), the join
// token for raftstore's join handshake, and the system-chain audit of
// every membership change before it happens.
//
// # Storage
//
// Bucket ["sys"] of the replicated state:
//
//	cluster                JSON {"region", "initialized_at", "first_node"}
//	operator_token_sha256  hex SHA-256 of the operator token
//	join_token_sha256      hex SHA-256 of the join token
//	backup_recipients      JSON list of the age recipients backups are
//	                       encrypted to (public keys; their identities are
//	                       the operators', never the cluster's)
//
// [Service.Restored] replaces the join token's hash at the first start of
// a cluster restored from a backup (its CA is new, so the old token could
// not be used) and records cluster.restore in the system chain.
//
// [Service.Bootstrap] writes all three in one transaction, conditional on
// the cluster record being absent, together with the seal recipients
// (keyring.BootstrapOps), the audit checkpoint keys (audit.BootstrapOps)
// and the system chain's cluster.init entry. A cluster is therefore
// initialized completely or not at all, and a first node restarted before
// it removed its bootstrap file writes nothing twice.
//
// # Why hashes, in the replicated state
//
// Every node serves the API and may admit a joining node, so every node
// must be able to check both tokens. The tokens themselves are printed once
// by `custos operator init` and never stored, so a copy of the state (a
// backup, a snapshot, a lost disk) does not hold them. The hashes change
// only at bootstrap, so checks read the local state (raftstore.Stale) and
// keep working on a node that has no leader.
//
// # Genesis
//
// `operator init` runs before any store exists. [NewGenesis] makes what
// the first start will write — token hashes, seal recipients, the audit key
// pair with its signing half encrypted to the seal recipients — and the
// node keeps it in its data directory until then.
//
// # Start-up order
//
// raftstore calls the join and membership hooks as soon as its transport
// listens, which is before Open returns the store. So a [Service] is made
// first, its methods are given to raftstore.Open, and [Service.Attach]
// hands it the store once it is open; until then every check fails with
// [ErrNotAttached] (a join attempt in that window is refused, not a crash).
package cluster
