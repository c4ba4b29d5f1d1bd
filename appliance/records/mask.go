package records

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/custos/custos/appliance/collections"
)

// maskJSON is the masked form of a stored JSON value of a field of type
// typ ("" when the schema no longer names the field), itself always a
// JSON string, so that no masked form can pass for a value of the
// field's type. A text (string, time) keeps the first letter of each
// part between '@', '.' and ' ', every other letter and every digit as
// '*' (jane@example.com → j***@e******.c**; +41 79 555 → +** ** ***),
// separators as they are; a number keeps its shape with every digit as
// '*' (1250.5 → "****.*"). Anything else is "*": an enum's first letter
// would name its value among few, and a boolean or a JSON value has no
// shape worth showing.
func maskJSON(typ string, b []byte) []byte {
	var v any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if typ == collections.TypeEnum || d.Decode(&v) != nil {
		return []byte(`"*"`)
	}
	var out string
	switch v := v.(type) {
	case string:
		out = maskText(v)
	case json.Number:
		out = strings.Map(func(r rune) rune {
			if unicode.IsDigit(r) {
				return '*'
			}
			return r
		}, v.String())
	default:
		out = "*"
	}
	m, _ := json.Marshal(out)
	return m
}

// maskText keeps the first letter of each part of s between '@', '.'
// and ' ', and replaces other letters and all digits with '*'.
func maskText(s string) string {
	var out strings.Builder
	first := true
	for _, r := range s {
		switch {
		case r == '@' || r == '.' || r == ' ':
			out.WriteRune(r)
			first = true
		case first && unicode.IsLetter(r):
			out.WriteRune(r)
			first = false
		default:
			out.WriteByte('*')
			first = false
		}
	}
	return out.String()
}
