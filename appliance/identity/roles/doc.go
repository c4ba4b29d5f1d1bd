// Package roles is the appliance's one permission table: which
// principal may do what, and how it reads each field classification.
// Every way in — a user's session, an API key, an operator, single
// sign-on — ends in a principal bound to a [Role], and every check asks
// this package, so that who may read a guest's passport number is
// decided in one file (table.go), reviewed in one golden file
// (testdata/matrix.golden), and not re-decided in handlers.
//
// # Permissions
//
// A [Permission] is an [Action] (read, create, update, delete, export)
// on a [Resource] (tenants, users, roles, apikeys, keys, collections,
// records, blobs, subjects, audit, settings, cluster, breakglass);
// [Permissions] lists the pairs that mean something. Export is separate
// from read because bulk copies are a different risk from looking one
// item up, and it is an action on each resource rather than a resource
// "exports" of its own because what is exported decides who may.
//
// A tenant role's permissions apply to its own tenant; the Operator's to
// the cluster and to tenants' metadata (its settings:update changes the
// cluster's settings, never a tenant's SSO or break-glass policy, which
// would let it sign itself in). Some permissions are the Operator's alone
// (the cluster, tenants' lifecycle, key rotation, requesting
// break-glass); no tenant role can hold them.
//
// # Visibility
//
// Each role reads each classification — pii, sensitive, internal, as
// collections classify fields — in [Clear], [Masked] or not at all
// ([None]). Records, finds and exports show fields accordingly; blob
// bytes are read as pii ([BlobClass]), since a document cannot be
// masked. The Operator's visibility is None throughout: it reads a
// tenant's data only through break-glass approved by the tenant.
//
// # Built-in roles, MFA, custom roles
//
// The 11 built-in roles ([Builtins]) are Owner, Manager, Reservations,
// Concierge, Front of house, Marketing, Compliance, QA, Coach, Read-only
// and Operator; table.go explains each grant and denial beside it. The
// simpler viewer / admin / owner model maps onto Read-only / Manager /
// Owner. Owner, Compliance and Operator require MFA; so does any role —
// a tenant's [Custom] role included — that holds a privileged permission
// (granting access, exporting, erasing a subject, changing security
// settings). A custom role is validated: a name pattern, known
// permissions only, none of the Operator's, a visibility for each
// classification; errors are *validation.FieldError.
//
// # Old API keys
//
// Keys created with the permissions read, write, delete, export and admin
// keep doing exactly what they did: [FromAPIKey] maps their permission
// list onto the table.
//
// The package holds no state and does no I/O: roles are immutable values.
package roles
