// Package visibility decides what a principal reads of a tenant's data:
// for each field classification (pii, sensitive, internal) the value,
// its masked form, or nothing, and whether it reads blob bytes. It is
// the one answer the services ask ([Resolver.Sight]) before they show a
// record, answer a find or stream a blob, so that a role's visibility
// (appliance/identity/roles, table.go) is enforced where the data is
// opened — for every principal kind and every route, including routes
// added later — and not re-decided in handlers.
//
// # Which role a principal reads with
//
//   - An API key bound to a role reads with that role; a key created with
//     the old permissions (read, write, ...) with roles.FromAPIKey's role,
//     which reads everything in clear, as such keys always did.
//   - A tenant user reads with its role: a built-in one, or the tenant's
//     custom role of that name, which [CustomRoles] looks up (without it,
//     or when the tenant has no such role, the user reads nothing: fail
//     closed).
//   - An operator (the root credential or an operator user) reads as the
//     Operator role — nothing — unless it holds an active break-glass
//     grant for the tenant, which [Grants] answers; then it reads in
//     clear, as the tenant's approval says. Without Grants no operator
//     reads anything (fail closed): break-glass reads need Grants wired.
//   - Custos itself (audit.ActorSystem) reads in clear: it acts for the
//     tenant (exports of a data-subject request, sweeps).
//   - Any other kind reads nothing.
//
// # What a Sight means
//
// Clear is the value. Masked is a masked form that shows that a value
// exists and its shape, never the value: a text's first letter of each
// part with every other letter and every digit as '*'
// (j***@e******.c**), a number's digits as '*', an enum, a boolean or a
// JSON value as "*" (an enum's first letter would name its value among
// few); masked values are always JSON strings, and the record lists the
// masked fields, so a masked form is never mistaken for a value. None leaves the field out, and the record lists every field of
// the schema the principal does not read — whether or not this record
// holds a value for it, so that the list reveals nothing — so a client
// can tell "no value" from "not for you". A request for masked values
// (?mask=true) masks pii and sensitive further; it never unmasks.
//
// Finds by a blind-indexed field are answered only to principals that
// read the field's classification in clear: the answer of an exact-match
// search confirms the searched value (a Marketing principal finding a
// guest by email learns the email is known), which is the value itself.
//
// Blob bytes are read under roles.BlobClass: only a principal that reads
// it in clear (and may read blobs) downloads them; a document cannot be
// masked. Blob metadata stays readable with blobs:read, without the
// content's SHA-256 for a principal that does not read the bytes: the
// digest of a document confirms a guessed copy of it.
package visibility
