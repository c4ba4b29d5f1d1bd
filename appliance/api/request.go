package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"mime"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/raftstore"
)

const maxTokenLen = 4096

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header. The scheme is case-insensitive (RFC 9110).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > maxTokenLen || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// noBody is the body of routes that take none: an absent body or an empty
// JSON object, so that the same strict rules apply to every route.
type noBody struct{}

// decodeBody decodes the request body into dst, a pointer to a struct with
// json tags, strictly:
//   - a body must be declared application/json (charset utf-8 if given),
//     uncompressed, and be exactly one JSON object: trailing data is
//     refused;
//   - its strings, at any depth, must be valid UTF-8 with valid escapes
//     and no unpaired surrogate (encoding/json would store U+FFFD);
//   - no object, at any depth, may repeat a key (encoding/json would keep
//     the last);
//   - keys of the objects that are structs, at any depth, must match a
//     field's json name exactly (encoding/json would accept any case, and
//     keep the last of name and Name);
//   - no value may be null unless it is JSON of any shape (a
//     json.RawMessage, such as a record field value below the top level),
//     where encoding/json would store a zero value;
//   - values must have the field's JSON type.
//
// A refusal names the JSON path of the value at fault (fields.notes.x,
// attributes.k, fields[0].name) where there is one. An empty body is
// accepted when required is false.
func decodeBody(c *fiber.Ctx, dst any, required bool) error {
	// The raw body: fiber's c.Body() would decompress a Content-Encoding
	// without bound, defeating the body limit.
	body := c.Request().Body()
	if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return &requestError{kind: kindUnsupportedMediaType, detail: "Compressed request bodies are not accepted."}
	}
	if len(body) == 0 {
		if required {
			return badRequest("A JSON request body is required.")
		}
		return nil
	}
	if !isJSON(c.Get(fiber.HeaderContentType)) {
		return &requestError{kind: kindUnsupportedMediaType, detail: "Request bodies must be sent as application/json."}
	}
	if err := checkObject(body, reflect.TypeOf(dst).Elem()); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			field := typeErrorPath(body, te)
			reason := "must be " + jsonType(te.Type)
			return &requestError{kind: kindBadRequest, detail: "Field " + clip(field) + " " + reason + ".",
				fields: []FieldProblem{{Field: clip(field), Reason: reason}}}
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			// checkObject has found the unknown keys of every struct it
			// could follow; this is a safety net.
			name = strings.Trim(name, `"`)
			return &requestError{kind: kindUnknownField, detail: "The request body has a field this endpoint does not accept.",
				fields: []FieldProblem{{Field: clip(name), Reason: "unknown field"}}}
		}
		return badRequest("The request body is not valid JSON for this endpoint.")
	}
	return nil
}

// typeErrorPath is the JSON path of the value a type error is about.
// encoding/json names only struct fields (te.Field is "attributes" for a
// bad value of the attributes map, and "fields.name" for any element of
// an array of structs); the offset it gives lies inside the value, so the
// scanner finds its full path. That path is used only when it agrees with
// te.Field once its array indices are dropped.
func typeErrorPath(body []byte, te *json.UnmarshalTypeError) string {
	p, ok := pathAt(body, int(te.Offset)-1)
	if !ok {
		return te.Field
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '[' {
			if j := strings.IndexByte(p[i:], ']'); j > 0 {
				i += j
				continue
			}
		}
		b.WriteByte(p[i])
	}
	if s := b.String(); s == te.Field || strings.HasPrefix(s, te.Field+".") {
		return p
	}
	return te.Field
}

// checkObject checks, in one pass over body, that it is one well-formed
// JSON object with nothing after it, and that:
//   - its strings (keys and values, at any depth) are valid UTF-8, with
//     valid escapes, no unpaired surrogate and no raw control character;
//   - no object at any depth repeats a key (keys compared unescaped);
//   - following typ (the struct the body decodes into; nil: no such
//     checks) into its values as far as their JSON shape matches it, the
//     keys of struct objects are json names of their fields, exactly, and
//     no value is null, except one of type json.RawMessage or interface
//     below the top level.
//
// Problems are ranked: a syntax error anywhere (so a truncated body is
// reported as malformed whatever it starts with), then the first bad
// string, then a body that is not an object, then the first key problem
// (unknown, repeated or null) in body order. The walk keeps its own stack
// (no recursion) and refuses nesting deeper than encoding/json reads.
func checkObject(body []byte, typ reflect.Type) error {
	s := bodyScanner{b: body, root: typ, target: -1}
	if err := s.scan(); err != nil {
		return err
	}
	switch {
	case s.badString != nil:
		return s.badString
	case s.notObject:
		return badRequest("The request body must be a JSON object.")
	case s.badKey != nil:
		return s.badKey
	}
	return nil
}

