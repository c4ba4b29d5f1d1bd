package roles

// This file is the one permission table of the appliance: every
// built-in role, what it may do, how it reads each field
// classification, and whether it needs MFA. A change here changes who
// may do what; testdata/matrix.golden shows the whole matrix so that a
// change shows up in review (go test -run TestMatrixGolden -update
// regenerates it).
//
// How the matrix was chosen:
//   - Least privilege per job: a role holds what its job needs daily;
//     what it needs rarely goes through someone who holds it.
//   - Reading is graded by classification, not all-or-nothing: a role
//     that needs to know a value exists (QA, Marketing, Coach, Read-only)
//     sees it masked; only a job that acts on the value sees it clear.
//   - Changing who has access (users, role bindings, custom roles, API
//     keys, SSO and break-glass settings) is the Owner's alone: those are
//     the permissions that decide who reads pii, and the Owner is a role
//     that must use MFA, so a stolen password of any other role cannot
//     grant itself more.
//   - Taking data out in bulk (every export) needs MFA too: Owner and
//     Compliance.
//   - Irreversible removal in bulk (erasing a data subject, deleting a
//     collection) is the Owner's; deleting single records and blobs is
//     the Manager's too (correcting mistakes is daily work).
//   - Data-subject requests (requests:*) are Compliance's work ("Compliance
//     handles requests") and the Owner's. Anyone who meets guests may
//     record one (requests:create: Manager, Reservations, Front of house —
//     a guest asks at the desk), because the law's clock runs from the
//     moment the request is made, whoever hears it. Reading requests is
//     not part of the every-read set (Read-only, QA): a request names its
//     subject and holds the identity evidence in clear. Updating one
//     (verifying identity, extending, rejecting, completing, applying a
//     rectification) needs MFA: marking a forged request verified is what
//     would hand a person's data to an impostor or erase it, so a stolen
//     password must not be enough. Creating one does not: it only starts
//     the clock, and the desk roles have no MFA.
//   - The Operator runs the cluster and never reads a tenant's data: its
//     visibility is None for every classification and it holds no read of
//     records, blobs or subjects; reading them takes break-glass, which
//     the tenant's Owner approves (breakglass:update).
//   - Consent (appliance/privacy/consent) is three permissions because
//     it is three jobs. consent:read (a subject's state and history) is
//     every tenant read's: whoever reads a subject's data or checks a
//     process must know what the subject agreed to; evidence texts
//     (transcripts: pii) are shown only to roles that read pii in clear.
//     consent:create records a subject's own choice — a grant, a
//     withdrawal, do-not-sell, restrict-processing — where the subject
//     makes it: at the desk (FOH), on the phone (Reservations, the IVR
//     through an API key with write), during the stay (Concierge), by
//     the Manager and Owner. It is not the staff's decision but the
//     subject's, and refusing it to the people the subject talks to
//     would leave a withdrawal unrecorded, so every role that serves
//     guests holds it; the ledger names the actor and the evidence.
//     consent:update defines and changes purposes and which blob kinds
//     need which: policy, which decides what processing the appliance
//     allows, so it is the Owner's and Compliance's (the data protection
//     officer's job is exactly this policy; it changes no data and no
//     access), and it needs MFA like every other policy change. Marketing
//     and Coach hold none: they work on records in aggregate or masked,
//     and enforcement, not a list they read, keeps them within consent.
//     The Operator holds none: a subject's consent is the tenant's data.

// operatorOnly are the permissions only the Operator holds: the
// cluster, and tenants' lifecycle and keys. No tenant role, built-in or
// custom, may hold them.
var operatorOnly = SetOf(
	P(Tenants, Create), P(Tenants, Update), P(Tenants, Delete),
	P(Keys, Update),
	P(Cluster, Read), P(Cluster, Update),
	P(BreakGlass, Create),
)

// privileged are the permissions whose holder must use MFA (see
// [Role.RequiresMFA]): they grant access, take data out in bulk, remove
// data in bulk (a subject, a collection), or change security settings.
var privileged = operatorOnly.Union(SetOf(
	P(Users, Create), P(Users, Update), P(Users, Delete),
	P(Roles, Create), P(Roles, Update), P(Roles, Delete),
	P(APIKeys, Create),
	P(Settings, Update),
	P(BreakGlass, Update),
	P(Records, Export), P(Blobs, Export), P(Subjects, Export), P(Audit, Export),
	P(Subjects, Delete), P(Collections, Delete),
	P(Requests, Update),
	P(Consent, Update),
))

