// Package requests tracks data subjects' requests — access, export,
// portability, rectification, erasure, restriction, opt-out (do not sell)
// — from receipt to answer, against the deadline the tenant's regulation
// mode gives. It is a domain service: it knows nothing of HTTP, receives
// the caller's principal, and reaches storage only through the tenant's
// tenancy.Scope (restricted to the caller's attribute scope), so requests
// go with the tenant.
//
// # States
//
//	received ──▶ verified ──▶ in_progress ──▶ completed
//	   │  ╲          │  ╲          │  ╲
//	   │   ╲         │   ╲         │   ╲──▶ rejected (a reason)
//	   ▼    ▼        ▼    ▼        ▼
//	 extended (a reason, once) ──▶ verified | in_progress | completed | rejected
//
// A request is received when created; verified with the evidence of how
// the subject's identity was checked (a method — account, email, phone,
// document, in-person, knowledge, other — and a text); in progress while
// it is worked on; completed or rejected (with a reason) at the end.
// Extended is the one extension of its deadline, with a reason, from any
// open state; after it the request goes on to be verified (if it was not
// yet), worked on, completed or rejected. Nothing moves to in progress or
// completed before its subject was verified, completed and rejected are
// final, and a step the table does not have is a *TransitionError (409
// invalid-transition) that changes nothing.
//
// Access, restriction and opt-out requests are completed by a person
// (with a note) through Transition: their answer is a letter, or a
// consent flag — completing a restriction sets the subject's
// restrict-processing flag and completing an opt-out its do-not-sell
// flag, through the consent service the node gives (WithFlagger), before
// the request is marked completed. Export, portability,
// erasure and rectification requests are completed only by the operation
// that does the work — the export and erasure services take a request up
// with Begin and close it with Finish, with what they produced (an export
// id, a signed receipt, counts); Rectify applies a rectification's patch
// through the records service and completes it — so no request claims an
// answer nothing gave.
//
// # Duplicates
//
// While a subject has an open request of a kind, another of that kind is
// refused (*DuplicateError, 409 duplicate-request, naming the open one): a
// marker per subject and kind, written with the request and removed when
// it completes or is rejected, makes the check one condition of the
// creating transaction, so two concurrent requests cannot both pass.
//
// # Deadlines
//
// A request's due date is computed by appliance/privacy/deadline from the
// tenant's regulation mode, DPDP response period and time zone
// (appliance/tenants' privacy settings, read in the creating snapshot):
// GDPR Art. 12(3) one month, extendable by two; CCPA (Cal. Civ. Code
// §1798.130(a)(2)) 45 days, extendable by 45; PIPEDA s. 8(3)–(4) 30 days,
// extendable by 30; DPDP (Act s. 13(2), Rules rule 14) the tenant's
// period, 30 days unless it chose another, without extension. The rule
// and zone are fixed on the request when it is received: a later change
// of the tenant's settings does not move a pending deadline. List filters
// open, overdue and due-soon requests (due within WithDueSoon, a week by
// default); Summary counts them for the API, Tally for a metric, and
// AlertHook is the func a node polls to learn which tenants have overdue
// or due-soon requests.
//
// # Storage and privacy
//
// Below the tenant's bucket:
//
//	dsr_requests / <id>                 a request (JSON; its private part sealed)
//	dsr_subjects / <subject token> / <id>  the subject's requests (empty values)
//	dsr_open / <subject token> / <kind>    the id of the subject's open request of the kind
//
// Subject ids may be personal data, so none is stored in the clear: the
// subject is found by its blind index (HMAC-SHA256 under the tenant's
// index key of "request-subject" and the id), and the request's private
// part — the subject id, the verification evidence, the reasons, a
// rectification's patch — is one value sealed under the tenant's data key
// (keyring.Seal, bound to the request and its revision). Request ids
// ("dsr-" and 16 base32hex characters: milliseconds, then 32 random bits)
// sort by arrival and carry nothing personal.
//
// Every create and transition is one transaction that carries its audit
// entry in the tenant's chain: request.create, request.verify,
// request.start, request.extend, request.complete, request.reject,
// targeting the subject's audit pseudonym (audit.Pseudonym(audit key,
// "subject", id), the name records and consent give the subject too),
// with the request id, kind, from and to, and — for free texts — only
// their keyed digests (audit.Pseudonym(audit key, "sha256", hex SHA-256)),
// so the chain proves what was said without keeping it.
//
// When an erasure request completes, the stored request drops the
// subject's id and the verification evidence: it keeps the pseudonym and
// the blind index — the minimal proof that the request was made and
// answered, and what finds a repeated request — and nothing that names
// the subject.
//
// # Rectification and history
//
// A rectification request carries its patch (collection, record, fields)
// from its creation; Rectify applies it through the records service on a
// record that must be the subject's. Records keep no earlier versions —
// a patch replaces the values in a new version — so the tenant's history
// rule for rectified data is "none": the old values are gone once the
// patch commits, which is what the right to rectification asks (the
// audit entries of the record change remain, pseudonymous, as for any
// write).
package requests
