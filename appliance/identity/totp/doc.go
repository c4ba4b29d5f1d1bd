// Package totp is the second factor of people who sign in with a password:
// time-based one-time passwords (RFC 6238) from an authenticator app, and
// single-use recovery codes for when the app is lost. It enrols an account
// (a secret, its otpauth:// URI and a QR code), confirms the enrolment with
// one valid code, verifies codes at login, refuses a code that was already
// accepted, and issues, checks and regenerates recovery codes.
//
// The package keeps no state of its own: every operation takes the
// account's [State] and returns the next one, and the caller persists it.
// That keeps the package free of storage and lets the identity service
// keep MFA state where it keeps the rest of a user (sealed, in the
// replicated store).
//
// # Parameters
//
// Codes are HMAC-SHA1, 6 digits, 30-second steps: the defaults of RFC 6238
// and the only combination every authenticator app supports (several
// ignore the algorithm, digits and period parameters of the URI and use
// these anyway, and would then show codes that never verify). SHA-1's
// collision weakness does not touch HMAC-SHA1, which RFC 6238 and RFC 4226
// specify. Secrets are 20 random bytes (160 bits), the length RFC 4226
// recommends. The URI is built by github.com/pquerna/otp in the format of
// Google Authenticator's key-URI description ("otpauth://totp/ISSUER:ACCOUNT?
// secret=...&issuer=..."), which every app reads, and the QR code is its
// rendering of that URI.
//
// A code is accepted for the current step and one step either side
// ([Skew]): RFC 6238 recommends at most one step of allowed delay, which
// covers a phone clock up to 30 s off and a code typed just as it rolled
// over. Codes are compared in constant time, and all three candidate
// steps are always computed and compared, so the time of an answer says
// nothing about which step (if any) matched.
//
// # Replay
//
// RFC 6238 requires that a code be accepted at most once. [State] records
// the last step a code was accepted for; a code is accepted only for a
// step after it, so a code accepted for step N is refused again for N and
// any earlier step — the same code, or an older code seen over someone's
// shoulder. (After a code from the next step was accepted, the current
// step's code is refused too, until the step after: RFC 6238's rule, and
// the cost of accepting clock skew.) Because the state is a value the
// caller persists, two requests carrying the same code at the same moment
// would both see the old state: the caller must store the returned state
// with a conditional write (compare-and-set on the version it read) and
// treat the login as successful only when that write succeeds.
//
// # Recovery codes
//
// [Count] codes are issued when an enrolment is confirmed, and a new set by
// [Authenticator.RegenerateRecovery], which invalidates the old set. Each
// code is 80 bits from crypto/rand, written as 16 characters of the
// Crockford base-32 alphabet in lower case (no i, l, o or u, so nothing
// reads as another character) in four groups: "7k2m-q9xa-4bcd-zt0e".
// Input is accepted in either case, with or without the hyphens, and
// nothing else. A code is usable once: it is removed from the state when
// it is used.
//
// Codes are stored as SHA-256 hashes (of a fixed domain label, a random
// 16-byte salt per set, and the code's 80 bits), never in the clear. A
// fast hash is enough here, unlike for passwords: slow hashes such as
// argon2id exist to protect low-entropy secrets people choose, while a
// random 80-bit code already costs 2^80 guesses (2^77 for one of ten)
// however fast each guess is. The per-set salt stops one computation from
// attacking every account's codes at once.
//
// # The secret at rest
//
// [State] holds the TOTP secret in the clear, because a TOTP verifier
// must have it (unlike a password, it cannot be hashed). The identity
// service must seal the encoded state with the keyring before it stores
// it, as it seals every other secret; this package deliberately defines no
// encryption of its own. The encoded form ([State.MarshalBinary],
// [ParseState]) is strict canonical JSON: anything that does not decode
// to a valid state and re-encode to the same bytes is refused.
//
// # Input
//
// A code a person types is parsed strictly ([ParseCode],
// [ParseRecoveryCode]); malformed input is a *validation.FieldError, so
// that the API answers it as bad input. Whether a malformed code counts
// as a failed attempt (for backoff) is the caller's decision. A wrong,
// replayed or used code is an error the caller can tell apart
// ([ErrWrongCode], [ErrReplayed]) to audit it; it must answer the client
// the same way for all of them.
package totp
