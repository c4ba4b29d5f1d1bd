package api

import (
	"fmt"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/common/expfmt"
)

// metricsFormat is the one exposition format served: Prometheus text
// 0.0.4, which every scraper reads (the protobuf and OpenMetrics
// negotiation of promhttp buys nothing here).
var metricsFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// metrics serves the node's metrics. A collector that failed (say, the
// audit checkpoint lag when the state cannot be read) is left out and
// the rest served, as promhttp's ContinueOnError does: a scrape that
// fails whole hides every other figure when they matter most.
func (s *server) metrics(c *fiber.Ctx, _ *input) error {
	mfs, err := s.deps.Metrics.Gather()
	if err != nil {
		s.log.Warn("metrics: some collectors failed", "request_id", requestID(c), "error", err)
	}
	c.Set(fiber.HeaderContentType, string(metricsFormat))
	enc := expfmt.NewEncoder(c.Response().BodyWriter(), metricsFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fmt.Errorf("api: encode metrics: %w", err)
		}
	}
	return nil
}
