// Package token makes and checks the two credentials of a session: the
// short-lived signed access token every request carries, and the opaque
// refresh token that buys the next one. It holds primitives only (and an
// in-memory cache of verified tokens) — the session store (which remembers
// refresh tokens, spends them and revokes families) and the API (which
// reads the bearer header or the web UI's cookie) are their callers;
// nothing here does I/O, and the clock is the caller's: every function
// that depends on time takes now.
//
// # Access tokens
//
// An access token is a JWT signed with Ed25519 ("EdDSA"), built and parsed
// by github.com/golang-jwt/jwt/v5 — no JWT code of our own. Ed25519 because
// its signatures are small and deterministic, it has no parameters to get
// wrong, and a verifier holds only public keys. The token is self-contained
// so that any node of the cluster verifies it without a round trip; what it
// cannot say — that its session was revoked or its user disabled a moment
// ago — the session store answers next to it (the "within 1 s").
// That is why the lifetime is short: DefaultLifetime is 15 minutes, as the
// issue asks; it is a property of the [KeySet] (see below).
//
// Claims: iss (the cluster's issuer string), aud ("custos-api"), sub (the
// principal's id), tenant (empty exactly for an operator), kind ("user",
// "operator" or "api_key" — the audit log's actor types), role, sid (the
// session: the refresh family), iat, nbf, exp and jti (random, 128 bits).
//
// Verification is strict, and every refusal is [ErrInvalidToken]:
//
//   - the algorithm must be EdDSA (jwt.WithValidMethods), so "none", HS256
//     keyed with our public key, RS256 and the rest are refused before any
//     key is looked up;
//   - the header must name a key id (kid) of the set that is not retired;
//     a token of another cluster names a kid we do not have;
//   - iss must be the cluster's issuer and aud must contain "custos-api";
//   - exp, nbf and iat are required; a token is refused at exp and before
//     nbf, with a leeway of [Leeway] (5 s) either side: enough for the clock
//     skew between two NTP-synchronised nodes of one cluster (a token issued
//     on one node and used at once on another), small against the 15-minute
//     lifetime;
//   - base64 must be canonical (jwt.WithStrictDecoding);
//   - sub, sid, jti, role and a known kind are required, and the tenant is
//     set for users and API keys and empty for operators.
//
// Unknown claims are tolerated: the signature covers the whole payload, so
// an extra claim can only come from a node holding our signing key — a newer
// node during a rolling upgrade — and refusing it would log everybody out
// of the nodes not yet upgraded. Unknown claims are not read.
//
// # Signing keys
//
// A [KeySet] is the cluster's signing keys: one current key that signs, and
// older keys that still verify until their retire time — the moment every
// token they signed has expired (rotation time + lifetime + leeway). Keys
// are generated with crypto/rand and named by a random key id. A KeySet is
// an immutable value: [KeySet.Rotate] and [KeySet.Prune] return a new set,
// so verification on every request reads a set while a rotation builds the
// next one, and the caller swaps the set in only once it has stored it.
//
// The set holds private keys. [KeySet.MarshalBinary] encodes it for storage
// and [UnmarshalKeySet] decodes and checks it; this package does not seal
// it. appliance/identity/signing stores the encoding sealed, as the audit
// key is, through the keyring — never in the clear — and beside it the
// set's public half ([KeySet.MarshalPublic]), from which a node that
// cannot open the sealed set makes a verify-only set
// ([UnmarshalPublicKeySet]): it verifies tokens and cannot issue them
// ([ErrCannotSign]).
//
// # Verification cache
//
// Ed25519 verification alone costs more than the 50,000
// verifications per second per core allow, and a session presents the
// same access token on every request for its whole lifetime. A [Cache]
// given to an Authority ([Authority.WithCache]) remembers the claims of
// the tokens it verified, keyed by the SHA-256 of the token: a token seen
// before costs a hash and a map lookup, and is checked again on every use
// against the times and the verifying key set, so an expired token, one
// whose key was dropped or retired, or one of another issuer is refused
// as it would be without the cache. The cache is bounded, belongs to its
// owner (no global state) and holds no token; refusals are never cached.
//
// # Refresh tokens
//
// A refresh token is 256 bits from crypto/rand, "crt_" + base64url, opaque:
// it means nothing except through the store that keeps its SHA-256 (the
// token itself is shown to the client once and never stored). Tokens come
// in families — one per login, whose id serves as the session id (sid) —
// and every use spends the token and issues the next of the family
// ([Rotate]). A spent token presented again means that two parties hold
// it — the client and a thief — and the store cannot tell which is which,
// so [Redeem] reports a [*ReuseError] naming the family, and the caller
// revokes the whole family (and audits it as a security event), as OAuth
// 2.0 Security Best Current Practice describes for refresh-token rotation.
// The store must therefore keep the hashes of spent tokens until their
// family's last token has expired.
package token
