package ui

import (
	"fmt"
	"io"
	"math"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The cluster page's "metrics at a glance" are a handful of this node's
// figures read from its own /v1/sys/metrics (Prometheus text, parsed
// with prometheus/common's parser, already the API's dependency): the
// same numbers a scraper sees, without a second source of truth.

// maxMetrics bounds the exposition the page reads (a node's is tens of
// kilobytes; labels per route and status grow it slowly).
const maxMetrics = 4 << 20

// limitedWriter writes at most n bytes to w and fails after.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("ui: metrics larger than %d bytes", maxMetrics)
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// metricSet is a parsed exposition: the families by name.
type metricSet map[string]*dto.MetricFamily

// parseMetrics parses Prometheus text exposition.
func parseMetrics(text string) (metricSet, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("ui: parse metrics: %w", err)
	}
	return metricSet(mfs), nil
}

func (m metricSet) has(name string) bool { return m[name] != nil && len(m[name].GetMetric()) > 0 }

// value is the sum of a family's samples (gauges, counters, untyped),
// 0 when absent.
func (m metricSet) value(name string) float64 {
	return m.sum(name, func(*dto.Metric) bool { return true })
}

// sum adds the samples of name that keep selects.
func (m metricSet) sum(name string, keep func(*dto.Metric) bool) float64 {
	mf := m[name]
	if mf == nil {
		return 0
	}
	var s float64
	for _, mt := range mf.GetMetric() {
		if !keep(mt) {
			continue
		}
		switch {
		case mt.Gauge != nil:
			s += mt.GetGauge().GetValue()
		case mt.Counter != nil:
			s += mt.GetCounter().GetValue()
		case mt.Untyped != nil:
			s += mt.GetUntyped().GetValue()
		}
	}
	return s
}

// mean is a histogram's mean observation (NaN with none).
func (m metricSet) mean(name string) float64 {
	mf := m[name]
	if mf == nil {
		return math.NaN()
	}
	var sum float64
	var n uint64
	for _, mt := range mf.GetMetric() {
		if h := mt.GetHistogram(); h != nil {
			sum += h.GetSampleSum()
			n += h.GetSampleCount()
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// labelPrefix selects samples whose label name starts with prefix.
func labelPrefix(name, prefix string) func(*dto.Metric) bool {
	return func(mt *dto.Metric) bool {
		for _, l := range mt.GetLabel() {
			if l.GetName() == name {
				return strings.HasPrefix(l.GetValue(), prefix)
			}
		}
		return false
	}
}

// figure is one number at a glance; State is "ok", "warn", "bad" or ""
// (shown as a word beside the value, never colour alone).
type figure struct {
	Label, Value, State string
}

// figures are the page's key figures of the node, those its metrics
// have.
func (m metricSet) figures() []figure {
	var out []figure
	add := func(name, label string, value func(v float64) (string, string)) {
		if m.has(name) {
			s, st := value(m.value(name))
			out = append(out, figure{Label: label, Value: s, State: st})
		}
	}
	count := func(v float64) (string, string) { return fmt.Sprintf("%.0f", v), "" }
	badIfAny := func(v float64) (string, string) {
		if v > 0 {
			return fmt.Sprintf("%.0f", v), "bad"
		}
		return "0", "ok"
	}
	add("custos_raft_voters", "Voters", count)
	add("custos_raft_has_leader", "Leader known", func(v float64) (string, string) {
		if v == 1 {
			return "yes", "ok"
		}
		return "no", "bad"
	})
	add("custos_keyring_sealed", "Seal", func(v float64) (string, string) {
		if v == 1 {
			return "sealed", "bad"
		}
		return "unsealed", "ok"
	})
	add("custos_keyring_cached_keys", "Keys in memory", count)
	if m.has("custos_keyring_cache_hits_total") {
		hits, misses := m.value("custos_keyring_cache_hits_total"), m.value("custos_keyring_cache_misses_total")
		v := "—"
		if hits+misses > 0 {
			v = fmt.Sprintf("%.1f%%", 100*hits/(hits+misses))
		}
		out = append(out, figure{Label: "Key cache hits", Value: v})
	}
	add("custos_keyring_unavailable_tenants", "Tenants with keys unavailable", badIfAny)
	add("custos_audit_selfcheck_ok", "Audit self-check", func(v float64) (string, string) {
		if v == 1 {
			return "passed", "ok"
		}
		return "failed or not run", "warn"
	})
	add("custos_audit_checkpoint_age_seconds", "Audit checkpoint lag", func(v float64) (string, string) {
		if v > 300 {
			return ageOf(v), "warn"
		}
		return ageOf(v), ""
	})
	add("custos_backup_age_seconds", "Last scheduled backup", func(v float64) (string, string) {
		if math.IsInf(v, 1) {
			return "never", "warn"
		}
		return ageOf(v) + " ago", ""
	})
	add("custos_bbolt_size_bytes", "State file", func(v float64) (string, string) { return humanBytes(int64(v)), "" })
	if m.has("custos_http_requests_total") {
		all := m.value("custos_http_requests_total")
		errs := m.sum("custos_http_requests_total", labelPrefix("code", "5"))
		st := "ok"
		if errs > 0 {
			st = "warn"
		}
		out = append(out, figure{Label: "API requests", Value: fmt.Sprintf("%.0f", all)},
			figure{Label: "Server errors (5xx)", Value: fmt.Sprintf("%.0f", errs), State: st})
	}
	if mean := m.mean("custos_raft_apply_duration_seconds"); !math.IsNaN(mean) {
		out = append(out, figure{Label: "Raft apply (mean)", Value: fmt.Sprintf("%.1f ms", mean*1000)})
	}
	add("custos_ratelimit_rejections_total", "Rate-limited requests", count)
	add("custos_dsr_open_requests", "Open data-subject requests", count)
	add("custos_dsr_overdue_requests", "Overdue data-subject requests", badIfAny)
	return out
}
