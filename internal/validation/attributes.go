package validation

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// Attributes label records and blobs in the clear, for access decisions;
// attribute scopes (a principal's: property → villa-a, villa-b) name them.
// One rule for both, here, so that a scope can name every attribute an
// item can carry, and nothing else.
const (
	// MaxAttributes bounds an item's attributes, and the names of a scope.
	MaxAttributes = 16
	// MaxAttributeValue bounds an attribute's value, in bytes.
	MaxAttributeValue = 128
	// MaxScopeValues bounds the values one name of a scope allows.
	MaxScopeValues = 64
	// maxName bounds a name (of a field, a collection, an attribute).
	maxName = 63
)

// Name reports whether s is a name of the schema vocabulary — a
// collection, a field, an attribute: 1 to 63 of a-z, 0-9 and _, starting
// with a letter.
func Name(s string) bool {
	if s == "" || len(s) > maxName || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func attributeValue(v string) bool { return len(v) <= MaxAttributeValue && utf8.ValidString(v) }

// Attributes checks an item's attributes: at most MaxAttributes, each a
// Name with a valid UTF-8 value of at most MaxAttributeValue bytes. The
// *FieldError names "attributes" or "attributes.<name>".
func Attributes(attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return Field("attributes", fmt.Sprintf("must have at most %d entries", MaxAttributes))
	}
	for k, v := range attrs {
		if !Name(k) || !attributeValue(v) {
			return Field("attributes."+k, "must be a name of a-z, 0-9 and _ with a value of at most 128 bytes")
		}
	}
	return nil
}

// Scopes checks attribute scopes given as field (such as "scopes"): at
// most MaxAttributes names, each a Name allowing 1 to MaxScopeValues
// distinct, non-empty attribute values. The *FieldError names field or
// "<field>.<name>".
func Scopes(field string, scopes map[string][]string) error {
	if len(scopes) > MaxAttributes {
		return Field(field, fmt.Sprintf("must name at most %d attributes", MaxAttributes))
	}
	for name, values := range scopes {
		bad := !Name(name) || len(values) == 0 || len(values) > MaxScopeValues
		for i, v := range values {
			bad = bad || v == "" || !attributeValue(v) || slices.Contains(values[:i], v)
		}
		if bad {
			return Field(field+"."+name, fmt.Sprintf("must be an attribute name (a-z, 0-9 and _) allowing 1 to %d distinct values of 1 to 128 bytes", MaxScopeValues))
		}
	}
	return nil
}
