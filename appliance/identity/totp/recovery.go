package totp

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"strings"

	"github.com/custos/custos/internal/validation"
)

// Recovery-code parameters (the package documentation says why).
const (
	// Count is how many recovery codes a set holds.
	Count = 10
	// codeBytes of crypto/rand make one code: 80 bits, 16 base-32
	// characters.
	codeBytes = 10
	codeChars = 16
	groupLen  = 4
	saltSize  = 16
	// hashLabel separates these hashes from any other SHA-256 of the
	// same bytes.
	hashLabel = "custos/totp/recovery-code/v1\x00"
)

// alphabet is Crockford's base-32 alphabet in lower case: the digits and
// the letters without i, l, o and u.
const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// crockford encodes with alphabet. 10 bytes encode to exactly 16
// characters, with no padding and no spare bits.
var crockford = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)

// RegenerateRecovery issues a new set of Count recovery codes for an
// active enrolment and returns the State holding their hashes (the old
// set no longer works once it is persisted) and the codes, to show the
// person once. Errors: ErrNotEnrolled, ErrPending.
func (a *Authenticator) RegenerateRecovery(st State) (State, []string, error) {
	if err := st.mustBeActive(); err != nil {
		return st, nil, err
	}
	return withNewRecovery(st)
}

// withNewRecovery returns st with a new salt and set of codes, and the
// codes.
func withNewRecovery(st State) (State, []string, error) {
	next := st
	next.salt = make([]byte, saltSize)
	_, _ = rand.Read(next.salt) // crypto/rand.Read never fails
	next.recovery = make([][sha256.Size]byte, Count)
	codes := make([]string, Count)
	for i := range codes {
		raw := make([]byte, codeBytes)
		_, _ = rand.Read(raw)
		codes[i] = formatRecovery(raw)
		next.recovery[i] = hashRecovery(next.salt, raw)
	}
	return next, codes, nil
}

// Recover spends one recovery code in place of a TOTP code: it returns
// the State without that code's hash (persist it; the code then no longer
// works) or ErrWrongCode (a code not in the set, or already used),
// ErrNotEnrolled, ErrPending, or a *validation.FieldError for input that
// is not a recovery code. Every stored hash is compared, in constant time.
func (a *Authenticator) Recover(st State, input string) (State, error) {
	raw, err := ParseRecoveryCode(input)
	if err != nil {
		return st, err
	}
	if err := st.mustBeActive(); err != nil {
		return st, err
	}
	h := hashRecovery(st.salt, raw)
	found := -1
	for i := range st.recovery {
		if subtle.ConstantTimeCompare(st.recovery[i][:], h[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return st, ErrWrongCode
	}
	next := st
	next.recovery = make([][sha256.Size]byte, 0, len(st.recovery)-1)
	next.recovery = append(next.recovery, st.recovery[:found]...)
	next.recovery = append(next.recovery, st.recovery[found+1:]...)
	return next, nil
}

// hashRecovery is what a State stores of a code: SHA-256 of the label,
// the set's salt and the code's bytes.
func hashRecovery(salt, raw []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(hashLabel))
	h.Write(salt)
	h.Write(raw)
	return [sha256.Size]byte(h.Sum(nil))
}

// formatRecovery writes a code's bytes as four hyphenated groups of four
// characters: "7k2m-q9xa-4bcd-zt0e".
func formatRecovery(raw []byte) string {
	s := crockford.EncodeToString(raw)
	var b strings.Builder
	for i := 0; i < len(s); i += groupLen {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i : i+groupLen])
	}
	return b.String()
}

// ParseRecoveryCode checks a typed recovery code and returns its bytes.
// It accepts the 16 characters of the alphabet in upper or lower case
// (ASCII only), either all four groups separated by single hyphens
// ("7k2m-q9xa-4bcd-zt0e") or none ("7K2MQ9XA4BCDZT0E"), and nothing else:
// no spaces, no other separators, no look-alike letters. Anything else is
// a *validation.FieldError naming "recovery_code".
func ParseRecoveryCode(s string) ([]byte, error) {
	bad := validation.Field("recovery_code", "must be 16 letters and digits, in groups of four separated by hyphens")
	var buf [codeChars]byte
	n := 0
	switch len(s) {
	case codeChars:
		copy(buf[:], s)
		n = codeChars
	case codeChars + codeChars/groupLen - 1:
		for i := 0; i < len(s); i++ {
			if (i+1)%(groupLen+1) == 0 {
				if s[i] != '-' {
					return nil, bad
				}
				continue
			}
			buf[n] = s[i]
			n++
		}
	default:
		return nil, bad
	}
	for i := range buf {
		c := buf[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		// Checked here rather than left to the decoder, which skips
		// line breaks.
		if strings.IndexByte(alphabet, c) < 0 {
			return nil, bad
		}
		buf[i] = c
	}
	raw, err := crockford.DecodeString(string(buf[:n]))
	if err != nil || len(raw) != codeBytes {
		return nil, bad
	}
	return raw, nil
}
