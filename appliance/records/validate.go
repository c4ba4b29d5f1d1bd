package records

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/internal/validation"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "r" + strings.ToLower(b32.EncodeToString(b[:])), nil
}

// validID: record ids and subjects are 1 to 64 of a-z A-Z 0-9 . _ - : (no
// separators the layout uses): validation.ID, the one rule for item ids.
func validID(s string) bool { return validation.ID(s) }

// ValidID reports whether s can be a record id.
func ValidID(s string) bool { return validID(s) }

// Input is a record to write.
type Input struct {
	ID         string
	Subject    string
	Attributes map[string]string
	Fields     map[string]json.RawMessage
}

// checked is a validated field value: its canonical JSON and, for indexed
// fields, its normalized form.
type checked struct {
	json    []byte
	indexed []byte
}

// validate checks fields against the schema and returns them canonical.
func validate(sc *collections.Schema, in *Input) (map[string]checked, error) {
	if sc.SubjectRequired && in.Subject == "" {
		return nil, validation.Field("subject", "is required in this collection")
	}
	if in.Subject != "" && !validID(in.Subject) {
		return nil, validation.Field("subject", "must be 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'")
	}
	if err := validation.Attributes(in.Attributes); err != nil {
		return nil, err
	}
	defs := map[string]collections.Field{}
	for _, f := range sc.Fields {
		defs[f.Name] = f
	}
	for name := range in.Fields {
		if _, ok := defs[name]; !ok {
			return nil, validation.Field("fields."+name, "is not a field of the collection")
		}
	}
	out := map[string]checked{}
	for _, f := range sc.Fields {
		raw, ok := in.Fields[f.Name]
		if !ok || string(raw) == "null" {
			if f.Required {
				return nil, validation.Field("fields."+f.Name, "is required")
			}
			continue
		}
		at := "fields." + f.Name
		if len(raw) > maxValueBytes {
			return nil, validation.Field(at, "is larger than 64 KiB")
		}
		c, err := checkValue(f, raw)
		if err != nil {
			return nil, validation.Field(at, err.Error())
		}
		out[f.Name] = c
	}
	return out, nil
}

func checkValue(f collections.Field, raw json.RawMessage) (checked, error) {
	var c checked
	switch f.Type {
	case collections.TypeString, collections.TypeEnum:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return c, errors.New("must be a string")
		}
		if !utf8.ValidString(s) {
			return c, errors.New("must be valid UTF-8")
		}
		if f.Type == collections.TypeEnum && !contains(f.Values, s) {
			return c, fmt.Errorf("must be one of %s", strings.Join(f.Values, ", "))
		}
		c.json, _ = json.Marshal(s)
		c.indexed = []byte(strings.ToLower(strings.TrimSpace(s)))
	case collections.TypeRef:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return c, errors.New("must be a string: a record id")
		}
		if err := validRefValue(s); err != nil {
			return c, err
		}
		c.json, _ = json.Marshal(s)
		c.indexed = []byte(s) // ids are exact: no folding
	case collections.TypeNumber:
		var n float64
		if json.Unmarshal(raw, &n) != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return c, errors.New("must be a number")
		}
		c.json, _ = json.Marshal(n)
		c.indexed = c.json
	case collections.TypeBool:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return c, errors.New("must be true or false")
		}
		c.json, _ = json.Marshal(b)
		c.indexed = c.json
	case collections.TypeTime:
		var s string
		t, err := time.Time{}, error(nil)
		if json.Unmarshal(raw, &s) == nil {
			t, err = time.Parse(time.RFC3339Nano, s)
		} else {
			err = errors.New("not a string")
		}
		if err != nil {
			return c, errors.New("must be an RFC 3339 time")
		}
		c.json, _ = json.Marshal(t.UTC().Format(time.RFC3339Nano))
		c.indexed = c.json
	case collections.TypeJSON:
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := dec.Decode(&v); err != nil {
			return c, errors.New("must be JSON")
		}
		if depth(raw) > maxJSONDepth {
			return c, fmt.Errorf("must nest at most %d levels", maxJSONDepth)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return c, errors.New("must be JSON")
		}
		c.json = buf.Bytes()
	}
	return c, nil
}

// maxJSONDepth bounds the nesting of json fields.
const maxJSONDepth = 32

// depth is the deepest nesting of objects and arrays in valid JSON.
func depth(raw []byte) int {
	d, maxd, inString, escaped := 0, 0, false, false
	for _, b := range raw {
		switch {
		case escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
		case inString:
		case b == '{' || b == '[':
			d++
			maxd = max(maxd, d)
		case b == '}' || b == ']':
			d--
		}
	}
	return maxd
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
