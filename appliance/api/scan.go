package api

import (
	"bytes"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxBodyDepth is the deepest nesting of objects and arrays a request body
// may have: encoding/json's own limit.
const maxBodyDepth = 10000

// scanFrame is one open object or array of a body being scanned.
type scanFrame struct {
	object bool
	key    string              // object: the current member's key
	index  int                 // array: the current element's index
	keys   map[string]struct{} // object: the keys seen so far
	typ    reflect.Type        // struct, map, slice or array; nil: not followed
	vtyp   reflect.Type        // the current member's or element's type, or nil
}

// bodyScanner walks a JSON text once, byte by byte, with an explicit
// stack. It stops at the first syntax error (returned by scan) and notes
// the first problem of each other rank to report after the walk. With
// target >= 0 it looks for the value that holds that offset instead.
type bodyScanner struct {
	b     []byte
	i     int
	stack []scanFrame
	root  reflect.Type // the type of the top-level value, or nil

	notObject bool
	badString *requestError // first string with bad content
	badKey    *requestError // first unknown, repeated or null key

	target    int
	found     bool
	foundPath string
}

func (s *bodyScanner) syntaxError() error {
	if s.i >= len(s.b) {
		return badRequest("The request body is malformed JSON (at byte %d).", len(s.b))
	}
	return badRequest("The request body is malformed JSON (at byte %d).", s.i+1)
}

func (s *bodyScanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// path is the JSON path of the current value: object keys joined by dots,
// array indices in brackets (fields.doc[2].x).
func (s *bodyScanner) path() string {
	var b strings.Builder
	for _, f := range s.stack {
		if f.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		} else {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.index))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func (s *bodyScanner) scan() error {
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] != '{' {
		s.notObject = true
	}
	if err := s.value(); err != nil {
		if errors.Is(err, errStopScan) {
			return nil
		}
		return err
	}
	if s.target >= 0 {
		return nil
	}
	s.skipSpace()
	if s.i < len(s.b) {
		return badRequest("The request body has data after the JSON value.")
	}
	return nil
}

// value walks one JSON value, the one starting at s.i after white space.
// Nested values are walked by the loop, not by recursion.
func (s *bodyScanner) value() error {
	base := len(s.stack)
	for {
		// A value starts here.
		s.skipSpace()
		if s.i >= len(s.b) {
			return s.syntaxError()
		}
		start := s.i
		if s.target >= 0 && start > s.target {
			return errStopScan // the target is between values
		}
		decl := s.root
		if len(s.stack) > 0 {
			decl = s.stack[len(s.stack)-1].vtyp
		}
		switch c := s.b[s.i]; {
		case c == '{' || c == '[':
			if s.target == start {
				s.found, s.foundPath = true, s.path()
				return errStopScan
			}
			if len(s.stack) >= maxBodyDepth {
				return badRequest("The request body is nested too deeply.")
			}
			s.i++
			s.stack = append(s.stack, scanFrame{object: c == '{', typ: containerType(decl, c == '{')})
			if t := s.stack[len(s.stack)-1].typ; t != nil && c == '[' {
				s.stack[len(s.stack)-1].vtyp = t.Elem()
			}
			s.skipSpace()
			if s.i < len(s.b) && (s.b[s.i] == '}' || s.b[s.i] == ']') {
				if (s.b[s.i] == '}') != (c == '{') {
					return s.syntaxError()
				}
				s.i++
				s.stack = s.stack[:len(s.stack)-1]
				break // an empty object or array: the value ends
			}
			if c == '{' {
				if err := s.key(); err != nil {
					return err
				}
			}
			continue // its first member's value
		case c == '"':
			if _, err := s.str(false); err != nil {
				return err
			}
		case c == 't':
			if err := s.literal("true"); err != nil {
				return err
			}
		case c == 'f':
			if err := s.literal("false"); err != nil {
				return err
			}
		case c == 'n':
			if err := s.literal("null"); err != nil {
				return err
			}
			if decl != nil && !nullable(decl, len(s.stack)) && s.badKey == nil && s.target < 0 {
				p := clip(s.path())
				s.badKey = &requestError{kind: kindBadRequest, detail: "Field " + p + " must not be null.",
					fields: []FieldProblem{{Field: p, Reason: "must not be null"}}}
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if err := s.number(); err != nil {
				return err
			}
		default:
			return s.syntaxError()
		}
		if s.target >= 0 && start <= s.target && s.target < s.i {
			s.found, s.foundPath = true, s.path()
			return errStopScan
		}
		// The value ended: close every container it ends, and move to the
		// next member or element.
		for {
			if len(s.stack) == base {
				return nil
			}
			s.skipSpace()
			if s.i >= len(s.b) {
				return s.syntaxError()
			}
			top := &s.stack[len(s.stack)-1]
			c := s.b[s.i]
			if c == ',' {
				s.i++
				if top.object {
					if err := s.key(); err != nil {
						return err
					}
				} else {
					top.index++
				}
				break
			}
			if (top.object && c == '}') || (!top.object && c == ']') {
				s.i++
				s.stack = s.stack[:len(s.stack)-1]
				continue
			}
			return s.syntaxError()
		}
	}
}

// key reads an object member's key and its colon, and checks the key.
func (s *bodyScanner) key() error {
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return s.syntaxError()
	}
	top := &s.stack[len(s.stack)-1]
	k, err := s.str(true)
	if err != nil {
		return err
	}
	top.key = k
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return s.syntaxError()
	}
	s.i++
	top.vtyp = nil
	if top.typ != nil {
		if top.typ.Kind() == reflect.Map {
			top.vtyp = top.typ.Elem()
		} else if ft, ok := structField(top.typ, k); ok {
			top.vtyp = ft
		} else if s.badKey == nil && s.target < 0 {
			p := clip(s.path())
			s.badKey = &requestError{kind: kindUnknownField, detail: "The request body has a field this endpoint does not accept.",
				fields: []FieldProblem{{Field: p, Reason: "unknown field"}}}
		}
	}
	if s.target >= 0 || s.badKey != nil {
		return nil
	}
	if _, dup := top.keys[k]; dup {
		p := clip(s.path())
		s.badKey = &requestError{kind: kindBadRequest, detail: "Field " + p + " appears more than once.",
			fields: []FieldProblem{{Field: p, Reason: "duplicate field"}}}
		return nil
	}
	if top.keys == nil {
		top.keys = map[string]struct{}{}
	}
	top.keys[k] = struct{}{}
	return nil
}

