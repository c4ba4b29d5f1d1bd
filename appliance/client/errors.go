package client

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ProblemTypeBase prefixes every problem slug to form its type URI.
const ProblemTypeBase = "https://custos.dev/problems/"

// Problem is an RFC 9457 problem details object: the body of every error
// answer of the API.
type Problem struct {
	Type      string         `json:"type"`
	Title     string         `json:"title"`
	Status    int            `json:"status"`
	Detail    string         `json:"detail"`
	Instance  string         `json:"instance"`
	RequestID string         `json:"request_id"`
	Errors    []FieldProblem `json:"errors,omitempty"`
}

// FieldProblem names one invalid field (of the body, or a query parameter)
// and why it is invalid.
type FieldProblem struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Slug is the stable last part of the problem's type ("not-found").
func (p *Problem) Slug() string { return strings.TrimPrefix(p.Type, ProblemTypeBase) }

// Error is an answer outside 2xx.
type Error struct {
	// Method and Path are the request's.
	Method, Path string
	// Status is the HTTP status.
	Status int
	// Problem is what the server said, or nil when the body was not a
	// problem (a proxy's page, say).
	Problem *Problem
}

// Error is one line: the problem's title, status and detail, or the
// request and the status when there was no problem.
func (e *Error) Error() string {
	if p := e.Problem; p != nil {
		if p.Detail != "" {
			return fmt.Sprintf("%s (%d): %s", p.Title, e.Status, p.Detail)
		}
		return fmt.Sprintf("%s (%d)", p.Title, e.Status)
	}
	return fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Path, e.Status)
}

// answerError is the *Error of an answer with status outside 2xx.
func answerError(method, path string, status int, body []byte) *Error {
	e := &Error{Method: method, Path: path, Status: status}
	var p Problem
	if json.Unmarshal(body, &p) == nil && p.Title != "" {
		e.Problem = &p
	}
	return e
}
