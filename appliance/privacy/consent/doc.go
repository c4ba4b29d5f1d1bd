// Package consent keeps a tenant's processing purposes and, per data
// subject, an append-only consent ledger; it answers what a subject has
// agreed to now or at any past moment, and refuses processing the ledger
// does not allow (Require). It is a domain service: it knows nothing of
// HTTP, receives the caller's principal, and reaches storage only through
// the tenant's tenancy.Scope, so purposes and ledgers go with the tenant.
//
// # Purposes
//
// A purpose has an id (a slug: 1 to 48 of a-z, 0-9 and -, starting with a
// letter), a description, a legal basis (consent, contract,
// legitimate-interest, legal-obligation), whether it is required, its
// default (on or off), whether it is a sale or share of data (refused
// for a subject who opted out: do-not-sell), and a policy version that
// every update increments. A purpose on the consent basis cannot default
// to on: consent is an affirmative act (GDPR art. 4(11) and 7; a
// pre-ticked box is not consent), so such a purpose is refused.
//
// # What processing the ledger allows
//
// For each purpose the subject's latest event about it decides:
//
//   - contract and legal-obligation: processing does not rest on the
//     subject's agreement, so it is allowed without a grant, required or
//     not, and such purposes can be neither granted nor withdrawn
//     (ErrNotConsentBased);
//   - consent: allowed only after a grant, required or not, until a
//     withdrawal (a required purpose on the consent basis still needs its
//     grant);
//   - legitimate-interest: a grant allows it and a withdrawal (an
//     objection, GDPR art. 21) refuses it; without either, its default
//     decides.
//
// restrict-processing (GDPR art. 18) leaves only purposes on the consent
// basis with a grant and those on legal-obligation; do-not-sell (CCPA
// §1798.120) refuses every purpose marked as a sale. A grant stays valid
// when the purpose's policy version moves on; the state names the version
// each grant was given for, so a caller can ask again.
//
// A withdrawal of a purpose that was never granted is recorded like any
// other: it is the subject's refusal (or objection), and that is evidence
// too, not an error. A withdrawal of all purposes applies to every purpose,
// those created later included, until the subject grants one again.
//
// # The ledger
//
// Every grant, withdrawal and flag change is one event, appended (never
// rewritten: each key is written once, conditioned on being absent) with
// its source (ivr, web, app, api, import), the policy versions it was
// given for, its evidence (a text of at most MaxEvidenceText bytes, or a
// blob id — e.g. the IVR greeting's recording), the actor and the time. Its
// audit entry is written in the same transaction in the tenant's chain:
// consent.grant, consent.withdraw or consent.flag, targeting the subject's
// audit pseudonym (audit.Pseudonym(audit key, "subject", id), the same
// name records gives the subject), with the purposes, the source, the
// versions, the ledger sequence and the evidence's reference.
//
// Subject ids may be personal data (a phone number, an e-mail address),
// so none reaches the replicated log in the clear: a subject's ledger is
// keyed by its blind index, HMAC-SHA256 under the tenant's index key of
// "consent-subject" and the id, and the entries name it by pseudonym. The
// evidence text is personal data too (a transcript): it is stored sealed
// under the tenant's data key (keyring.Seal, bound to the ledger and the
// event), and the entry holds only its keyed digest
// (audit.Pseudonym(audit key, "sha256", hex SHA-256 of the text)), so the
// chain proves which evidence was given — the tenant can recompute the
// digest of the text it opens — without keeping it: erasing the ledger's
// sealed payloads leaves the chain a pseudonymous proof, as the law allows.
// Events are timed by the service's clock, never earlier than the
// subject's previous event, so the ledger's order is its time order and a
// state as of any moment is its prefix, judged by the purposes' terms in
// force at that moment (every version of a purpose is kept).
//
// # Reads are audited; a subject must exist
//
// Reading a subject's state (now or as of a past moment) or history is a
// consent.read entry of the tenant's chain, committed before the answer
// (through the node's read-audit batcher, WithReadAudit). A history shows
// evidence texts only to a reader whose role reads pii in clear; others
// get the digest and evidence_withheld. A grant, withdrawal, flag, state
// or history of a subject the tenant holds nothing about — no record
// (records' subject index), no blob (blobs' subject index), no consent
// event — is refused with ErrNoSubject (404): consent is recorded for a
// person the tenant knows, so a typo in an id does not open a ledger
// nobody will find. The IVR creates the caller's record (in a collection
// that requires no purpose) before it records the greeting's answer.
// The check is outside the event's transaction: a subject erased in
// between leaves a ledger the erasure removes.
//
// # Enforcement
//
// A collection's schema may list purposes (checked against the tenant's
// at definition, CheckPurposes), and a blob kind (PutKind: a tenant's
// named kind, such as "call-recording", with the purposes its blobs
// require) likewise. Records and blobs ask the service through small
// interfaces of their own, so this package imports neither:
//
//   - a write (create, replace, patch; an upload) of data with a subject
//     calls Require: refused (*RequiredError, 403 consent-required naming
//     the purpose) unless the subject's ledger allows every purpose now;
//   - a read of such data calls RequireRead: refused only when the
//     subject refused a purpose (withdrew or objected, restricted
//     processing, opted out of a sale) — not when the subject simply
//     never decided, which would make data stored before the collection
//     required a purpose unreadable;
//   - data without a subject is not checked: there is nobody whose
//     consent applies (a collection that must hold only consented data
//     sets subject_required too);
//   - restrict-processing (GDPR art. 18) refuses writes and reads through
//     the purposes it refuses (all but consent given and legal
//     obligations); data whose collection or kind requires no purpose is
//     not affected, since the appliance cannot tell which processing the
//     restriction is about.
//
// The check reads the ledger just before the write's transaction, not
// inside it: a withdrawal that commits in between is honoured from the
// next write on.
//
// # Withdrawal marks (the retention sweeper consumes them)
//
// A purpose's on_withdraw rule — keep (default), erase or anonymise —
// says what becomes of the data it covers when a subject withdraws it.
// A withdrawal of a purpose whose rule is not keep (a withdrawal of all:
// of every such purpose resting on consent or legitimate interest)
// writes, in the event's own transaction, one Mark per purpose: the
// subject (its id sealed under the tenant's data key; its token), the
// purpose, the rule, the time and the event's sequence. The retention
// sweeper lists them with WithdrawalMarks(ctx, tenant, limit), oldest
// first, finds the data they cover — records of collections whose
// schema lists the purpose, blobs of kinds (Kinds) that require it — and
// applies the rule in its own transaction, into which it puts
// MarkDoneOps(marks...) so that a mark disappears exactly when its rule
// is carried out. A mark is left for the data as it is at the
// withdrawal; the rule then holds for all of it, whatever is written
// later (writes are refused by then anyway).
//
// # Storage
//
// Below the tenant's bucket:
//
//	consent_purposes / <purpose id>                               its current terms (JSON)
//	consent_purpose_versions / <purpose id> 0 <version, 4 bytes>  every version of them
//	consent_ledger / <subject token> / <seq, 8 bytes>              an event (JSON; evidence sealed)
//	consent_blob_kinds / <kind>                                   a blob kind's policy (JSON)
//	consent_marks / <unix ns, 8 bytes> <token> 0 <purpose>         a withdrawal mark (JSON; subject sealed)
//
// Concurrent appends to one subject's ledger race for the next sequence;
// the loser reads again and retries, so every node sees one ledger.
package consent
