package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/node"
	"github.com/custos/custos/internal/testkit"
)

// fetchMetrics GETs an exposition — the API's route with a token, or the
// metrics listener's /metrics without — and returns its Content-Type and
// body; anything but 200 fails tb.
func fetchMetrics(tb testing.TB, url, token string) (string, []byte) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return resp.Header.Get("Content-Type"), body
}

// scrape reads and parses an exposition (see fetchMetrics).
func scrape(t *testing.T, url, token string) map[string]*dto.MetricFamily {
	t.Helper()
	ct, body := fetchMetrics(t, url, token)
	if !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET %s: the exposition does not parse: %v", url, err)
	}
	return mfs
}

// documented reads the metrics table of docs/operations.md ("Metrics and
// alerts"): name → type.
func documented(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Metrics and alerts\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Metrics and alerts" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("^\\| `(custos_[a-z0-9_]+)` \\| (counter|gauge|histogram) \\|")
	out := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			if _, dup := out[m[1]]; dup {
				t.Errorf("docs/operations.md lists %s twice", m[1])
			}
			out[m[1]] = m[2]
		}
	}
	if len(out) == 0 {
		t.Fatal("docs/operations.md: no metrics table")
	}
	return out
}

// sum is a family's value summed over its series: a counter's or a
// gauge's value, a histogram's count.
func sum(mf *dto.MetricFamily) float64 {
	if mf == nil {
		return 0
	}
	total := 0.0
	for _, m := range mf.GetMetric() {
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

// workload drives a tenant through what the metrics count: records with
// subjects written and read, searches and listings by subject (read
// audit), a blob uploaded and downloaded, a data-subject request. It
// returns the subject ids and tokens it used, which no log may carry.
func workload(t *testing.T, ctx context.Context, op *client.Client, addr, tenant string) (secrets []string) {
	t.Helper()
	if _, err := op.CreateTenant(ctx, client.NewTenant{ID: tenant, DisplayName: "Metrics " + tenant}); err != nil {
		t.Fatalf("%s: %v", "CreateTenant", err)
	}
	key, err := op.CreateAPIKey(ctx, tenant, client.NewAPIKey{Name: "owner", Role: "owner"})
	if err != nil {
		t.Fatalf("%s: %v", "CreateAPIKey", err)
	}
	c := client.New(addr, client.Options{Token: key.Token, Timeout: 10 * time.Second})
	if _, err := c.PutCollection(ctx, tenant, "guests", map[string]any{"fields": []map[string]any{
		{"name": "email", "type": "string", "required": true, "classification": "pii", "index": true}}}); err != nil {
		t.Fatalf("%s: %v", "PutCollection", err)
	}
	subject := "subj-" + tenant + "-7f3a9c"
	email := "guest-" + tenant + "@example.test"
	secrets = append(secrets, key.Token, subject, email)
	for i := range 5 {
		id := fmt.Sprintf("rec-%s-%d", tenant, i)
		if _, err := c.CreateRecord(ctx, tenant, "guests", map[string]any{"id": id, "subject": subject, "fields": map[string]any{"email": email}}); err != nil {
			t.Fatalf("%s: %v", "CreateRecord", err)
		}
		if _, err := c.Record(ctx, tenant, "guests", id, false); err != nil {
			t.Fatalf("%s: %v", "Record", err)
		}
		secrets = append(secrets, id)
	}
	if _, err := c.FindRecords(ctx, tenant, "guests", "email", `"`+email+`"`, 10); err != nil {
		t.Fatalf("%s: %v", "FindRecords", err)
	}
	content := []byte(strings.Repeat("recording ", 1000))
	sum := sha256.Sum256(content)
	b, err := c.UploadBlob(ctx, tenant, client.BlobUpload{Body: bytes.NewReader(content), Size: int64(len(content)), ContentType: "audio/ogg", SHA256: sum[:], Subject: subject})
	if err != nil {
		t.Fatalf("%s: %v", "UploadBlob", err)
	}
	secrets = append(secrets, b.ID)
	if err := c.DownloadBlob(ctx, tenant, b.ID, io.Discard); err != nil {
		t.Fatalf("%s: %v", "DownloadBlob", err)
	}
	if _, err := c.Blobs(ctx, tenant, subject, 10, ""); err != nil {
		t.Fatalf("%s: %v", "Blobs", err)
	}
	if _, err := c.CreateDSR(ctx, tenant, client.NewDSR{Kind: "access", Subject: subject}); err != nil {
		t.Fatalf("%s: %v", "CreateDSR", err)
	}
	return secrets
}

// noMotion are the counters a healthy node under this load leaves at
// rest: they count failures, snapshots and sweeps.
var noMotion = []string{
	"custos_raft_snapshots_restored_total", "custos_keyring_unavailable_total",
	"custos_blob_upload_failures_total", "custos_blob_swept_total",
}

// Acceptance 5: a real node's exposition parses, holds exactly the
// documented metrics (the table of docs/operations.md), and its counters
// and histograms move under load — writes, reads, read audits, blobs,
// keys, a data-subject request, rate-limit refusals.
func TestMetricsUnderLoad(t *testing.T) {
	cfg := devConfig(t)
	cfg.Metrics.ListenAddress = "127.0.0.1:0"
	cfg.Metrics.PollInterval = time.Second
	// A source budget the workload fits in, refilled too slowly to
	// matter: the flood at the end is refused.
	cfg.RateLimit.PerSourceRate, cfg.RateLimit.PerSourceBurst = 0.01, 400
	n, err := node.Start(context.Background(), cfg, node.Options{Version: "test-1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	defer closeNode(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	api := n.APIURL() + "/v1/sys/metrics"
	listener := "http://" + n.MetricsAddress() + "/metrics"
	op := client.New(n.APIURL(), client.Options{Token: n.Token, Timeout: 10 * time.Second})

	workload(t, ctx, op, n.APIURL(), "acme")
	before := scrape(t, api, n.Token)
	workload(t, ctx, op, n.APIURL(), "globex") // a new tenant: root calls, cache misses
	// Flood until the source limit refuses.
	refused := false
	for range 400 {
		resp, err := http.Get(n.APIURL() + "/v1/sys/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("the source limit refused nothing")
	}
	// The poll tallies both tenants' requests (at most a second).
	var after map[string]*dto.MetricFamily
	testkit.Poll(t, 20*time.Second, "the data-subject request poll counts globex's request", func() error {
		after = scrape(t, listener, "")
		for _, m := range after["custos_dsr_open_requests"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == "globex" && m.GetGauge().GetValue() == 1 {
					return nil
				}
			}
		}
		return errors.New("custos_dsr_open_requests{tenant=\"globex\"} is not 1 yet")
	})

	docs := documented(t)
	exposed := map[string]string{}
	for name, mf := range after {
		if strings.HasPrefix(name, "custos_") {
			exposed[name] = strings.ToLower(mf.GetType().String())
		}
	}
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		switch got, ok := exposed[name]; {
		case !ok:
			t.Errorf("%s is documented but not exposed", name)
		case got != docs[name]:
			t.Errorf("%s is documented as a %s but exposed as a %s", name, docs[name], got)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(exposed)) {
		if _, ok := docs[name]; !ok {
			t.Errorf("%s is exposed but not documented in docs/operations.md", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if after[name] == nil {
			t.Errorf("%s: the runtime and process collectors are missing", name)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(docs)) {
		if docs[name] == "gauge" || slices.Contains(noMotion, name) {
			continue
		}
		if b, a := sum(before[name]), sum(after[name]); !(a > b) {
			t.Errorf("%s did not move under load: %v, then %v", name, b, a)
		}
	}
	for _, name := range []string{"custos_raft_commit_index", "custos_raft_applied_index", "custos_raft_last_log_index"} {
		if b, a := sum(before[name]), sum(after[name]); !(a > b) {
			t.Errorf("%s did not grow under load: %v, then %v", name, b, a)
		}
	}
	gauge := func(name string, labels ...string) float64 {
		for _, m := range after[name].GetMetric() {
			got := []string{}
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName()+"="+l.GetValue())
			}
			if slices.Equal(got, labels) {
				return m.GetGauge().GetValue()
			}
		}
		t.Errorf("%s%v: no such series", name, labels)
		return -1
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"custos_raft_state", []string{"state=leader"}, 1},
		{"custos_raft_has_leader", nil, 1},
		{"custos_raft_voters", nil, 1},
		{"custos_keyring_sealed", nil, 0},
		{"custos_keyring_unavailable_tenants", nil, 0},
		{"custos_audit_selfcheck_ok", nil, 1},
		{"custos_build_info", []string{"version=test-1.2.3"}, 1},
		{"custos_dsr_open_requests", []string{"tenant=acme"}, 1},
		{"custos_dsr_overdue_requests", []string{"tenant=acme"}, 0},
	} {
		if got := gauge(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := gauge("custos_backup_age_seconds"); got <= 1e300 {
		t.Errorf("custos_backup_age_seconds = %v with no backup, want +Inf", got)
	}
	// HTTP series are labelled by route template, never by path.
	routes := map[string]bool{}
	for _, m := range after["custos_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" {
				routes[l.GetValue()] = true
			}
		}
	}
	for _, want := range []string{"/v1/tenants/:id/collections/:name/records/:rid", "/v1/sys/metrics", "/v1/tenants/:id/blobs"} {
		if !routes[want] {
			t.Errorf("no custos_http_requests_total series of route %s (have %v)", want, slices.Sorted(maps.Keys(routes)))
		}
	}
	for r := range routes {
		if strings.Contains(r, "rec-") || strings.Contains(r, "subj-") || strings.Contains(r, "acme") {
			t.Errorf("a route label carries a path: %s", r)
		}
	}
}

// The Grafana dashboard queries only documented metrics.
func TestDashboardQueriesDocumentedMetrics(t *testing.T) {
	b, err := os.ReadFile("../../packaging/grafana/custos-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	docs := documented(t)
	name := regexp.MustCompile(`custos_[a-z0-9_]+`)
	queried := map[string]bool{}
	check := func(where, expr string) {
		for _, m := range name.FindAllString(expr, -1) {
			base := m
			if docs[m] == "" {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suffix); ok && docs[b] == "histogram" {
						base = b
					}
				}
			}
			if docs[base] == "" {
				t.Errorf("%s queries %s, which docs/operations.md does not list", where, m)
			}
			queried[base] = true
		}
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		check("variable", v.Definition)
	}
	if len(queried) < 20 {
		t.Errorf("the dashboard queries only %d metrics", len(queried))
	}
}
