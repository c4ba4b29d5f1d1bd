package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Actor types.
const (
	ActorUser     = "user"
	ActorAPIKey   = "api_key"
	ActorOperator = "operator"
	ActorSystem   = "system"
)

// Outcomes.
const (
	OutcomeSuccess   = "success"
	OutcomeFailure   = "failure"
	OutcomeDenied    = "denied"
	OutcomeRequested = "requested" // written before a change that is not a transaction (membership)
)

// Limits of an entry's fields (bytes).
const (
	maxAction    = 64
	maxID        = 256
	maxRequestID = 128
	maxSource    = 64
	maxDetails   = 16
	maxDetailKey = 64
	maxDetailVal = 512
)

// Actor is who did it.
type Actor struct {
	Type string `json:"type"` // user, api_key, operator or system
	ID   string `json:"id"`   // pseudonymous: a user id, key id, "operator", "system"
}

// Entry is one audit record. Its canonical encoding (Encode) is the leaf
// of the chain's Merkle tree; its sequence number is its position in the
// chain (1-based), which the tree authenticates, so it is not part of the
// encoding.
type Entry struct {
	Time      time.Time         `json:"time"`
	Actor     Actor             `json:"actor"`
	Action    string            `json:"action"`     // such as "tenant.create"
	Target    string            `json:"target"`     // such as "tenant:acme", "subject:h:…"
	Outcome   string            `json:"outcome"`    // success, failure, denied, requested
	RequestID string            `json:"request_id"` // the API request id, or ""
	Source    string            `json:"source"`     // the client address, or ""
	Details   map[string]string `json:"details"`    // small, non-personal facts; sensitive values HMAC'd
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks the schema and limits.
func (e *Entry) Validate() error {
	if e.Time.IsZero() {
		return invalid("time is required")
	}
	switch e.Actor.Type {
	case ActorUser, ActorAPIKey, ActorOperator, ActorSystem:
	default:
		return invalid("actor type %q", e.Actor.Type)
	}
	if e.Actor.ID == "" || len(e.Actor.ID) > maxID {
		return invalid("actor id must be 1 to %d bytes", maxID)
	}
	if !name(e.Action, maxAction) {
		return invalid("action %q must be 1 to %d of a-z 0-9 . _ -", e.Action, maxAction)
	}
	if e.Target == "" || len(e.Target) > maxID {
		return invalid("target must be 1 to %d bytes", maxID)
	}
	switch e.Outcome {
	case OutcomeSuccess, OutcomeFailure, OutcomeDenied, OutcomeRequested:
	default:
		return invalid("outcome %q", e.Outcome)
	}
	if len(e.RequestID) > maxRequestID || len(e.Source) > maxSource {
		return invalid("request_id or source too long")
	}
	if len(e.Details) > maxDetails {
		return invalid("more than %d details", maxDetails)
	}
	for k, v := range e.Details {
		if !name(k, maxDetailKey) || len(v) > maxDetailVal {
			return invalid("detail %q", k)
		}
	}
	for _, s := range []string{e.Actor.ID, e.Target, e.RequestID, e.Source} {
		if !utf8.ValidString(s) {
			return invalid("a field is not UTF-8")
		}
	}
	for _, v := range e.Details {
		if !utf8.ValidString(v) {
			return invalid("a detail is not UTF-8")
		}
	}
	return nil
}

func name(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// timeLayout is the canonical time: UTC, exactly nine fractional digits.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Encode returns the canonical encoding of e (see the package doc): a
// JSON object with a fixed key order, no insignificant space, times in
// UTC with nine fractional digits, details sorted by key, and strings
// escaped by the package's own fixed rules. It validates e first.
func (e Entry) Encode() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"v":1,"time":"`...)
	b = e.Time.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","actor":{"type":`...)
	b = appendString(b, e.Actor.Type)
	b = append(b, `,"id":`...)
	b = appendString(b, e.Actor.ID)
	b = append(b, `},"action":`...)
	b = appendString(b, e.Action)
	b = append(b, `,"target":`...)
	b = appendString(b, e.Target)
	b = append(b, `,"outcome":`...)
	b = appendString(b, e.Outcome)
	b = append(b, `,"request_id":`...)
	b = appendString(b, e.RequestID)
	b = append(b, `,"source":`...)
	b = appendString(b, e.Source)
	b = append(b, `,"details":{`...)
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, e.Details[k])
	}
	return append(b, "}}"...), nil
}

// appendString writes s as a JSON string: '"' and '\' escaped with a
// backslash, the control characters U+0000 to U+001F as \u00xx (lower-case
// hex), everything else as its UTF-8 bytes.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// wire is the decoded shape of a canonical entry.
type wire struct {
	V int `json:"v"`
	Entry
	Time string `json:"time"`
}

// Decode parses a canonical entry. It accepts exactly what Encode
// produces: the bytes must re-encode to themselves.
func Decode(b []byte) (Entry, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Entry{}, invalid("not an entry: %v", err)
	}
	if w.V != 1 {
		return Entry{}, invalid("format version %d", w.V)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Entry{}, invalid("time %q", w.Time)
	}
	e := w.Entry
	e.Time = t
	again, err := e.Encode()
	if err != nil {
		return Entry{}, err
	}
	if !bytes.Equal(again, b) {
		return Entry{}, invalid("not in canonical form")
	}
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	return e, nil
}

// String is a one-line rendering for logs and the CLI.
func (e *Entry) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s:%s %s %s %s", e.Time.UTC().Format(time.RFC3339Nano), e.Actor.Type, e.Actor.ID, e.Action, e.Target, e.Outcome)
	return sb.String()
}
