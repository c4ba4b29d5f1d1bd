// Package breakglass is the one way an operator reads a tenant's data:
// a time-limited grant the tenant approves. The Operator role holds no
// read of records, blobs or subjects (appliance/identity/roles); a
// support case that needs the decrypted data asks the tenant, as "we
// cannot see your data" promises.
//
// An operator requests a grant for one tenant with a reason and a
// duration (default one hour, at most the tenant's policy allows and
// never more than MaxDuration): the grant is pending. A principal of
// the tenant whose role holds breakglass:update (the Owner) approves it,
// and it is active from the approval for its duration; or the tenant set
// a policy in advance (auto-approve) and it is active at once, approved
// by the policy. Either side may end it early: the tenant revokes it. A
// pending request not approved within PendingTTL lapses.
//
// While active, the operator that requested it — that one principal,
// not every operator — reads (never writes) the tenant's records, blobs
// and subjects, in clear: the API admits it on those reads (Use), and
// the services' visibility resolver asks Granted.
//
// Every step is an entry in the tenant's audit chain, written in the
// transaction of the change: breakglass.request, breakglass.approve,
// breakglass.revoke, breakglass.use (each request the operator makes
// under the grant, with the permission it used) and breakglass.expire.
// Expiry needs no clock of its own: a grant past its end reads as
// expired at once, and its expiry entry is written the next time the
// tenant's grants are consulted (listed, requested, used), with the
// moment it ended. The tenant sees every grant and its state (List): the
// notice it is owed.
//
// Grants and the policy live in the tenant's own store scope
// (tenancy.Scope), so they go with the tenant and no other tenant's
// principal can name them.
package breakglass
