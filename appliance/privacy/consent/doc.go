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
// # Storage
//
// Below the tenant's bucket:
//
//	consent_purposes / <purpose id>                               its current terms (JSON)
//	consent_purpose_versions / <purpose id> 0 <version, 4 bytes>  every version of them
//	consent_ledger / <subject token> / <seq, 8 bytes>              an event (JSON; evidence sealed)
//
// Concurrent appends to one subject's ledger race for the next sequence;
// the loser reads again and retries, so every node sees one ledger.
package consent
