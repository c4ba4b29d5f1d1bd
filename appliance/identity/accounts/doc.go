// Package accounts is the identity service for people: a tenant's users
// (username, argon2id password, role binding with attribute scopes,
// second factor), the tenant's custom roles, and sessions — login,
// refresh-token rotation with reuse detection, logout and revocation —
// and the resolution of an access token into the request's principal.
// API keys (appliance/apikeys) and the operator token are the other
// principals; all end in the same audit.Principal and the same
// permission table (appliance/identity/roles).
//
// # Layout
//
// Below the tenant's bucket, through its tenancy.Scope:
//
//	users           <uid> -> user (JSON; see userRecord)
//	users_by_name   <blind index of the username> -> <uid>
//	users_by_idp    <blind index of an identity provider's issuer and subject> -> <uid> (sso.go)
//	users_meta      "rev": bumped by every change of a user's role or state
//	roles           <name> -> custom role (roles.Custom JSON)
//	sessions        <uid>.<sid> -> session
//	session_tokens  <uid>.<sid>.<seq> -> refresh-token hash (what a revocation deletes)
//	refresh         <hash> -> refresh token state (token.Refresh: family, seq, spent, times)
//
// and in the package's system bucket ["sys", "identity"]
// (tenancy.SystemOf("identity")):
//
//	refresh/<hash>  -> <tenant>: finds a refresh token's tenant before any is known
//
// Access tokens are issued and verified with the cluster's shared,
// rotating signing keys ([Signer]: appliance/identity/signing).
//
// # No personal data in the clear
//
// A username is sealed (keyring.Seal) under the tenant's data key, bound
// to the user's id and field, and found by a blind index: HMAC-SHA256
// under the tenant's index key of the username folded to lower case (so
// that logins are case-insensitive). The TOTP state — which holds the
// secret — is sealed the same way; recovery codes are hashed inside it
// (appliance/identity/totp). Passwords are argon2id PHC strings
// (appliance/identity/password, its bounded Hasher). Refresh tokens are
// stored as SHA-256 hashes. Deleting the tenant (its keys) leaves nothing
// readable. The raft log and the audit chain hold ids, roles and hashes,
// never a username: a failed login for a username that names nobody is
// recorded under the username's pseudonym under the tenant's audit key
// (audit.Pseudonym, as subjects are), and no entry ever holds a password,
// a code or a token.
//
// # Sessions
//
// A login starts a session: a refresh-token family (token.NewFamily),
// whose id is the session id (sid) of the 15-minute access tokens it
// buys (EdDSA JWTs of appliance/identity/token: sub the user id, tenant,
// sid). A refresh spends its token and issues the next, in one
// conditional transaction; a spent token presented again means two
// parties hold it, and the whole session is revoked and the reuse audited
// as a security event (session.refresh_reuse). A session lasts as long
// as its current refresh token (30 days from the last refresh).
//
// The token says who; it does not say what they may do now. [Resolve]
// reads the session (not revoked, not expired), the user (not disabled,
// its CURRENT role and scopes) and the tenant's state in one snapshot of
// the node's replica on every request, so a logout, a revocation, a
// disable or a role change takes effect on each node, unexpired access
// tokens included. The read is linearizable (a read index, as an API
// key's lookup): the node's state reflects every change acknowledged
// before the request arrived — a purely local read could miss, for a few
// milliseconds, a logout the same client just made, since a node commits
// applied entries to its state in batches.
//
// # MFA
//
// A user with an active TOTP enrolment must give a code (or one of its
// single-use recovery codes) at login; a code is accepted once
// (replay inside its time step refused), and the used step is written
// back conditionally with the session, so two logins with one code
// cannot both succeed. A user whose role requires MFA
// (roles.Role.RequiresMFA) and has not enrolled gets a session that can
// only enrol ([Resolved.EnrolmentOnly]): [Service.Enrol] returns the
// otpauth URI and a QR code, [Service.Confirm] the 10 recovery codes,
// shown once. An administrator's reset (ResetMFA) is audited.
//
// # Who may do what
//
// The API authorizes each route by the permission table; this service
// adds the rules that depend on the data: an operator may create only a
// tenant's first Owner, while the tenant has none (the bootstrap rule),
// and changes nothing else of a tenant's people (its role holds no
// users:* or roles:*);
// a tenant principal may grant (a user's role, a custom role) only
// permissions its own role holds; nobody changes their own role binding
// or disables themselves; the tenant's last enabled Owner is neither
// disabled nor demoted. Disabling a user revokes its sessions in the same
// transaction.
//
// # Audit
//
// In the tenant's chain, in the transaction of the change: user.create,
// user.update, user.disable, user.enable, user.mfa_reset, user.unlock,
// user.mfa_enrol_start, user.mfa_enrol (success; failure for a wrong
// confirmation code), role.create, session.login (success — method sso
// for a single sign-on, see sso.go — or failure with a reason:
// unknown_user, wrong_password, disabled, mfa_wrong_code, mfa_replayed,
// mfa_wrong_recovery_code; denied: backoff, once per lockout window —
// see below), session.refresh,
// session.logout, session.logout_all (every session of the user, its own
// "sign out everywhere"), session.revoke,
// session.revoke_all and session.refresh_reuse. Entries name the actor
// and its request id and source, and the user as "user:<uid>".
//
// Failed password and code checks are one entry each: each cost an
// argon2id (or a code check) and the backoff already bounds them. An
// attempt the backoff refuses costs nothing, and must not cost a raft
// write either — else a guess flood becomes a flood of the replicated log,
// bounded only by the per-source request limit. So a lockout is audited
// once per lockout window of the account (ratelimit.Backoff: from the
// first refusal after an attempt it let through to the next attempt it
// lets through): the window's first refusal writes session.login denied,
// reason backoff, with "retry_at" (RFC 3339: when that refused client may
// try again); the window's refusals are counted on the node, and the
// next entry of the account's login path — the attempt that closes the
// window (failure or success), or the next window's lockout — carries
// "refused" (how many attempts were refused, the first included),
// "refused_first" and "refused_last" (RFC 3339) of the windows closed
// since. So the trail says "N attempts refused between T1 and T2" without
// a write per refusal (an attempt that closes a window and writes no
// entry — a password without its needed code — leaves the count to the
// account's next entry). Windows are per node (each node audits its
// own); a count the node forgets before an entry takes it (a restart, the
// account dropped from the backoff's bounded table) or whose entry cannot
// be written is lost, and the window's lockout entry stands. Refusals of
// usernames that name nobody are not audited.
//
// # Operators
//
// Operator users — the cluster's own people, role Operator — are kept by
// the same code in a second realm: the tenant OperatorRealm ("") names
// the operators' realm (tenancy.Boundary.Operators), a store handle of
// the same layout as a tenant's bucket whose transactions append to the
// system chain. So users, login, refresh, logout, MFA, backoff, unlock,
// reset and disable are one code path for both, and each operator event
// is written in the transaction of its change, in the system chain. What
// differs: an operator user's id is "op_…", its principal Kind operator
// (audit.ActorOperator, ID its user id; the root token stays "operator"),
// its access token of kind operator with no tenant, its one role the
// Operator (which requires MFA: enrolment only until TOTP is enrolled),
// it is never scoped, and only operators (the root token or an operator
// user; the API checks the role's permission) manage operators — never a
// tenant's principal. No "last operator" rule holds: the root credential
// can always be regenerated from the seal identity.
//
// Usernames and TOTP states of operators are sealed under the cluster's
// data key (keyring's ClusterKey: age-encrypted to the seal recipients,
// like the audit signing key), their blind index and the pseudonyms of
// unknown usernames keyed by keys derived from it. A sealed node holds no
// such key: it cannot log an operator in or create one (a
// *keyring.UnavailableError, the API's 503 key-unavailable), though it
// resolves existing sessions (no key is needed to read them).
package accounts
