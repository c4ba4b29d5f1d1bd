package ui

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
)

// The operations pages' internals: their parsers (the API key form's
// scopes, the node's metrics exposition, the system chain's checkpoint;
// each fuzzed) and what the cluster and keys pages make of the API's
// answers in states a one-node test cannot reach (a follower failing, a
// rewrap running).

func TestParseScopes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string][]string
		err  string
	}{
		{in: "", want: nil},
		{in: " \n\n ", want: nil},
		{in: "villa: villa-a, villa-b", want: map[string][]string{"villa": {"villa-a", "villa-b"}}},
		{in: "villa=villa-a\r\nteam: spa\nvilla: villa-c", want: map[string][]string{"villa": {"villa-a", "villa-c"}, "team": {"spa"}}},
		{in: "villa", err: "write attribute"},
		{in: ": a", err: "name is missing"},
		{in: "villa: , ,", err: "has no value"},
		{in: strings.Repeat("a: b\n", maxScopeLines+1), err: "lines"},
		{in: "a: " + strings.Repeat("x,", maxScopeValues+1), err: "more than"},
		{in: strings.Repeat("x", maxScopeText+1), err: "characters"},
	} {
		got, err := parseScopes(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !maps.EqualFunc(got, tc.want, slices.Equal) || (got == nil) != (tc.want == nil) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{"", "villa: a, b", "a=b\nc:d,e", ":", "a:,", "\x00:\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseScopes(s)
		if err != nil {
			return
		}
		for k, vs := range got {
			if k == "" || len(vs) == 0 || len(vs) > maxScopeValues || strings.ContainsAny(k, ":=\n") {
				t.Fatalf("%q: bad scope %q: %v", s, k, vs)
			}
			for _, v := range vs {
				if v == "" || strings.ContainsAny(v, ",\n") {
					t.Fatalf("%q: bad value %q", s, v)
				}
			}
		}
	})
}

const sampleMetrics = `# HELP custos_raft_voters Voting members.
# TYPE custos_raft_voters gauge
custos_raft_voters 3
# TYPE custos_keyring_sealed gauge
custos_keyring_sealed 0
# TYPE custos_keyring_cache_hits_total counter
custos_keyring_cache_hits_total 9
# TYPE custos_keyring_cache_misses_total counter
custos_keyring_cache_misses_total 1
# TYPE custos_backup_age_seconds gauge
custos_backup_age_seconds +Inf
# TYPE custos_http_requests_total counter
custos_http_requests_total{code="200",method="GET",route="/v1/sys/status"} 10
custos_http_requests_total{code="503",method="GET",route="/v1/sys/health"} 2
# TYPE custos_raft_apply_duration_seconds histogram
custos_raft_apply_duration_seconds_bucket{le="0.01"} 4
custos_raft_apply_duration_seconds_bucket{le="+Inf"} 4
custos_raft_apply_duration_seconds_sum 0.02
custos_raft_apply_duration_seconds_count 4
`

func TestMetricFigures(t *testing.T) {
	m, err := parseMetrics(sampleMetrics)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]figure{}
	for _, f := range m.figures() {
		got[f.Label] = f
	}
	for label, want := range map[string]figure{
		"Voters":                {Value: "3"},
		"Seal":                  {Value: "unsealed", State: "ok"},
		"Key cache hits":        {Value: "90.0%"},
		"Last scheduled backup": {Value: "never", State: "warn"},
		"API requests":          {Value: "12"},
		"Server errors (5xx)":   {Value: "2", State: "warn"},
		"Raft apply (mean)":     {Value: "5.0 ms"},
	} {
		if g := got[label]; g.Value != want.Value || g.State != want.State {
			t.Errorf("%s: %+v, want %+v", label, g, want)
		}
	}
	if _, ok := got["Open data-subject requests"]; ok {
		t.Error("a figure the exposition does not have is shown")
	}
	if _, err := parseMetrics("custos_x{"); err == nil {
		t.Error("broken exposition parsed")
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add(sampleMetrics)
	f.Add("custos_raft_voters NaN\n")
	f.Add("# TYPE a histogram\na_sum 1\na_count 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMetrics(s)
		if err != nil {
			return
		}
		for _, fg := range m.figures() {
			if fg.Label == "" || fg.Value == "" {
				t.Fatalf("%q: empty figure %+v", s, fg)
			}
		}
	})
}