// str reads a string starting at its opening quote, and returns it
// unescaped when decode is set (a key). Bad content (invalid UTF-8, a bad
// escape, an unpaired surrogate, a raw control character) is noted, not
// returned: only the end of the body inside a string is a syntax error.
func (s *bodyScanner) str(decode bool) (string, error) {
	s.i++ // the opening quote
	begin := s.i
	var buf []byte // the unescaped key, once it has an escape
	bad := ""
	note := func(reason string) {
		if bad == "" {
			bad = reason
		}
	}
	for {
		if s.i >= len(s.b) {
			return "", s.syntaxError()
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			var out string
			if decode {
				if buf != nil {
					out = string(buf)
				} else {
					out = string(s.b[begin:s.i])
				}
			}
			s.i++
			if bad != "" {
				s.noteBadString(decode, out, bad)
			}
			return out, nil
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return "", s.syntaxError()
			}
			if decode && buf == nil {
				buf = append([]byte(nil), s.b[begin:s.i]...)
			}
			switch e := s.b[s.i+1]; e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				if decode {
					buf = append(buf, unescape(e))
				}
				s.i += 2
			case 'u':
				r, ok := hex4(s.b[s.i+2:])
				if !ok {
					note("has an invalid \\u escape")
					s.i += 2
					continue
				}
				s.i += 6
				switch {
				case utf16.IsSurrogate(r) && r < 0xdc00:
					r2, ok := rune(0), false
					if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
						r2, ok = hex4(s.b[s.i+2:])
					}
					if ok && r2 >= 0xdc00 && r2 <= 0xdfff {
						r = utf16.DecodeRune(r, r2)
						s.i += 6
					} else {
						note("has an unpaired surrogate escape")
						r = utf8.RuneError
					}
				case utf16.IsSurrogate(r):
					note("has an unpaired surrogate escape")
					r = utf8.RuneError
				}
				if decode {
					buf = utf8.AppendRune(buf, r)
				}
			default:
				// Not an escape: the backslash alone is refused, and the
				// byte after it is read as part of the string.
				note("has an invalid escape")
				s.i++
			}
		case c < 0x20:
			note("has a control character that is not escaped")
			if decode && buf != nil {
				buf = append(buf, c)
			}
			s.i++
		case c < utf8.RuneSelf:
			if decode && buf != nil {
				buf = append(buf, c)
			}
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n == 1 {
				note("is not valid UTF-8")
			}
			if decode && buf != nil {
				buf = append(buf, s.b[s.i:s.i+n]...)
			}
			s.i += n
		}
	}
}

// noteBadString keeps the first string with bad content, named by its
// path (a key by the path it would have).
func (s *bodyScanner) noteBadString(isKey bool, key, reason string) {
	if s.badString != nil || s.target >= 0 {
		return
	}
	if isKey {
		s.stack[len(s.stack)-1].key = key
		reason = "name " + reason
	}
	p := clip(s.path())
	if p == "" {
		s.badString = &requestError{kind: kindBadRequest, detail: "The request body has a string that " + reason + "."}
		return
	}
	s.badString = &requestError{kind: kindBadRequest, detail: "Field " + p + " " + reason + ".",
		fields: []FieldProblem{{Field: p, Reason: reason}}}
}

// unescape is the byte a one-letter escape stands for.
func unescape(e byte) byte {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return e // " \ /
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (s *bodyScanner) literal(lit string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return s.syntaxError()
	}
	s.i += len(lit)
	return nil
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *bodyScanner) number() error {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case digits() == 0:
		return s.syntaxError()
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.syntaxError()
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.syntaxError()
		}
	}
	return nil
}
