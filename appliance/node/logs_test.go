package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/logging"
	"github.com/custos/custos/appliance/node"
)

// logWorkload runs a node logging in format at debug — raft included —
// through the metrics workload and a few refusals that name a subject or
// carry a token, and returns its log and the strings no line may carry.
func logWorkload(t *testing.T, format string) (string, []string) {
	t.Helper()
	logs := &logBuffer{}
	cfg := devConfig(t)
	cfg.DevToken = "dev-operator-token-0b7c2e61d9a4"
	logger := logging.New(logs, logging.Options{Level: "debug", Format: format, Levels: map[string]string{"raft": "debug"}})
	n, err := node.Start(context.Background(), cfg, node.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	op := client.New(n.APIURL(), client.Options{Token: n.Token, Timeout: 10 * time.Second})
	secrets := append([]string{n.Token}, workload(t, ctx, op, n.APIURL(), "acme")...)
	// Refusals: a wrong token, a path naming an unknown subject's record,
	// an unmatched path carrying a subject id.
	const (
		badToken = "ck_forged0000_9d8e7f6a5b4c3d2e1f00"
		ghost    = "subj-ghost-3e8a1f"
	)
	secrets = append(secrets, badToken, ghost)
	for _, r := range []struct{ path, token string }{
		{"/v1/tenants/acme/collections/guests/records/" + ghost, n.Token},
		{"/v1/tenants/acme/collections/guests/records/" + ghost, badToken},
		{"/v1/no-such-route/" + ghost, ""},
	} {
		req, _ := http.NewRequest(http.MethodGet, n.APIURL()+r.path, nil)
		if r.token != "" {
			req.Header.Set("Authorization", "Bearer "+r.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("GET %s: %d, want a refusal", r.path, resp.StatusCode)
		}
	}
	closeNode(t, n)
	return logs.String(), secrets
}

// The node's log is one format — every line, raft's included — and
// never carries a token, a subject id, a record or blob id or a field
// value, whatever the workload sends through it.
func TestLogsOneFormatNoSecrets(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			out, secrets := logWorkload(t, format)
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if len(lines) < 20 {
				t.Fatalf("only %d log lines:\n%s", len(lines), out)
			}
			components := map[string]bool{}
			requestLines := 0
			for i, line := range lines {
				switch format {
				case "json":
					var rec map[string]any
					if err := json.Unmarshal([]byte(line), &rec); err != nil {
						t.Fatalf("line %d is not one JSON object: %v\n%s", i+1, err, line)
					}
					for _, k := range []string{"time", "level", "msg"} {
						if _, ok := rec[k]; !ok {
							t.Errorf("line %d has no %q: %s", i+1, k, line)
						}
					}
					if c, ok := rec["component"].(string); ok {
						components[c] = true
					}
					if rec["msg"] == "http request" {
						requestLines++
						if _, ok := rec["route"]; !ok {
							t.Errorf("line %d: a request line without its route: %s", i+1, line)
						}
						if _, ok := rec["path"]; ok {
							t.Errorf("line %d: a request line with its path: %s", i+1, line)
						}
					}
				case "text":
					if !strings.HasPrefix(line, "time=") || !strings.Contains(line, " level=") || !strings.Contains(line, " msg=") {
						t.Fatalf("line %d is not one slog text record:\n%s", i+1, line)
					}
					if strings.Contains(line, "component=raft") {
						components["raft"] = true
					}
					if strings.Contains(line, `msg="http request"`) {
						requestLines++
					}
				}
				for _, s := range secrets {
					if strings.Contains(line, s) {
						t.Errorf("line %d carries %q: %s", i+1, s, line)
					}
				}
			}
			if !components["raft"] {
				t.Error("no line of raft's: its log does not reach the node's logger")
			}
			if requestLines < 10 {
				t.Errorf("only %d request lines", requestLines)
			}
		})
	}
}
