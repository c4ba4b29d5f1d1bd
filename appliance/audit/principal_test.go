package audit

import (
	"strings"
	"testing"
	"time"
)

// TestPrincipalReason: a principal's reason is every entry's "reason"
// detail, next to the action's own details (which stay unchanged), and an
// entry carrying the longest reason allowed is valid.
func TestPrincipalReason(t *testing.T) {
	at := time.Date(2026, 12, 3, 21, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		reason  string
		details map[string]string
		want    map[string]string
	}{
		{name: "no reason", details: map[string]string{"masked": "true"}, want: map[string]string{"masked": "true"}},
		{name: "no reason, no details", want: nil},
		{name: "reason", reason: "guest called about a booking", details: map[string]string{"masked": "false"},
			want: map[string]string{"masked": "false", "reason": "guest called about a booking"}},
		{name: "reason, no details", reason: "audit", want: map[string]string{"reason": "audit"}},
		{name: "longest reason", reason: strings.Repeat("é", MaxReason/2), want: map[string]string{"reason": strings.Repeat("é", MaxReason/2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Principal{Kind: ActorOperator, ID: "operator", Reason: tc.reason}
			given := map[string]string{}
			for k, v := range tc.details {
				given[k] = v
			}
			e := p.Entry(at, "record.read", "record:guests/g1", OutcomeSuccess, tc.details)
			if len(e.Details) != len(tc.want) {
				t.Fatalf("details %v, want %v", e.Details, tc.want)
			}
			for k, v := range tc.want {
				if e.Details[k] != v {
					t.Fatalf("details %v, want %v", e.Details, tc.want)
				}
			}
			if len(tc.details) != len(given) || (tc.details != nil && tc.details["reason"] != given["reason"]) {
				t.Fatalf("the caller's details changed: %v", tc.details)
			}
			if _, err := e.Encode(); err != nil {
				t.Fatalf("encode: %v", err)
			}
		})
	}
}
