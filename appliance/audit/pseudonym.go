package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// Pseudonym refers to a person, or any sensitive value, in an entry
// without writing it: kind ":h:" and the first 16 bytes of
// HMAC-SHA256(key, kind || 0 || value), base64url. key is the tenant's
// audit key (keyring derives it from the tenant key), so the tenant — and
// only the tenant — can tell which subject an entry names, by computing
// the pseudonym of a candidate; after the tenant is deleted nobody can.
func Pseudonym(key []byte, kind, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return kind + ":h:" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}
