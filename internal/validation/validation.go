// Package validation is the one vocabulary for input that breaks a rule:
// [FieldError] names the field (a JSON path such as "fields.email", or a
// query parameter such as "limit") and says why, and every FieldError
// unwraps to [ErrInvalid].
//
// It sits below everything else in the module and imports nothing of it,
// so that every package that checks input — the top-level keyring as much
// as the services and the configuration under appliance/ — returns the
// same type, and the HTTP layer maps all of them to a 422 (or 400) problem
// in one place instead of one case per package.
package validation

import "errors"

// ErrInvalid is what every invalid value unwraps to; the wrapping
// *FieldError says which value and why.
var ErrInvalid = errors.New("invalid input")

// FieldError reports an invalid value of one input field. It unwraps to
// ErrInvalid. For client input (what the API answers with) Reason is a
// fixed, human-readable phrase that never contains the rejected value, so
// it is safe to show to a client and to log; the node's own configuration
// may quote the value, for its operator.
type FieldError struct {
	Field  string // JSON path ("display_name", "fields.email"), parameter ("limit") or configuration key ("api.listen_address")
	Reason string // such as "must be 1 to 200 characters"
}

// Field returns a *FieldError on field for reason.
func Field(field, reason string) *FieldError { return &FieldError{Field: field, Reason: reason} }

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// MaxPage is the most items one page of any listing holds (tenants,
// records, search results, blobs): one bound, so that the API, its
// description and every service agree on it.
const MaxPage = 500

// PageLimit checks the size of a requested page: 0 asks for def, anything
// else must be 1 to MaxPage (a *FieldError naming "limit" otherwise).
func PageLimit(limit, def int) (int, error) {
	if limit == 0 {
		return def, nil
	}
	if limit < 1 || limit > MaxPage {
		return 0, Field("limit", "must be between 1 and 500")
	}
	return limit, nil
}

// MaxID bounds an item id (a record's, a blob's) and a subject id.
const MaxID = 64

// ID reports whether s can be an item or subject id: 1 to MaxID of
// a-z A-Z 0-9 . _ - : (none of the separators storage layouts use).
func ID(s string) bool {
	if s == "" || len(s) > MaxID {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-', c == ':':
		default:
			return false
		}
	}
	return true
}
