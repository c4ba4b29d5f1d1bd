package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/custos/custos/appliance/notify"
)

// Supervision: what the node tells systemd (a Type=notify unit, package
// appliance/notify) and when.
//
//   - READY=1 once the API answers an HTTP request on its listener and a
//     leader is known — or, without a leader, after readyWait, as the
//     server then serves anyway (a node restarted while the rest of the
//     cluster is down must not fail its start: it waits for its peers).
//   - STATUS= the raft state (leader or follower, the term, the leader's
//     id), sent whenever it changes, and why the last check failed.
//   - WATCHDOG=1 after every passing check, every WatchdogSec/3.
//   - STOPPING=1 when Close begins, before the API drains.
//
// The check (Node.Check) is what "the node really works" means here: the
// API listener accepts a new connection and answers an HTTP request, and
// the store completes a linearizable read — a read index confirmed by a
// quorum (from the leader when this node follows) and applied locally.
// A node is wedged when that fails for longer than WatchdogSec: its HTTP
// server no longer accepts, its raft loop or its state machine is stuck
// (a full or frozen disk stalls the apply), or it has lost the quorum
// (its peers are down or cut off). Pings then stop and systemd restarts
// it (Restart=on-failure): harmless for a node cut off from its peers —
// it starts again and waits for them — and the cure for a stuck one. A
// SIGSTOPped process is not wedged in this sense: it sends nothing at all,
// and systemd's timer alone notices.
const (
	readyWait      = 30 * time.Second
	readyPoll      = 100 * time.Millisecond
	statusInterval = 5 * time.Second // without a watchdog, how often STATUS is refreshed
)

// supervise notifies systemd of readiness, state and liveness until ctx
// ends. It runs only when the node has a Notifier.
func (n *Node) supervise(ctx context.Context) {
	nt := n.notifier
	send := func(lines ...string) {
		if err := nt.Send(lines...); err != nil {
			n.logger.Warn("systemd notification failed", "error", err)
		}
	}
	send(notify.Status("starting: API listening on " + n.APIAddress() + ", waiting for a leader"))
	if !n.waitServing(ctx) {
		return
	}
	status := n.raftStatus()
	send(notify.Ready, notify.Status(status))
	n.logger.Info("systemd notified: ready", "status", status)

	every := nt.WatchdogInterval()
	if every == 0 {
		every = statusInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var failing string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.closing.Load() {
			return // Close has sent STOPPING=1; the API is draining
		}
		cctx, cancel := context.WithTimeout(ctx, every)
		err := n.Check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		next := n.raftStatus()
		switch {
		case err != nil:
			next = "unhealthy: " + err.Error() + "; " + next
			if failing == "" {
				n.logger.Warn("health check failed: no watchdog ping", "error", err)
			}
			failing = err.Error()
		case failing != "":
			n.logger.Info("health check passes again")
			failing = ""
		}
		var lines []string
		if err == nil && nt.WatchdogInterval() > 0 {
			lines = append(lines, notify.Watchdog)
		}
		if next != status {
			lines, status = append(lines, notify.Status(next)), next
		}
		send(lines...)
	}
}

// waitServing waits until the API answers and a leader is known (or
// readyWait has passed); false when ctx ended first.
func (n *Node) waitServing(ctx context.Context) bool {
	deadline := time.Now().Add(readyWait)
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := n.probeAPI(pctx)
		cancel()
		if err == nil && (n.store.Status().LeaderID != "" || time.Now().After(deadline)) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// raftStatus is the STATUS= text of the node's raft state.
func (n *Node) raftStatus() string {
	st := n.store.Status()
	if st.LeaderID == "" {
		return fmt.Sprintf("raft %s, term %d, no leader known", st.State, st.Term)
	}
	return fmt.Sprintf("raft %s, term %d, leader %s", st.State, st.Term, st.LeaderID)
}

// Check reports whether the node really works: its API answers on its
// listener and its store completes a linearizable read (see
// "Supervision" above for what a failure means).
func (n *Node) Check(ctx context.Context) error {
	if err := n.probeAPI(ctx); err != nil {
		return err
	}
	if err := n.store.Barrier(ctx); err != nil {
		return fmt.Errorf("node: store: linearizable read: %w", err)
	}
	return nil
}

// probeAPI sends GET /v1/sys/health over a new connection to the API's
// listener, over TLS when the API serves it; any HTTP answer will do (a
// sealed node or one without a leader answers 503, and still serves).
func (n *Node) probeAPI(ctx context.Context) error {
	scheme := "https://"
	if n.certs == nil {
		scheme = "http://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+probeAddress(n.ln.Addr())+"/v1/sys/health", nil)
	if err != nil {
		return fmt.Errorf("node: api probe: %w", err)
	}
	resp, err := n.probe.Do(req)
	if err != nil {
		return fmt.Errorf("node: api does not answer: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.Body.Close()
}

// newProbeClient is the client of the API probe: a new connection each
// time (a kept-alive one would be served even when the server no longer
// accepts), no proxy from the environment. It does not verify the
// server's certificate: it dials this process's own listener on a
// loopback address the certificate need not name (an operator's own
// certificate), sends no credential and reads nothing but the fact of an
// answer — a completed handshake and an HTTP response.
func newProbeClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
	}}
}

// probeAddress is where to reach a listener: its own address, with an
// unspecified host (0.0.0.0, ::) replaced by the loopback address.
func probeAddress(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	ip := net.IPv4(127, 0, 0, 1)
	if ta.IP.To4() == nil {
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(ta.Port))
}

// notifyStopping tells systemd the node is stopping (Close's first step).
func (n *Node) notifyStopping() {
	if err := n.notifier.Send(notify.Stopping, notify.Status("stopping: draining the API")); err != nil {
		n.logger.Warn("systemd notification failed", "error", err)
	}
}

// privilegedPortHint is what to add to a listen error that a port below
// 1024 causes: the packaged unit runs without capabilities
// (CapabilityBoundingSet= empty), so such a port needs a drop-in.
func privilegedPortHint(err error) string {
	if !errors.Is(err, syscall.EACCES) {
		return ""
	}
	return " (a port below 1024 needs CAP_NET_BIND_SERVICE: under systemd, a drop-in with " +
		"CapabilityBoundingSet= and AmbientCapabilities=CAP_NET_BIND_SERVICE; docs/operations.md, \"systemd\")"
}
