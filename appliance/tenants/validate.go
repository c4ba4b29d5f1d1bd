package tenants

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
)

// Input limits.
const (
	MinIDLen          = tenancy.MinIDLen
	MaxIDLen          = tenancy.MaxIDLen
	MaxDisplayNameLen = 200 // characters (runes), after trimming
	maxRegionLen      = 63
	maxPrincipalLen   = 128
)

// ValidID reports whether id is a well-formed tenant id:
// ^[a-z0-9][a-z0-9-]{1,62}$. Ids that are not well formed cannot exist, so
// callers may answer "not found" for them without a lookup. The rule is the
// tenancy boundary's (tenancy.ValidID).
func ValidID(id string) bool { return tenancy.ValidID(id) }

// validRegion: a region name is a slug of 1 to 63 characters, the rule the
// node configuration applies to its own region.
func validRegion(r string) bool {
	return len(r) >= 1 && len(r) <= maxRegionLen && isSlug(r)
}

// isSlug: the first byte is [a-z0-9], the rest [a-z0-9-]. Written out rather
// than as a regexp so the rule is plain and allocation free.
func isSlug(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// normalizeDisplayName trims name and checks it; it returns the name to
// store.
func normalizeDisplayName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", validation.Field("display_name", "must be valid UTF-8")
	}
	// Checked before trimming, as the OpenAPI description's pattern and
	// maxLength check the value sent: a form feed or a tab is a control
	// character even at the edge, and spaces count towards the 200.
	for _, r := range name {
		if unicode.IsControl(r) || isBidiControl(r) {
			return "", validation.Field("display_name", "must not contain control or bidirectional formatting characters")
		}
	}
	if utf8.RuneCountInString(name) > MaxDisplayNameLen {
		return "", validation.Field("display_name", "must be 1 to 200 characters")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", validation.Field("display_name", "must be 1 to 200 characters after trimming spaces")
	}
	return name, nil
}

// isBidiControl reports the characters that change the display order of
// text (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069): a name
// holding them can render as a different name in an operator's console.
func isBidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// checkPrincipal rejects a principal the caller failed to fill in. This is
// a programming error, not bad client input, so it is not a
// validation.FieldError.
func checkPrincipal(p audit.Principal) error {
	if p.Kind == "" || p.ID == "" || len(p.ID) > maxPrincipalLen || len(p.RequestID) > maxPrincipalLen {
		return errors.New("tenants: a principal needs a kind, an id of 1 to 128 bytes and a request id of at most 128 bytes")
	}
	return nil
}
