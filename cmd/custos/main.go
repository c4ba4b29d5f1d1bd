// Command custos is the Custos appliance: `custos server` runs a node, and
// the other commands are the operator CLI that talks to a node's API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	// The time-zone database inside the binary: tenants' deadlines are
	// counted in their own zones (appliance/privacy/deadline), and an
	// appliance installed air-gapped or in a minimal image may have no
	// /usr/share/zoneinfo. The host's database is still preferred when
	// present; this is the fallback (about 450 KB).
	_ "time/tzdata"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(os.Stdout, os.Stderr, os.Environ()).ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