func TestAgeOf(t *testing.T) {
	for sec, want := range map[float64]string{0: "0s", 59: "59s", 61: "1m", 3700: "1h 1m", 3 * 86400: "3d", -1: "never", 1e300: "never"} {
		if got := ageOf(sec); got != want {
			t.Errorf("ageOf(%v) = %q, want %q", sec, got, want)
		}
	}
}

func FuzzCheckpointSize(f *testing.F) {
	f.Add([]byte("custos-audit-local-00000000+1234abcd+AQID"), []byte("origin\n3\nroot\n\n— sig\n"))
	f.Fuzz(func(t *testing.T, key, msg []byte) {
		_, _ = checkpointSize(key, msg) // must not panic
	})
}

// The node table of a leader's page with a follower failing, and of a
// follower's page (what a node knows of the others).
func TestNodeRows(t *testing.T) {
	now := time.Unix(1700000000, 0)
	st := client.Status{NodeID: "n1", Region: "eu", Peers: []client.Peer{
		{ID: "n3", Voter: true, Heartbeat: "failing", LastContact: now.Add(-90 * time.Second)},
		{ID: "n1", Voter: true, Leader: true},
		{ID: "n2", Voter: true, Heartbeat: "ok"},
		{ID: "n4", Heartbeat: "failing"},
	}}
	rows := nodeRows(st, "ok", false, nil, now)
	got := make([]string, len(rows))
	for i, r := range rows {
		got[i] = strings.Join([]string{r.ID, r.Health, r.Seal, r.Heartbeat, r.Answered}, "|")
	}
	want := []string{"n1|ok|unsealed||", "n2|||ok|never", "n3|||failing|1m ago", "n4|||failing|never"}
	if !slices.Equal(got, want) {
		t.Fatalf("leader's rows:\n%q\nwant\n%q", got, want)
	}
	var b strings.Builder
	d := clusterData{Status: st, Nodes: rows, Health: "ok"}
	if err := mustTemplates().byName["cluster"].ExecuteTemplate(&b, "layout.html", &page{Title: "Cluster", Data: d}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"unreachable", "last answered 1m ago", "reachable"} {
		if !strings.Contains(b.String(), w) {
			t.Fatalf("the page lacks %q", w)
		}
	}

	m, _ := parseMetrics("custos_raft_last_contact_seconds 2\n")
	st = client.Status{NodeID: "n2", Peers: []client.Peer{{ID: "n1", Leader: true}, {ID: "n2"}, {ID: "n3"}}}
	rows = nodeRows(st, "sealed", true, m, now)
	if rows[0].Contact != "2s" || rows[1].Seal != "sealed" || rows[1].Health != "sealed" || rows[2].Contact != "" || rows[2].Health != "" {
		t.Fatalf("follower's rows: %+v", rows)
	}
}

// A rewrap in progress: the share done, the KEK rows newest first, and
// the page's progress panel.
func TestRewrapProgress(t *testing.T) {
	st := client.KeyStatus{CurrentKEK: 3, KEKs: []uint32{1, 2, 3}, DataKeys: 8, Pending: 6, Rewrapping: true,
		ByKEK: map[string]int{"1": 4, "2": 2, "3": 2}, Provider: client.ProviderInfo{Kind: "age"}}
	if got := rewrapDone(st); got != 25 {
		t.Fatalf("done: %d", got)
	}
	for _, tc := range []struct{ keys, pending, want int }{{0, 0, 100}, {5, 0, 100}, {5, 9, 0}, {3, 1, 66}} {
		if got := rewrapDone(client.KeyStatus{DataKeys: tc.keys, Pending: tc.pending}); got != tc.want {
			t.Errorf("%d keys, %d pending: %d, want %d", tc.keys, tc.pending, got, tc.want)
		}
	}
	rows := kekRows(st)
	if len(rows) != 3 || rows[0] != (kekRow{Version: 3, DataKeys: 2, Current: true}) || rows[2] != (kekRow{Version: 1, DataKeys: 4}) {
		t.Fatalf("rows: %+v", rows)
	}
	var b strings.Builder
	d := keysData{Status: st, KEKs: rows, Done: rewrapDone(st)}
	if err := mustTemplates().byName["keys"].ExecuteTemplate(&b, "layout.html", &page{Title: "Keys", Data: d}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Rewrap progress: 25%", "6 of 8 still to rewrap", `<progress max="100" value="25">`, "running"} {
		if !strings.Contains(b.String(), w) {
			t.Fatalf("the keys page lacks %q", w)
		}
	}
}
