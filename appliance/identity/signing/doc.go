// Package signing keeps the cluster's access-token signing keys: one
// token.KeySet shared by every node, stored in the replicated store with
// its private keys sealed, rotated on a schedule, and handed out as the
// token.Authority that issues and verifies access tokens.
//
// # Why replicated and sealed
//
// A token issued on one node must verify on every other, so the nodes
// share the keys; they share them through the raft store, the only state
// they have in common. The private keys are secrets of the cluster, so
// they are stored exactly as the audit checkpoint key is: encrypted with
// age to the cluster's seal recipients (keyring.EncryptToRecipients,
// opened with keyring.DecryptWithIdentities), so no private key byte is
// in the raft log, its snapshots or the state file in the clear, and only
// a node that holds the seal identity can issue tokens. The public half is
// stored in the clear beside it: a sealed node verifies tokens with it
// (it cannot issue), and a later JWKS endpoint can publish it.
//
// # Layout
//
// The component's system bucket ["sys", "signing"] (tenancy.SystemOf):
//
//	public   the set's public half (token.KeySet.MarshalPublic)
//	sealed   the whole set (token.KeySet.MarshalBinary), age-encrypted to
//	         the seal recipients
//
// Both are written in one transaction, conditioned on the version of
// "public" that the writer read (absent, for the first), so concurrent
// writers — two nodes creating the set at first start, a rotation racing
// the schedule — cannot interleave: one wins, the other reads the winner's
// set. An unsealed node checks on every load that the two halves describe
// the same keys.
//
// # Life of the keys
//
// The set is created idempotently: by the leader's background work
// ([Keys.Run]) at the cluster's first start, or by whichever node needs it
// first ([Keys.Authority]), with a write that applies only if there is no
// set yet. The leader rotates it every RotateEvery (the new key signs at
// once; the old one verifies until every token it signed has expired —
// token.KeySet.Rotate) and drops retired keys; an operator can rotate at
// any time ([Keys.Rotate]). Every node polls the version of the public
// half (a local read, once per Poll) and reloads when it changes, and
// reloads at once when a token names a key it does not know, so that a
// token signed with a new key on one node verifies on another before its
// next poll.
//
// # Verification cost
//
// Ed25519 verification costs tens of microseconds, and every request that
// carries an access token needs one — more than the 50,000
// verifications per second per core allow. The authorities a node hands
// out verify through one token.Cache of the node's (bounded, no global
// state), shared across rotations: a token verified before costs a
// SHA-256 and a map lookup, and is still refused once it has expired or
// its key has been dropped or has retired (see token.Cache).
package signing
