package ui

import (
	"reflect"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/client"
)

func TestParseMappings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []client.SSOMapping
		err  string
	}{
		{in: "", want: nil},
		{in: "groups = owners -> owner", want: []client.SSOMapping{{Claim: "groups", Value: "owners", Role: "owner"}}},
		{in: " groups=desk->concierge; property: villa-a, villa-b ; team: spa\r\n\nhd = villas.example -> read-only",
			want: []client.SSOMapping{
				{Claim: "groups", Value: "desk", Role: "concierge", Scopes: map[string][]string{"property": {"villa-a", "villa-b"}, "team": {"spa"}}},
				{Claim: "hd", Value: "villas.example", Role: "read-only"}}},
		{in: "groups desk concierge", err: "line 1: write claim = value -> role"},
		{in: "groups = -> owner", err: "write claim"},
		{in: "= x -> owner", err: "write claim"},
		{in: "a = b ->", err: "write claim"},
		{in: "a = b -> c; property", err: "line 1: scopes, line 1: write attribute"},
		{in: strings.Repeat("a = b -> c\n", maxMappingLines+1), err: "lines"},
		{in: strings.Repeat("x", maxMappingText+1), err: "characters"},
	} {
		got, err := parseMappings(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
		if again, err := parseMappings(formatMappings(got)); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%q: formatted and read again: %+v %v", tc.in, again, err)
		}
	}
}

// FuzzParseMappings: whatever is typed, parseMappings refuses it or
// returns mappings with a claim, value and role, which formatMappings
// writes back as text that reads the same.
func FuzzParseMappings(f *testing.F) {
	for _, s := range []string{"", "groups = a -> owner", "a=b->c;d:e,f;g=h", "a = b -> c -> d", "=->;", "a=b->c;;", "\x00=\xff->x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseMappings(s)
		if err != nil {
			return
		}
		for _, m := range got {
			if m.Claim == "" || m.Value == "" || m.Role == "" {
				t.Fatalf("%q: an empty part in %+v", s, m)
			}
		}
		again, err := parseMappings(formatMappings(got))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("%q: %+v formatted and read again: %+v %v", s, got, again, err)
		}
	})
}
