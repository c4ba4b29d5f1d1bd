package password

import (
	_ "embed"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/custos/custos/internal/validation"
)

// The length a password may have, in characters (runes) of its NFC form.
const (
	MinLength = 12
	MaxLength = 128
)

// maxInputBytes is the longest input normalised at all.
const maxInputBytes = 4096

// field is the input field every refusal names.
const field = "password"

// The reasons of refusals: fixed phrases, never the password.
const (
	reasonUTF8   = "must be valid UTF-8 text"
	reasonLength = "must be 12 to 128 characters"
	reasonCommon = "is too common: it is, or is built from, a password found in public breaches"
)

//go:embed common_passwords.txt
var commonPasswords string

// prepare returns password in NFC form, or a *validation.FieldError when
// it is not UTF-8 or longer than MaxLength: what no policy accepts and no
// hash is made of.
func prepare(password string) (string, error) {
	if !utf8.ValidString(password) {
		return "", validation.Field(field, reasonUTF8)
	}
	// Bound the work before normalising: 128 characters take at most
	// 512 bytes in NFC, and no other way of writing them comes near
	// maxInputBytes.
	if len(password) > maxInputBytes {
		return "", validation.Field(field, reasonLength)
	}
	pw := norm.NFC.String(password)
	if utf8.RuneCountInString(pw) > MaxLength {
		return "", validation.Field(field, reasonLength)
	}
	return pw, nil
}

// fold is the form in which passwords are compared with the list: NFC,
// then lower case. common_passwords.txt holds its entries folded.
func fold(password string) string { return strings.ToLower(norm.NFC.String(password)) }

// Policy decides whether a new password is acceptable (the package
// documentation gives the rules). It is safe for concurrent use.
type Policy struct {
	common []string // folded, sorted
}

// NewPolicy returns the Policy with the embedded list of common passwords.
func NewPolicy() *Policy {
	return &Policy{common: strings.Fields(commonPasswords)}
}

// Check returns nil when password is acceptable as a new password, and a
// *validation.FieldError on "password" otherwise.
func (p *Policy) Check(password string) error {
	pw, err := prepare(password)
	if err != nil {
		return err
	}
	if utf8.RuneCountInString(pw) < MinLength {
		return validation.Field(field, reasonLength)
	}
	if p.isCommon(fold(pw)) {
		return validation.Field(field, reasonCommon)
	}
	return nil
}

// isCommon applies the list's three rules to a folded password.
func (p *Policy) isCommon(f string) bool {
	if p.listed(f) {
		return true
	}
	const digits = "0123456789"
	if base := strings.TrimRight(strings.TrimLeft(f, digits), digits); base != f && p.listed(base) {
		return true
	}
	for n := 1; n <= len(f)/2; n++ {
		if len(f)%n != 0 {
			continue
		}
		unit := f[:n]
		if strings.Repeat(unit, len(f)/n) == f && (utf8.RuneCountInString(unit) <= 3 || p.listed(unit)) {
			return true
		}
	}
	return false
}

func (p *Policy) listed(f string) bool {
	_, found := slices.BinarySearch(p.common, f)
	return found
}
