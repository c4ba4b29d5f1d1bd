package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/custos/custos/appliance/config"
	"github.com/custos/custos/appliance/identity/password"
	"github.com/custos/custos/appliance/logging"
	"github.com/custos/custos/appliance/node"
	"github.com/custos/custos/appliance/notify"
	"github.com/spf13/cobra"
)

func newServerCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Custos node (--dev: a single local node, ready in a second)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			cfg, err := loadConfig(cmd, e)
			if err != nil {
				return err
			}
			if dump, _ := cmd.Flags().GetBool("config-dump"); dump {
				return config.Dump(e.stdout, cfg)
			}
			if e.get("GOGC") == "" {
				// The server allocates a lot of short-lived garbage per
				// request and holds little live heap (state lives in the
				// bbolt mmap, not the Go heap); fewer GC cycles bought
				// 20-30% write throughput in `make bench`. GOGC overrides.
				debug.SetGCPercent(400)
			}
			// Password hashing runs at most Concurrency hashes at once, each
			// on a thread of the lowest priority; one more Go processor per
			// hash lets the API's goroutines run beside them, and the kernel
			// then serves the API's threads first (appliance/identity/password,
			// "Bounded hashing").
			hasher, err := password.NewHasher(password.Options{})
			if err != nil {
				return err
			}
			runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + hasher.Concurrency())
			logger := newLogger(e, cfg)
			// Under systemd (Type=notify): readiness, status, watchdog.
			notifier, err := notify.FromEnviron(e.environ, os.Getpid())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			n, err := node.Start(ctx, cfg, node.Options{Logger: logger, Version: version, Hasher: hasher, Notifier: notifier})
			if err != nil {
				return err
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = n.WaitReady(rctx)
			cancel()
			if err != nil {
				logger.Warn("no leader yet; serving anyway", "error", err)
			}
			logger.Info("node ready", "startup", time.Since(start).String())
			if cfg.Dev {
				printDevBanner(e, n)
			}
			// SIGHUP re-reads the API's certificate files (they are also
			// re-read when they change); it no longer ends the process.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
		serve:
			for {
				select {
				case <-ctx.Done():
					logger.Info("shutting down")
					break serve
				case err := <-n.Done():
					logger.Error("api server stopped", "error", err)
					break serve
				case <-hup:
					if err := n.ReloadTLS(); err != nil {
						logger.Error("SIGHUP: api certificate not reloaded; still serving the previous one", "error", err)
					}
				}
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return n.Close(sctx)
		},
	}
	config.RegisterServerFlags(cmd.Flags())
	return cmd
}

func loadConfig(cmd *cobra.Command, e *env) (*config.Config, error) {
	file, _ := cmd.Flags().GetString("config")
	return config.Load(config.Options{File: file, Flags: cmd.Flags(), Environ: e.environ})
}

// newLogger is the node's one logger (package appliance/logging): the
// configuration's format and levels, on stderr.
func newLogger(e *env, cfg *config.Config) *slog.Logger {
	return logging.New(e.stderr, logging.Options{Level: cfg.Log.Level, Format: cfg.Log.Format, Levels: cfg.Log.Levels})
}

func printDevBanner(e *env, n *node.Node) {
	addr := n.APIURL()
	fmt.Fprintf(e.stdout, `
Custos dev node is ready (one node, data in a temporary directory).

  API:     %s
  Web UI:  %s/ui/  (sign in with the token)
  Token:   %s
  Region:  %s

Use the CLI from another shell:

  export CUSTOS_ADDR=%s
  export CUSTOS_TOKEN=%s
  custos status

`, addr, addr, n.Token, n.Store().Region(), addr, n.Token)
}
