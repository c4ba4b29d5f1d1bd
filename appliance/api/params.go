package api

import (
	"fmt"
	"github.com/custos/custos/appliance/identity/breakglass"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/validation"
)

// where a parameter is in the request.
type where int

const (
	inPath where = iota
	inQuery
	inHeader
)

func (w where) String() string {
	switch w {
	case inPath:
		return "path"
	case inHeader:
		return "header"
	}
	return "query"
}

// paramType is one kind of parameter value: how it is read, and what the
// problem says of a value it refuses. Every value is refused the same way
// wherever the type is used: the one rule of each type lives here.
type paramType struct {
	// schema and format are the OpenAPI type of the value ("boolean",
	// "integer", "string"; "date-time"); min and max bound an integer.
	schema, format string
	min, max       uint64
	// parse returns the value, or ok false.
	parse func(v string) (any, bool)
	// reason completes "query parameter <name> ..." for a refused value.
	reason string
	// id marks an id or a name: a string of a fixed pattern.
	id bool
	// notFound is the detail of a refused path value: a path id that
	// cannot be valid names nothing, so it is answered 404 like a
	// well-formed id that names nothing.
	notFound string
}

// param is one declared parameter of a route.
type param struct {
	name     string
	in       where
	typ      *paramType
	required bool
	def      any // the value of an absent optional parameter; nil: the type's zero
	// repeated: a query parameter that may be given several times (an
	// array in openapi.json, form style exploded); its value is the
	// []string of its parsed values, in the request's order.
	repeated bool
}

// schema is the OpenAPI type of the parameter: its type's, or "array" of
// them for a repeated one.
func (p param) schema() string {
	if p.repeated {
		return "array"
	}
	return p.typ.schema
}

func pathParam(name string, t *paramType) param {
	return param{name: name, in: inPath, typ: t, required: true}
}
func query(name string, t *paramType) param { return param{name: name, in: inQuery, typ: t} }

// repeatedQuery is a query parameter that may be given several times.
func repeatedQuery(name string, t *paramType) param {
	return param{name: name, in: inQuery, typ: t, repeated: true}
}
func required(name string, t *paramType) param {
	return param{name: name, in: inQuery, typ: t, required: true}
}
func headerParam(name string, t *paramType) param { return param{name: name, in: inHeader, typ: t} }
func (p param) withDefault(v any) param           { p.def = v; return p }
func idType(valid func(string) bool, reason, notFound string) *paramType {
	return &paramType{schema: "string", id: true, reason: reason, notFound: notFound,
		parse: func(v string) (any, bool) { return v, valid(v) }}
}

// intType is an integer between min and max (max 0: no upper bound).
func intType(min, max uint64) *paramType {
	reason, format := fmt.Sprintf("must be an integer of at least %d", min), "int64"
	if max > 0 {
		reason, format = fmt.Sprintf("must be an integer between %d and %d", min, max), ""
	}
	return &paramType{schema: "integer", format: format, min: min, max: max, reason: reason, parse: func(v string) (any, bool) {
		n, err := strconv.ParseUint(v, 10, 64)
		return n, err == nil && n >= min && (max == 0 || n <= max)
	}}
}