// pathAt is the JSON path of the innermost value of body (valid JSON)
// that holds the byte at offset: ok is false when offset is outside every
// value, or is in the top-level value itself.
func pathAt(body []byte, offset int) (string, bool) {
	if offset < 0 || offset >= len(body) {
		return "", false
	}
	s := bodyScanner{b: body, target: offset}
	if err := s.scan(); err != nil || !s.found || s.foundPath == "" {
		return "", false
	}
	return s.foundPath, true
}

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

// errStopScan ends a pathAt walk once the target value is found.
var errStopScan = errors.New("api: scan stopped")

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

// isJSON accepts application/json with no charset or charset utf-8.
func isJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

var (
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// opaque reports whether encoding/json hands values of type t to their
// own decoder (json.RawMessage, time.Time): the scanner does not follow
// them.
func opaque(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Kind() == reflect.Interface || pt.Implements(unmarshalerType) || pt.Implements(textType)
}

// nullable reports whether null is accepted for a value of type t at the
// given depth (1: a top-level member): only below the top level, and only
// where any JSON is (json.RawMessage, interface).
func nullable(t reflect.Type, depth int) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return depth > 1 && (t == rawMessageType || t.Kind() == reflect.Interface)
}

// containerType is the type the scanner follows into an object (object
// set) or array whose declared type is t: a struct or a map with string
// keys for an object, a slice or array for an array. nil when t is nil,
// opaque, or of another shape (encoding/json reports the type error).
func containerType(t reflect.Type, object bool) reflect.Type {
	if t == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if opaque(t) {
		return nil
	}
	switch k := t.Kind(); {
	case object && k == reflect.Struct:
		return t
	case object && k == reflect.Map && t.Key().Kind() == reflect.String:
		return t
	case !object && (k == reflect.Slice || k == reflect.Array):
		return t
	}
	return nil
}

// structField is the type of the field of struct t whose JSON name is
// exactly name: its json tag's name, or its Go name when the tag gives
// none; the fields of untagged embedded structs count as t's own.
func structField(t reflect.Type, name string) (reflect.Type, bool) {
	queue := []reflect.Type{t}
	for len(queue) > 0 {
		t, queue = queue[0], queue[1:]
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == "-" {
				continue
			}
			if f.Anonymous && tag == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					queue = append(queue, ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if tag == "" {
				tag = f.Name
			}
			if tag == name {
				return f.Type, true
			}
		}
	}
	return nil, false
}

func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return jsonType(t.Elem())
	}
	return "an object"
}

// query holds the validated query parameters of a request.
type query struct {
	limit       int // 0: not given
	after       string
	consistency raftstore.Consistency
}

// parseQuery validates the query string: only the parameters in allowed,
// each at most once, with valid values.
func parseQuery(c *fiber.Ctx, allowed ...string) (query, error) {
	q := query{consistency: raftstore.Linearizable}
	var err error
	seen := map[string]bool{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		key, val := string(k), string(v)
		switch {
		case !slices.Contains(allowed, key):
			err = invalidParam(key, "is not accepted by this endpoint")
		case seen[key]:
			err = invalidParam(key, "must be given at most once")
		}
		if err != nil {
			return
		}
		seen[key] = true
		switch key {
		case "limit":
			n, perr := strconv.Atoi(val)
			if perr != nil || n < 1 || n > tenants.MaxListLimit {
				err = invalidParam("limit", "must be an integer between 1 and 500")
			}
			q.limit = n
		case "after":
			if !tenants.ValidID(val) {
				err = invalidParam("after", "must be a tenant id")
			}
			q.after = val
		case "stale":
			stale, perr := strconv.ParseBool(val)
			if perr != nil {
				err = invalidParam("stale", "must be true or false")
			}
			if stale {
				q.consistency = raftstore.Stale
			}
		}
	})
	return q, err
}

// tenantID returns the :id path parameter. An id that is not well formed
// cannot name a tenant, so it is answered 404 without touching storage.
func tenantID(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if !tenants.ValidID(id) {
		return "", &requestError{kind: kindNotFound, detail: "No tenant has this id."}
	}
	return id, nil
}

// validNodeID: node ids are slugs of 1 to 63 characters, the rule the node
// configuration applies.
func validNodeID(id string) bool {
	if len(id) < 1 || len(id) > 63 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
		case ch == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}
