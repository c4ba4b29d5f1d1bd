package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startMetricsListener serves the node's metrics at /metrics on
// [metrics] listen_address, without authentication (the configuration
// holds it to a loopback address), until the node closes.
func (n *Node) startMetricsListener() error {
	addr := n.cfg.Metrics.ListenAddress
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("node: metrics listen %s: %w", addr, err)
	}
	n.metricLn = ln
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.Registry(), promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slogPrinter{n},
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	n.work.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.logger.Error("metrics listener stopped", "component", "metrics", "error", err)
		}
	})
	n.background(func(ctx context.Context) {
		<-ctx.Done()
		_ = srv.Close()
	})
	n.logger.Info("metrics listening", "component", "metrics", "address", ln.Addr().String())
	return nil
}

// slogPrinter is promhttp's error log onto the node's logger.
type slogPrinter struct{ n *Node }

func (p slogPrinter) Println(v ...any) {
	p.n.logger.Warn("metrics: collection failed", "component", "metrics", "error", fmt.Sprint(v...))
}
