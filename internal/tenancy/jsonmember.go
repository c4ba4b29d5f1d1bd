package tenancy

import (
	"bytes"
	"encoding/json"
)

// jsonMember finds the value of the top-level member name of the JSON
// object v without decoding the other members: it steps over each by its
// bounds (strings with their escapes, nested objects and arrays, scalars
// up to the next delimiter). found is false when v has no such member; ok
// is false when v is not an object or its structure breaks before the
// member ends (the other members' contents are not validated: the
// caller's decoding of the member is). With several such members, the
// last one counts, as encoding/json decodes them.
func jsonMember(v []byte, name string) (raw []byte, found, ok bool) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return nil, false, false
	}
	i = skipSpace(v, i+1)
	if i < len(v) && v[i] == '}' {
		return nil, false, true
	}
	for {
		kEnd, ok := skipString(v, i)
		if !ok {
			return nil, false, false
		}
		key := v[i:kEnd]
		i = skipSpace(v, kEnd)
		if i >= len(v) || v[i] != ':' {
			return nil, false, false
		}
		start := skipSpace(v, i+1)
		end, ok := skipValue(v, start)
		if !ok {
			return nil, false, false
		}
		if keyIs(key, name) {
			raw, found = v[start:end], true
		}
		i = skipSpace(v, end)
		if i >= len(v) {
			return nil, false, false
		}
		switch v[i] {
		case ',':
			i = skipSpace(v, i+1)
		case '}':
			return raw, found, true
		default:
			return nil, false, false
		}
	}
}

// keyIs reports whether the quoted JSON string key is name.
func keyIs(key []byte, name string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return len(key) == len(name)+2 && string(key[1:len(key)-1]) == name
	}
	var k string
	return json.Unmarshal(key, &k) == nil && k == name
}

func skipSpace(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the end of the string starting at v[i] (a quote).
func skipString(v []byte, i int) (int, bool) {
	if i >= len(v) || v[i] != '"' {
		return 0, false
	}
	for i++; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipValue returns the end of the value starting at v[i].
func skipValue(v []byte, i int) (int, bool) {
	if i >= len(v) {
		return 0, false
	}
	switch v[i] {
	case '"':
		return skipString(v, i)
	case '{', '[':
		depth := 0
		for ; i < len(v); i++ {
			switch v[i] {
			case '"':
				end, ok := skipString(v, i)
				if !ok {
					return 0, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	}
	start := i
	for i < len(v) && v[i] != ',' && v[i] != '}' && v[i] != ']' && v[i] != ' ' && v[i] != '\t' && v[i] != '\n' && v[i] != '\r' {
		i++
	}
	return i, i > start
}
