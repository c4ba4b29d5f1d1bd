// Package sso is single sign-on through OpenID Connect, per tenant: a
// tenant's Owner points Custos at the tenant's identity provider
// (Google, Microsoft Entra, or any OpenID Connect provider), says how
// the provider's claims map onto roles and attribute scopes, and the
// tenant's people sign in there instead of with a Custos password. A
// sign-in ends in the same session as a password login (the accounts
// service issues it through [Accounts]), so every check that applies
// to a user applies to an SSO user.
//
// Why each piece is there:
//   - Authorization code flow with PKCE (S256), state and nonce: the
//     code travels through the browser, so it is worth nothing without
//     the verifier only Custos holds; the nonce ties the ID token to
//     this sign-in; the state names the sign-in.
//   - The provider is trusted for who someone is, and only as far as
//     go-oidc's verifier checks it: signature by the provider's
//     published keys, issuer, audience (the tenant's client id) and
//     expiry. Entra's multi-tenant issuer is a template
//     ("https://login.microsoftonline.com/{tenantid}/v2.0"): the token's
//     iss must be the template for its own tid, and the tid one the
//     settings allow — anyone can create a directory, so a template
//     without an allow list is refused.
//   - Email-domain mappings match only a verified email (email_verified
//     true): an unverified address is whatever the person typed.
//
// # Sign-ins under way
//
// A sign-in may start on one node and come back to another, so its
// state is kept in the replicated store, in the tenant's bucket
// ("sso_flows", one entry per sign-in, keyed by a 256-bit random id;
// the state is "<tenant>.<id>"), not signed into the state itself: the
// store is what makes a state single-use on every node (the callback
// deletes the entry on the condition that it is the version it read, so
// two callbacks with one state cannot both win), which a self-contained
// state would need a replicated "spent" list for anyway. The entry's
// nonce, PKCE verifier and redirect URI are sealed with the tenant's
// keys and bound to the entry. A sign-in lives 10 minutes; expired
// entries are swept by later starts, and a tenant has at most 1000
// under way. Each sign-in also has a binding, a secret returned by
// Start that the callback must present (the CLI sends it back; the API
// puts it in a cookie for a browser): a code and state taken from
// another person's browser complete nothing.
//
// # Storage and audit
//
// The settings are one entry of the tenant's bucket ("sso" / "config"),
// the client secret in it sealed with the tenant's data key
// (keyring.Seal, bound to the tenant and its use); Get never returns it.
// Configuration changes ("sso.configure", "sso.delete") and every
// refused callback that redeemed a sign-in ("sso.login", failure, with
// its reason) are entries of the tenant's audit chain; a successful
// sign-in is the session's start, which the accounts service records
// ("session.login", method sso) in the transaction that starts it, so
// each sign-in is one entry. Entries never hold the code, a token, the
// client secret, or the provider's subject in clear (it is
// pseudonymised with the tenant's audit key).
package sso
