package records

import (
	"encoding/json"
	"strings"
)

// maskJSON masks a JSON string value: the first character of each part
// between '@' and '.', the rest as '*' (jane@example.com → j***@e******.c**);
// other values become null.
func maskJSON(b []byte) []byte {
	var s string
	if json.Unmarshal(b, &s) != nil {
		return []byte("null")
	}
	var out strings.Builder
	first := true
	for _, r := range s {
		switch {
		case r == '@' || r == '.' || r == ' ':
			out.WriteRune(r)
			first = true
		case first:
			out.WriteRune(r)
			first = false
		default:
			out.WriteByte('*')
		}
	}
	m, _ := json.Marshal(out.String())
	return m
}
