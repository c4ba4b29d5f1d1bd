package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/node"
)

// BenchmarkMetricsScrape measures one scrape of a node (issue 14: < 10 ms)
// holding 50 tenants, each with an Owner key, a collection, records of a
// subject and an open data-subject request, after traffic on ~25 routes:
// GET /v1/sys/metrics with the operator token (authentication included)
// and the metrics listener's /metrics, each read to its end; and the
// registry's Gather alone.
func BenchmarkMetricsScrape(b *testing.B) {
	cfg, err := devConfigB()
	if err != nil {
		b.Fatal(err)
	}
	cfg.Metrics.ListenAddress = "127.0.0.1:0"
	cfg.RateLimit.Enabled = false
	n, err := node.Start(context.Background(), cfg, node.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	op := client.New(n.APIURL(), client.Options{Token: n.Token, Timeout: 10 * time.Second})
	for i := range 50 {
		tenant := fmt.Sprintf("tenant-%02d", i)
		if _, err := op.CreateTenant(ctx, client.NewTenant{ID: tenant, DisplayName: tenant}); err != nil {
			b.Fatal(err)
		}
		key, err := op.CreateAPIKey(ctx, tenant, client.NewAPIKey{Name: "owner", Role: "owner"})
		if err != nil {
			b.Fatal(err)
		}
		c := client.New(n.APIURL(), client.Options{Token: key.Token, Timeout: 10 * time.Second})
		if _, err := c.PutCollection(ctx, tenant, "guests", map[string]any{"fields": []map[string]any{{"name": "email", "type": "string", "classification": "pii"}}}); err != nil {
			b.Fatal(err)
		}
		for j := range 3 {
			id := fmt.Sprintf("r%d", j)
			if _, err := c.CreateRecord(ctx, tenant, "guests", map[string]any{"id": id, "subject": "s1", "fields": map[string]any{"email": "a@b.test"}}); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Record(ctx, tenant, "guests", id, false); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := c.CreateDSR(ctx, tenant, client.NewDSR{Kind: "access", Subject: "s1"}); err != nil {
			b.Fatal(err)
		}
	}
	if err := n.Metrics().PollOnce(ctx); err != nil {
		b.Fatal(err)
	}
	// The registry alone: what a scrape costs before HTTP and encoding.
	b.Run("gather", func(b *testing.B) {
		for b.Loop() {
			if _, err := n.Metrics().Registry().Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct{ name, url, token string }{
		{"api", n.APIURL() + "/v1/sys/metrics", n.Token},
		{"listener", "http://" + n.MetricsAddress() + "/metrics", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			size := 0
			for b.Loop() {
				_, body := fetchMetrics(b, c.url, c.token)
				size = len(body)
			}
			b.ReportMetric(float64(size), "bytes/scrape")
		})
	}
}
