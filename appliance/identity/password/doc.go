// Package password stores and checks the passwords of people who do not
// sign in through single sign-on: it hashes them with argon2id, checks a
// typed password against a stored hash in constant time, bounds how many
// hashes run at once, and decides which new passwords are acceptable.
//
// # Parameters
//
// [OWASP] returns argon2id with 19 MiB of memory, 2 passes and 1 lane,
// a 16-byte random salt and a 32-byte key: the first of the equivalent
// configurations the OWASP Password Storage Cheat Sheet recommends
// (m=19 MiB t=2 p=1, m=46 MiB t=1 p=1, m=12 MiB t=3 p=1, ...). Of those,
// 19 MiB / 2 passes is chosen because the appliance runs several hashes at
// once on small nodes: at the same cost to an attacker it needs less than
// half the memory of the 46 MiB configuration per concurrent hash, and one
// lane keeps a hash on one core, so the bound on concurrent hashes is also
// a bound on the cores they take. (RFC 9106's own recommendations — 2 GiB,
// or 64 MiB with 3 passes — cost more memory than an appliance node can
// give to each login.)
//
// A hash is stored as a PHC string,
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// (salt and key in unpadded standard base64), so that every hash carries
// its own parameters: they can be raised later, old hashes still verify,
// and [Hasher.NeedsRehash] says when a hash should be replaced after a
// successful login. The parser is strict — one algorithm, one version, the
// three parameters in that order in canonical decimal, bounded, and the
// string must re-encode to itself — because a stored hash is the one input
// that decides a login.
//
// # Bounded hashing
//
// An argon2id hash of these parameters takes tens of milliseconds of one
// core and 19 MiB. A flood of logins would otherwise run as many hashes as
// there are requests and starve every other request of CPU and memory, so
// a [Hasher] runs at most Concurrency hashes at once (by default half of
// GOMAXPROCS, at least one, leaving the other cores to the API); callers
// beyond that wait for a slot until their context ends, and
// [Hasher.Waiting] reports how many wait. A hash that has started runs to
// its end: argon2 cannot be interrupted.
//
// A hash runs on an operating-system thread of its own at the lowest
// scheduling priority (nice 19, on Linux; the thread ends with the hash),
// so that when the cores are contended the kernel runs the API's threads
// first: the bound above limits how much CPU hashing takes, the priority
// decides who waits when a hash and a request want the same core. It
// helps only if a request goroutine can find a Go processor while hashes
// run, which is why the server raises GOMAXPROCS by the hasher's
// concurrency (cmd/custos: Concurrency computed from the cores, not from
// the raised figure). A login flood measured both ways is in
// BENCHMARKS.md.
//
// # Unknown accounts
//
// A login for an account that does not exist must take as long as one for
// an account that does, or the time of the answer tells an attacker which
// accounts exist. [Hasher.VerifyAbsent] runs the same parse, key
// derivation (same parameters, same slot) and constant-time comparison as
// [Hasher.Verify] against a hash of random bytes made when the Hasher is
// created, and always fails. (A stored hash made with older, cheaper
// parameters verifies faster than the dummy until the login that rehashes
// it; the difference tells an attacker only that the account is old.)
//
// # Policy
//
// [Policy.Check] follows NIST SP 800-63B: length and a list of known
// passwords, no composition rules (they make passwords harder to remember,
// not to guess). A password is first normalised to Unicode NFC — as the
// OpaqueString profile of RFC 8265 does — so that the same characters
// typed on systems that compose them differently give the same password;
// the hash is of the NFC form, and lengths count its characters (runes),
// not bytes: 12 to 128. Compatibility forms (NFKC) are not folded, so
// full-width or ligature characters stay distinct characters.
//
// A password is refused, case-insensitively, when it is in the embedded
// list, when it is a listed password with only digits before or after it
// ("monkey12345678"), or when it is one short unit (up to three
// characters) or a listed password repeated ("abcabcabcabc",
// "passwordpassword"). The list, common_passwords.txt, is zxcvbn's list
// of the 47,023 most frequent passwords of Xato's ten-million-password
// breach corpus, derived from the zxcvbn Go module by gen_common.go;
// common_passwords.NOTICE gives its provenance and licence. Only 298 of
// its entries are 12 characters or longer — most common passwords are
// refused by length alone — which is why the shorter entries are kept
// for the digit and repetition rules.
//
// Refusals are *validation.FieldError on the field "password" with a
// fixed reason; no error of this package contains a password.
package password

//go:generate go run gen_common.go