// reads is every tenant read permission but requests:read (a request
// names its subject and holds the identity evidence: see above).
var reads = SetOf(
	P(Tenants, Read), P(Users, Read), P(Roles, Read), P(APIKeys, Read), P(Keys, Read),
	P(Collections, Read), P(Records, Read), P(Blobs, Read), P(Subjects, Read),
	P(Audit, Read), P(Settings, Read), P(BreakGlass, Read), P(Consent, Read),
)

// builtins is the table.
var builtins = [...]Role{
	// Owner: the account holder, answerable for the tenant's data
	// (the controller's representative). Holds every tenant
	// permission, because someone must be able to do each thing,
	// including granting access, erasing a subject and approving
	// break-glass. Reads everything in clear. MFA: the role can do
	// everything.
	{
		name: "owner", title: "Owner", builtin: true, mfa: true,
		perms: all.Without(operatorOnly),
		vis:   visibility{pii: Clear, sensitive: Clear, internal: Clear},
	},
	// Manager: runs the property day to day (the "admin" of the
	// viewer / admin / owner model). Manages schemas and all data
	// (including deleting single records and blobs to correct
	// mistakes) and reads everything in clear, since handling
	// incidents (an allergy, a complaint) needs the values. Denied:
	// deleting a whole collection (every record in it: the Owner's),
	// granting access (users, roles, API keys, settings — Owner, under
	// MFA) and exports (bulk data leaving the system needs MFA; the
	// Manager's role does not require it). Reads the users and keys
	// lists to know who has access.
	{
		name: "manager", title: "Manager", builtin: true,
		perms: SetOf(
			P(Tenants, Read), P(Users, Read), P(Roles, Read), P(APIKeys, Read), P(Keys, Read),
			P(Collections, Read), P(Collections, Update),
			P(Records, Read), P(Records, Create), P(Records, Update), P(Records, Delete),
			P(Blobs, Read), P(Blobs, Create), P(Blobs, Delete),
			P(Subjects, Read),
			P(Audit, Read), P(Settings, Read), P(BreakGlass, Read),
			P(Requests, Create),
			P(Consent, Read), P(Consent, Create),
		),
		vis: visibility{pii: Clear, sensitive: Clear, internal: Clear},
	},
	// Reservations: takes and changes bookings. Needs guests'
	// identity and contact details in clear (pii) and attaches
	// documents (blob upload, and reading them back, e.g. a signed
	// form). Sensitive values (payment details, health) are masked:
	// payment runs through the payment provider and a booking agent
	// confirms at most the last digits. No deletions (a cancelled
	// booking is an update; removing data is the Manager's), no audit,
	// no exports.
	{
		name: "reservations", title: "Reservations", builtin: true,
		perms: SetOf(
			P(Collections, Read),
			P(Records, Read), P(Records, Create), P(Records, Update),
			P(Blobs, Read), P(Blobs, Create),
			P(Subjects, Read),
			P(Requests, Create),
			P(Consent, Read), P(Consent, Create),
		),
		vis: visibility{pii: Clear, sensitive: Masked, internal: Clear},
	},
	// Concierge: serves guests during their stay (usually scoped to a
	// property by an attribute scope). Reads pii in clear (to reach the
	// guest) and sensitive in clear, because arranging meals, transport
	// and activities acts on dietary and mobility needs; the scope, not
	// the classification, is what narrows a concierge's reach. Updates
	// records (requests, preferences) but creates none (bookings are
	// Reservations') and deletes nothing. Reads blobs (a voucher, a
	// booking confirmation).
	{
		name: "concierge", title: "Concierge", builtin: true,
		perms: SetOf(
			P(Collections, Read),
			P(Records, Read), P(Records, Update),
			P(Blobs, Read),
			P(Subjects, Read),
			P(Consent, Read), P(Consent, Create),
		),
		vis: visibility{pii: Clear, sensitive: Clear, internal: Clear},
	},
	// Front of house: the desk — check-in, check-out, greeting. Reads
	// pii in clear (names, the identity document at check-in: blob
	// content) and updates records (arrival, departure). Sensitive
	// values are masked: the desk needs to know a need exists ("see
	// dietary note") and hands it to whoever acts on it.
	{
		name: "foh", title: "Front of house", builtin: true,
		perms: SetOf(
			P(Collections, Read),
			P(Records, Read), P(Records, Update),
			P(Blobs, Read),
			P(Subjects, Read),
			P(Requests, Create),
			P(Consent, Read), P(Consent, Create),
		),
		vis: visibility{pii: Clear, sensitive: Masked, internal: Clear},
	},
	// Marketing: segments and measures. Works on records in aggregate,
	// so reads records with pii masked (that a contact exists, not who)
	// and never sees sensitive values (using health or payment data for
	// marketing is what data protection law forbids). No subject view
	// (one person's whole profile), no blob content, no exports, writes
	// nothing: campaigns go out through a processor the Owner
	// configures, not by copying contacts out.
	{
		name: "marketing", title: "Marketing", builtin: true,
		perms: SetOf(
			P(Collections, Read),
			P(Records, Read),
		),
		vis: visibility{pii: Masked, sensitive: None, internal: Clear},
	},
	// Compliance: the data protection officer's role. Reads everything
	// (including who has access, and audit) and exports — audit for
	// auditors, a subject's data to answer an access request, records
	// and blobs for a regulator — so reads all in clear. Changes no
	// data and no access: an auditor who could change what is audited
	// would audit themselves (erasure requests are carried out by the
	// Owner). Handles data-subject requests: records, verifies,
	// extends, rejects and completes them (requests:*), and applies a
	// rectification's patch through its request — the one record change
	// it makes, and only as the request's answer. MFA: exports take data
	// out in bulk, and request updates decide who receives or loses data.
	// It also defines processing purposes (consent:update): that is
	// policy, the officer's own job, and changes no subject's data or
	// consent.
	{
		name: "compliance", title: "Compliance", builtin: true, mfa: true,
		perms: reads.Union(SetOf(
			P(Records, Export), P(Blobs, Export), P(Subjects, Export), P(Audit, Export),
			P(Requests, Read), P(Requests, Create), P(Requests, Update),
			P(Consent, Update),
		)),
		vis: visibility{pii: Clear, sensitive: Clear, internal: Clear},
	},
	// QA: checks that data is complete and processes are followed.
	// Needs to see that fields are filled in, not what they say: pii
	// and sensitive masked (masking shows presence and shape), internal
	// notes in clear. Reads audit (who did what, pseudonymous) to check
	// process adherence, blob metadata (not content) and consent (that a
	// recording had its consent; evidence texts withheld, as pii is
	// masked). Writes nothing: findings go to the Manager.
	{
		name: "qa", title: "QA", builtin: true,
		perms: SetOf(
			P(Collections, Read),
			P(Records, Read),
			P(Blobs, Read),
			P(Audit, Read),
			P(Consent, Read),
		),
		vis: visibility{pii: Masked, sensitive: Masked, internal: Clear},
	},
	// Coach: trains staff on real cases. Reads records with pii masked
	// and sensitive not at all — a case is useful without knowing who
	// the guest is. No audit (reading staff members' trails would make
	// coaching surveillance), no blobs, no subjects, writes nothing.
	{
		name: "coach", title: "Coach", builtin: true,
		perms: SetOf(
			P(Collections, Read),
			P(Records, Read),
		),
		vis: visibility{pii: Masked, sensitive: None, internal: Clear},
	},
	// Read-only: the "viewer" of the viewer / admin / owner model. Every
	// tenant read, nothing else; pii and sensitive masked, so that a
	// viewer account — the one most often handed out — reveals no one.
	{
		name: "read-only", title: "Read-only", builtin: true,
		perms: reads,
		vis:   visibility{pii: Masked, sensitive: Masked, internal: Clear},
	},
	// Operator: runs the cluster (nodes, raft, status, cluster
	// settings, the system audit chain) and tenants' lifecycle (create,
	// suspend, delete) and encryption keys (rotate, provider). Sees
	// metadata: tenants and their counts, schemas, API keys' metadata
	// (and revokes a leaked key), tenant audit (pseudonymous) and
	// exports it for the tenant's auditors. Never reads a tenant's data:
	// no read of records, blobs or subjects and visibility None for
	// every classification; it cannot create users or API keys either,
	// since a principal it created would read for it — except a
	// tenant's first ones, while the tenant has no Owner user (the API's
	// bootstrap rule, audited in the tenant's chain). Reading data takes
	// break-glass: the Operator requests (breakglass:create), the
	// tenant's Owner approves. MFA: the role holds the cluster.
	{
		name: "operator", title: "Operator", builtin: true, mfa: true, cluster: true,
		perms: operatorOnly.Union(SetOf(
			P(Tenants, Read), P(Keys, Read), P(APIKeys, Read), P(APIKeys, Delete),
			P(Collections, Read),
			P(Audit, Read), P(Audit, Export),
			P(Settings, Read), P(Settings, Update),
			P(BreakGlass, Read),
		)),
		vis: visibility{pii: None, sensitive: None, internal: None},
	},
}