// The parameter types.
var (
	// boolType accepts exactly true and false, as JSON spells them: 1,
	// t or TRUE are refused, not guessed at.
	boolType = &paramType{schema: "boolean", reason: "must be true or false", parse: func(v string) (any, bool) {
		return v == "true", v == "true" || v == "false"
	}}
	// pageLimit is the size of a page of tenants, record ids or blobs.
	pageLimit  = intType(1, validation.MaxPage)
	auditLimit = intType(1, 1000)
	statsDays  = intType(1, audit.MaxStatsDays)
	// consentStatsDays bounds GET .../consent-stats.
	consentStatsDays = intType(1, consent.MaxStatsDays)
	count0           = intType(0, 0) // a sequence number or tree index
	count1           = intType(1, 0) // a tree size or version
	timeType         = &paramType{schema: "string", format: "date-time", reason: "must be an RFC 3339 time such as 2026-01-02T15:04:05Z",
		parse: func(v string) (any, bool) {
			t, err := time.Parse(time.RFC3339Nano, v)
			return t, err == nil
		}}
	// filterText is a filter value of 1 to 256 bytes.
	filterText = &paramType{schema: "string", reason: "must be 1 to 256 bytes", parse: func(v string) (any, bool) {
		return v, v != "" && len(v) <= 256
	}}
	// nonEmpty is any value but the empty one; the service checks it.
	nonEmpty = &paramType{schema: "string", reason: "must not be empty", parse: func(v string) (any, bool) {
		return v, v != ""
	}}
	// reasonType is why a person reads (see audit.Principal.Reason): 1
	// to maxReasonChars characters of text, no control character, and
	// at most what an audit detail holds.
	reasonType = &paramType{schema: "string", reason: fmt.Sprintf("must be 1 to %d characters (at most %d bytes) of text without control characters", maxReasonChars, audit.MaxReason),
		parse: func(v string) (any, bool) { return v, validReason(v) }}
	// attributeType is name:value, the name not empty.
	attributeType = &paramType{schema: "string", reason: "must be name:value", parse: func(v string) (any, bool) {
		name, _, ok := strings.Cut(v, ":")
		return v, ok && name != ""
	}}
	// versionType is If-Match: a version in quotes, as ETag gives it.
	versionType = &paramType{schema: "string", reason: `must be a version as the ETag header gives it, such as "3"`,
		parse: func(v string) (any, bool) {
			// Exactly the form ETag gives and openapi.json states,
			// ^"[1-9][0-9]{0,18}"$: no bare or half-quoted version, no
			// leading zero, no weak tag.
			digits, open := strings.CutPrefix(v, `"`)
			digits, closed := strings.CutSuffix(digits, `"`)
			if !open || !closed || len(v) < 3 || len(digits) > 19 || digits[0] == '0' {
				return nil, false
			}
			for _, c := range []byte(digits) {
				if c < '0' || c > '9' {
					return nil, false
				}
			}
			n, err := strconv.ParseUint(digits, 10, 64)
			return n, err == nil
		}}

	tenantIDType       = idType(tenants.ValidID, "must be a tenant id", "No tenant has this id.")
	nodeIDType         = idType(validNodeID, "must be a node id", "No peer has this id.")
	apiKeyIDType       = idType(validAPIKeyID, "must be an API key id", "No API key has this id.")
	collectionType     = idType(collections.ValidName, "must be a collection name", "No collection has this name.")
	fieldNameType      = idType(collections.ValidName, "must be a field name", "")
	recordIDType       = idType(records.ValidID, "must be a record id", "No record has this id.")
	subjectType        = idType(records.ValidID, "must be 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'", "The tenant holds nothing about this subject.")
	blobIDType         = idType(blobs.ValidID, "must be a blob id", "No blob has this id.")
	grantIDType        = idType(breakglass.ValidID, "must be a break-glass grant id", "No break-glass grant has this id.")
	userIDType         = idType(accounts.ValidUserID, "must be a user id", "No user has this id.")
	operatorIDType     = idType(accounts.ValidOperatorID, "must be an operator user id", "No operator has this id.")
	sessionIDType      = idType(accounts.ValidSessionID, "must be a session id", "No session has this id.")
	roleNameType       = idType(accounts.ValidRoleName, "must be a role name", "No role has this name.")
	purposeIDType      = idType(consent.ValidPurposeID, "must be a purpose id", "No purpose of the tenant has this id.")
	blobKindType       = idType(consent.ValidKind, "must be a blob kind", "No blob kind of the tenant has this name.")
	erasureRequestType = idType(validation.ID, "must be a request id", "No request has this id.")
)

// maxReasonChars bounds a read's reason in characters.
const maxReasonChars = 200

