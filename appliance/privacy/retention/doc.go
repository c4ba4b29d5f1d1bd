// Package retention enforces how long a tenant keeps its records: the
// leader's sweeper erases what expired, in bounded, audited transactions
// paced so that writes never wait for it.
//
// # Rules
//
// A record's age counts from its last change (updated_at; its creation
// sets it too): a record still being written to is in use, and a
// retention period is a limit on keeping data nobody touches. The
// period comes from (RuleFor):
//
//   - the collection's retention_days, when it sets one (1 to 36500):
//     every record of the collection, with a subject or not;
//   - otherwise the tenant's default (Tenant.RetentionDays; one year,
//     DefaultTenantDays, when unset), but only over records that belong
//     to a subject. retention_days 0 used to mean "kept until deleted",
//     and for records without a subject it still does: reference data (a
//     property's rooms, rate plans) is no person's and no storage
//     limitation applies to it, while a subject's record is personal
//     data by definition, which is what the one-year default is for. A
//     collection whose subjects' records must stay longer (a legal
//     obligation) sets its own retention_days, up to 36500 (a century).
//
// Periods are counted in 24-hour days from the sweeper's clock; a record
// last changed strictly before now − period has expired.
//
// # The sweeper
//
// Sweeper.Run runs on every node under the node's lifetime and acts only
// while the node leads (as the blob sweeper and the keyring janitor do),
// every Config.Interval (an hour by default). For each tenant and each
// collection it reads pages of the collection (records.Expired: at most
// 4,096 keys per read transaction of the leader's local state, so no read
// transaction stays open long) and erases a page's expired records in
// transactions of at most Config.Batch (256) records. Each transaction
// holds the records' removal (records.RemoveOps: the envelope, its blind
// index, subject and ref entries), the condition that every record is
// still at the version found expired (so a record rewritten meanwhile —
// no longer expired — is never removed; the batch is read again), and ONE
// audit entry in the tenant's chain: retention.sweep, by the system, on
// the collection, with the count, the cutoff, the period and its basis
// (collection or tenant). After each transaction the sweeper waits at
// least Config.Pause and long enough that building and applying its
// transactions takes at most Config.Share of the time (half by default:
// it waits as long as the transaction took), so writers always get the
// rest; a leader that steps down stops mid-sweep and the next leader
// starts over. The scan may miss what the leader has not applied yet
// (the next sweep finds it), never remove what changed.
//
// There is no expiry index. A sweep reads every record's envelope
// (subject and updated_at) once per interval; an index by time would
// make finding the expired records O(expired) but would add a put and a
// delete to every record write, forever, to save an hourly scan that
// costs 1–3 s of a core per 100,000 records on the loaded reference
// machine (BENCHMARKS.md, issue 13) — under 0.1 % of a core at the
// hourly default. If tenants grow to hundreds of millions of records, an index
// kept by records is the next step; the sweeper's interface to records
// (Expired) would not change.
//
// # Withdrawals
//
// A purpose's on_withdraw rule (appliance/privacy/consent) says what
// becomes of the data it covers when a subject withdraws it: keep (the
// default: nothing), erase, or anonymise. A withdrawal under erase or
// anonymise leaves a withdrawal mark; each sweep, before it applies
// periods, carries out a tenant's marks (at most 100 per sweep, oldest
// first) on the subject's records in the collections whose schema
// requires the purpose:
//
//   - erase: the records are removed as expired ones are
//     (records.RemoveOps);
//   - anonymise: each record becomes a new version that belongs to no
//     subject and holds only the values its schema classifies internal,
//     sealed again under the tenant's key (records.AnonymiseOps): what
//     the tenant classified internal is, by its own classification, not
//     personal data, and the subject's key no longer opens anything of
//     it. A record that cannot be anonymised — its collection requires a
//     subject, or requires a pii or sensitive field, or its values do not
//     open — is erased instead: a rule asking that the data stop being
//     the subject's is not met by keeping it.
//
// Each transaction (at most Config.Batch records) carries one
// retention.withdrawal entry: by the system, on the subject's pseudonym,
// with the purpose, the rule, the withdrawal's ledger sequence and how
// many records it erased and anonymised; the last one also deletes the
// mark (consent.MarkDoneOps), so a mark disappears exactly when its rule
// is carried out, and a sweep that fails half-way leaves it for the
// next. Blobs of kinds that require the purpose are not yet carried out
// here (a recording cannot be anonymised, so both rules would erase
// them): that is the next step; until then the subject's erasure
// removes them.
//
// # Keys
//
// Expired records are deleted, their subject's data key is not shredded:
// a subject whose old records expire may still hold newer ones under the
// same key, and erasing a person entirely (records, blobs, key) is the
// erasure service's work, with its receipt. The deleted rows leave the
// files at the next compaction, as any deletion does.
package retention
