// Package erasure erases a data subject from a tenant — the right to
// erasure (GDPR art. 17, CCPA §1798.105, PIPEDA principle 4.5.3) — in one
// go, with a signed receipt and an entry in the tenant's erasure ledger.
//
// # What is erased
//
// For a verified erasure request (appliance/privacy/requests: Begin moves
// it to in progress and names the subject), the service erases:
//
//   - the subject's records (records' subject index), with their
//     blind-index, subject-index and ref-index entries;
//   - the records that refer to them through ref fields
//     (collections.TypeRef): a field with on_erase "erase" erases its
//     record too, and that record's own referrers are followed in turn
//     (transitively, each record once, cycles included); a field with
//     on_erase "detach" (the default) has its record rewritten without
//     the field, as a new version;
//   - the subject's blobs (and uploads of the subject still in progress),
//     with their chunks;
//   - the subject's consent ledger, replaced by its minimal proof
//     (pseudonymous token, purposes, times, kinds: consent.EraseOps);
//   - the subject's data key (keyring.ShredOps), so that no copy of their
//     ciphertext anywhere — an older snapshot, a backup — opens again; the
//     keyring's janitor compacts every node's files within the compaction
//     window, so no file holds the key's bytes afterwards.
//
// # Order, transactions, retries
//
// A raft transaction holds at most raftstore.MaxTxnItems items (and 4
// MiB), so an erasure of thousands of records is several transactions
// (pieceRoom items each, cut by records.RemovePieces and DetachPieces).
// The order:
//
//  1. the first transaction shreds the subject's data key
//     (keyring.ShredOps, its key.shred audit entry) and begins the
//     ledger's entry (phase shredded): from here on nothing of the
//     subject opens on any node that applied it — the point "unreadable
//     on every node" is measured at, one transaction after the call
//     whatever the subject holds;
//  2. the plan reads what is left to remove and builds its
//     transactions: no key is needed, since records name their
//     blind-index and ref entries in their envelopes (in the clear, as
//     the index keys hold them) and blobs and the consent ledger go by
//     id;
//  3. detachments (referrers rewritten without their field), then
//     referrers to erase, the deepest first, then the subject's own
//     records, blobs, the consent ledger, the emptied reverse-index
//     buckets — each with a subject.erase_step audit entry;
//  4. last, one transaction: the deletes of the buckets named by the
//     subject's id, the ledger's entry completed, and the subject.erase
//     audit entry with the counts — the entry the receipt names.
//
// A crash after the shred leaves the ledger's entry in phase shredded:
// a re-run (Erase again, the request still in progress) plans again and
// finishes — referrers go before the records they refer to, so the
// reverse index still leads from the subject's holdings to whatever
// remains; its counts are then what the re-run removed. A record
// written before envelopes listed their index entries is opened to find
// them under a key the keyring makes afresh, fails, and has them found
// by a scan; the last transaction shreds that key too, as it shreds one
// a write racing the erasure made. Every removal is conditioned on the
// records being as read; a step that loses a race with a concurrent
// write makes the service plan again (a few times).
//
// # The receipt
//
// The receipt (appliance/privacy/receipt, docs/privacy-artifacts.md)
// names the tenant, the subject's audit pseudonym, the request, the
// counts by kind, whether a key was shredded, the time, and the
// subject.erase entry — its sequence number and leaf hash — with the
// signed checkpoint of the tenant's chain that covers it (signed on the
// spot when the latest does not); it is signed with the cluster's audit
// key and handed to the request (requests' Finish) as its result.
//
// # The erasure ledger
//
// Below the tenant's bucket, replicated like all its data:
//
//	erasures  <request id> -> Entry (JSON)
//
// An entry holds the subject's pseudonym, a token locating it again
// (HMAC-SHA256 under the tenant's index key of "erasure-subject" and the
// id — never the id itself), the time, the counts, the audit entry and
// the signed receipt. A restore from a backup older than an erasure
// brings the subject's data back: the restore must re-apply every erasure
// the ledger lists (the backup keeps the ledger beside the data, and the
// operator restores the newer ledger), and Reapply does it — it finds
// the subject ids the tenant holds whose token is in the ledger and
// erases them again (without a request; audited subject.erase with
// reapply set).
//
// # Files
//
// service.go is the service and Erase; plan.go collects what an erasure
// removes; ledger.go is the ledger, the receipt and Reapply; errors.go
// holds the package's errors.
package erasure