// validReason: 1 to maxReasonChars characters of UTF-8 text, without
// control characters, of at most audit.MaxReason bytes.
func validReason(v string) bool {
	if v == "" || len(v) > audit.MaxReason || !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxReasonChars {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// input is a request as its route declared it: who made it, the values
// of its parameters, validated and parsed, its decoded body, and the
// tenant its path names once that tenant is known to exist.
type input struct {
	rt *route
	// who is the request's principal, as authentication established it
	// (zero on a public route): services are handed it whole.
	who    audit.Principal
	values map[string]any
	body   any
	tenant string
}

// value is the parsed value of the parameter name, or its default when it
// is absent. A handler asking for a parameter its route does not declare
// is a bug of this package, caught by every test that reaches it.
func (in *input) value(name string) any {
	if v, ok := in.values[name]; ok {
		return v
	}
	p, ok := in.rt.param(name)
	if !ok {
		panic("api: route " + in.rt.method + " " + in.rt.path + " reads undeclared parameter " + name)
	}
	return p.def
}

// has reports whether the request gave the parameter name.
func (in *input) has(name string) bool {
	_, ok := in.values[name]
	return ok
}

func (in *input) str(name string) string {
	s, _ := in.value(name).(string)
	return s
}

// strs are the values of a repeated parameter (nil when absent).
func (in *input) strs(name string) []string {
	s, _ := in.value(name).([]string)
	return s
}

func (in *input) flag(name string) bool {
	b, _ := in.value(name).(bool)
	return b
}

func (in *input) uint(name string) uint64 {
	n, _ := in.value(name).(uint64)
	return n
}

func (in *input) int(name string) int { return int(in.uint(name)) }

func (in *input) time(name string) time.Time {
	t, _ := in.value(name).(time.Time)
	return t
}

// bodyOf is the route's decoded body.
func bodyOf[T any](in *input) *T { return in.body.(*T) }

// parseParams validates the request's path, query and header parameters
// against the route's declaration, in that order: a path value that
// cannot be valid is 404; a query parameter the route does not declare,
// one given twice, one with a value its type refuses (the empty value
// included) or a required one missing is 400, and so is a refused
// header value.
func (rt *route) parseParams(c *fiber.Ctx) (map[string]any, error) {
	values := map[string]any{}
	for _, p := range rt.params {
		if p.in != inPath {
			continue
		}
		v, ok := p.typ.parse(c.Params(p.name))
		if !ok {
			return nil, &requestError{kind: kindNotFound, detail: p.typ.notFound}
		}
		values[p.name] = v
	}
	var err error
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		name := string(k)
		p, ok := rt.param(name)
		switch _, seen := values[name]; {
		case !ok || p.in != inQuery:
			err = invalidParam(name, "is not accepted by this endpoint")
		case p.repeated:
			pv, ok := p.typ.parse(string(v))
			s, _ := pv.(string)
			if !ok {
				err = invalidParam(name, p.typ.reason)
				return
			}
			list, _ := values[name].([]string)
			values[name] = append(list, s)
		case seen:
			err = invalidParam(name, "must be given at most once")
		default:
			values[name], ok = p.typ.parse(string(v))
			if !ok {
				err = invalidParam(name, p.typ.reason)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	for _, p := range rt.params {
		if _, given := values[p.name]; given || p.in == inPath {
			continue
		}
		if p.in == inHeader {
			h := c.Get(p.name)
			if h == "" {
				continue
			}
			v, ok := p.typ.parse(h)
			if !ok {
				return nil, &requestError{kind: kindBadRequest, detail: p.name + " " + p.typ.reason + ".",
					fields: []FieldProblem{{Field: p.name, Reason: p.typ.reason}}}
			}
			values[p.name] = v
			continue
		}
		if p.required {
			return nil, invalidParam(p.name, "is required")
		}
	}
	return values, nil
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

// validAPIKeyID: API key ids are 16 lower-case base32 characters.
func validAPIKeyID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if ch := id[i]; !(ch >= 'a' && ch <= 'z' || ch >= '2' && ch <= '7') {
			return false
		}
	}
	return true
}
