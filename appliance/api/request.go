package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"reflect"
	"slices"
	"strconv"
	"strings"
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
//     uncompressed, and be valid UTF-8;
//   - it must be exactly one JSON object: trailing data is refused;
//   - keys must match a field's json name exactly (encoding/json would
//     accept any case), appear once, and not be null;
//   - values must have the field's JSON type.
//
// Unknown keys are found by walking the object's keys rather than by
// reading encoding/json's error text, which has no typed form. An empty
// body is accepted when required is false.
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
	if !utf8.Valid(body) {
		return badRequest("The request body is not valid UTF-8.")
	}
	if err := checkObject(body, jsonFields(dst)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			reason := "must be " + jsonType(te.Type)
			return &requestError{kind: kindBadRequest, detail: "Field " + te.Field + " " + reason + ".",
				fields: []FieldProblem{{Field: clip(te.Field), Reason: reason}}}
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			// A nested object (checkObject sees only the top level).
			name = strings.Trim(name, `"`)
			return &requestError{kind: kindUnknownField, detail: "The request body has a field this endpoint does not accept.",
				fields: []FieldProblem{{Field: clip(name), Reason: "is not accepted here"}}}
		}
		return badRequest("The request body is not valid JSON for this endpoint.")
	}
	return nil
}

// checkObject checks that body is one well-formed JSON value with nothing
// after it, that the value is an object, and that its keys are all in
// allowed, each once and none null. Syntax is checked first, so a
// truncated body is reported as malformed whatever keys it starts with.
func checkObject(body []byte, allowed map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return badRequest("The request body is malformed JSON (at byte %d).", se.Offset)
		}
		return badRequest("The request body is malformed JSON.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("The request body has data after the JSON value.")
	}
	// raw is now known to be valid JSON: the walk below cannot fail on
	// syntax, only on shape.
	obj := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := obj.Token(); err != nil || tok != json.Delim('{') {
		return badRequest("The request body must be a JSON object.")
	}
	seen := map[string]bool{}
	for obj.More() {
		tok, err := obj.Token()
		if err != nil {
			return badRequest("The request body is malformed JSON.")
		}
		key, _ := tok.(string) // object keys are strings in valid JSON
		if !allowed[key] {
			return &requestError{kind: kindUnknownField, detail: "The request body has a field this endpoint does not accept.",
				fields: []FieldProblem{{Field: clip(key), Reason: "unknown field"}}}
		}
		if seen[key] {
			return &requestError{kind: kindBadRequest, detail: "Field " + key + " appears more than once.",
				fields: []FieldProblem{{Field: key, Reason: "duplicate field"}}}
		}
		seen[key] = true
		var val json.RawMessage
		if err := obj.Decode(&val); err != nil {
			return badRequest("The request body is malformed JSON.")
		}
		if string(val) == "null" {
			return &requestError{kind: kindBadRequest, detail: "Field " + key + " must not be null.",
				fields: []FieldProblem{{Field: key, Reason: "must not be null"}}}
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

// jsonFields lists the json names of the fields of the struct dst points
// to.
func jsonFields(dst any) map[string]bool {
	t := reflect.TypeOf(dst).Elem()
	out := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
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
