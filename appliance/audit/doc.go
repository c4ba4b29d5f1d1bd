// Package audit is Custos's tamper-evident audit log: the entry schema and
// its canonical encoding, signed checkpoints, proofs, export bundles, the
// offline verifier, the node's self-check, and retention.
//
// The format — entries, hashes, checkpoints, the API's answers and
// bundles, byte for byte, and what verification establishes — is specified
// for verifiers outside the project in docs/audit-format.md at the
// repository's root; this doc is the implementer's summary.
//
// # Chains
//
// Each tenant has a chain; the cluster has one for operator actions (init,
// tenant create/update/delete, membership changes). The tenancy boundary
// (internal/tenancy) names them (tenancy.ChainOf, tenancy.SystemChain) and
// appends a tenant's entries through the tenant's scope: this package
// encodes entries, and works on chains by the names it is given. An entry
// is a raftstore chain append made in the same transaction as the change
// it describes, so a change happens only if its entry is written: an unwritable chain refuses the change (raftstore's
// ErrChainUnwritable, 503 audit-unavailable). Membership changes are not
// store transactions, so their entry (outcome "requested") is written
// first, and the change is refused if it cannot be.
//
// raftstore keeps two structures over every chain as entries apply: the
// hash-chain link (SHA-256(previous link || leaf hash), where the leaf hash
// is the entry's Merkle leaf hash SHA-256(0x00 || entry): raftstore.ChainLink)
// and the RFC 6962 Merkle tree of golang.org/x/mod/sumdb/tlog, whose stored
// hashes make inclusion and consistency proofs a handful of reads. An entry's sequence number is
// its position (1-based; tree record seq-1), which both authenticate.
//
// # Canonical encoding (format v1)
//
// An entry is encoded as one JSON object, with no insignificant space and
// keys in this order:
//
//	{"v":1,"time":T,"actor":{"type":S,"id":S},"action":S,"target":S,
//	 "outcome":S,"request_id":S,"source":S,"details":{K:S,...}}
//
// T is the time in UTC as "2006-01-02T15:04:05.000000000Z" (always nine
// fractional digits); details are sorted by key (byte order) and always
// present (possibly {}); strings are written by this package's own rule,
// independent of any JSON library: '"' and '\' escaped with a backslash,
// U+0000..U+001F as \u00xx with lower-case hex, every other character as
// its UTF-8 bytes. Decode accepts exactly these bytes (it re-encodes and
// compares). testdata/vectors.golden pins the encoding, leaf hashes, links,
// roots and a signature; a change to any of them is a format change and
// needs a new "v".
//
// Limits: action 1..64 of a-z 0-9 . _ -; actor id and target 1..256 bytes;
// request id ≤ 128, source ≤ 64; at most 16 details, keys like actions,
// values ≤ 512 bytes; all UTF-8.
//
// # No personal data
//
// Entries hold identifiers, never content: the API's free text (display
// names, bodies) stays out, and a subject is written as a pseudonym —
// "subject:h:" + base64url(HMAC-SHA256(tenant audit key, "subject" 0
// id)[:16]) — keyed by the tenant's audit key (derived from the tenant key
// by keyring), so the tenant can recognise its subjects and nobody else can.
// Other values whose plain form would confirm a guess are keyed the same
// way (Pseudonym): a blob's content digest ("sha256:h:…", never the plain
// SHA-256) and a blind-index search's value ("value:h:…").
//
// # Checkpoints
//
// The leader looks at every chain once a second (RunConfig.Tick) and signs
// one that grew once its latest checkpoint is audit.checkpoint_interval
// (60 s) old or audit.checkpoint_entries (1,000) entries behind, at the
// chain's size then: an entry is covered within the interval and a tick,
// but checkpoint sizes can be far more than checkpoint_entries apart. Each
// is a C2SP tlog-checkpoint note (golang.org/x/mod/sumdb/note,
// Ed25519): origin "<key name>/<chain>", size, root, plus "link" and
// "time" extension lines. The key pair is made at `operator init`; its
// private half is stored only age-encrypted to the seal recipients (a
// sealed node cannot sign) and its public half is served at
// /v1/sys/audit-key. Checkpoints are stored replicated, every one kept.
//
// # Bundles and offline verification
//
// Export writes a gzip'd tar: manifest.json (origin, chain, first seq, size,
// the link before the first entry, and the tree hashes left of the first
// entry), checkpoints/<size>.txt (every signed checkpoint in range, the
// last at the bundle's size), hashes.bin (the stored tree hashes of the
// range: they let the verifier name the first altered entry) and
// entries.jsonl (`{"seq":N,"entry":<canonical entry>}` per line). Verify
// needs only the verifier key: it checks every signature, recomputes every
// leaf and tree hash and compares them with the exported ones (the first
// difference names the entry), recomputes the links, checks each
// checkpoint's root and link at its size, and that entries run without gap
// to the last checkpoint. Given a checkpoint the auditor kept from earlier
// it also proves the bundle extends it (not rolled back, not forked). Every
// byte of the members' content and names is checked — the manifest must be
// in the exact form Export writes, checkpoint files named by their size,
// one gzip member with nothing after it or after the archive's end — so a
// changed, added or appended byte fails; only container metadata that
// carries no audit content is not checked: the gzip header (mtime, OS,
// name) and tar header fields other than name, type and size.
// Verification runs at about a million entries per second per core
// (BenchmarkVerify).
//
// # Self-check
//
// Every node re-verifies its own files every audit.selfcheck_interval
// (and at start): every retained entry against its stored leaf hash, every
// stored tree hash against its children, the links, the latest checkpoint's
// signature, root and link; and the witness — the latest checkpoint this
// node verified, kept in audit-witness.json beside (not inside) the state
// file — so a state rolled back or replaced by a forked history is caught.
// Failures are logged with the chain and the entry, and served at
// /v1/sys/audit/selfcheck (`custos audit selfcheck`).
//
// # Verifying a range through the API
//
// VerifyRange checks entries From..To fetched through the API — the
// latest signed checkpoint, the entries, one inclusion proof each at the
// checkpoint's size, and optionally a checkpoint the auditor kept with
// the consistency proof from it — and names the first place that fails.
// The web UI's verify page uses it, so the browser session's check is
// this package's code, not a second implementation. It is for bounded
// ranges (MaxRange): a whole chain is a bundle for Verify.
//
// # Events per day
//
// A chart of events per day by action must not read the entries: on a
// chain of a million entries any scan, even bounded, costs with the
// traffic of the days shown, and a bounded one would silently undercount.
// So the counts are kept as the entries are appended: the node sets
// raftstore.Config.ChainTally to TallyKey, which reads "<day>/<action>"
// from the canonical bytes (the day is at a fixed offset; the action needs
// no unescaping), and the state machine adds one to that counter in the
// append's own transaction, on every node alike (a pure function of the
// bytes: replicated state). Stats reads days × actions counters in key
// order — a few hundred reads whatever the chain's length. The counts are
// of entries appended: pruned entries stay counted (a chart of the past
// does not change when old entries go), and entries appended by a version
// without the counters are not counted.
//
// # Retention
//
// Entries older than their chain's retention ([Retention]: audit.retention,
// five years, or the tenant's audit_retention_days) are pruned by the
// leader, with an audit.prune entry in the same transaction. The tree
// keeps every hash, so roots, consistency proofs and proofs of retained
// entries are unchanged; exports start at the first retained entry with
// the link and tree hashes before it. A deleted tenant's chain is kept for
// the default retention.
package audit
