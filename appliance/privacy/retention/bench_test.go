//go:build bench

package retention_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos/appliance/privacy/retention"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/raftstore"
)

// TestBenchRetentionSweep is the issue's "a retention sweep of 100,000
// expired records while 64 clients write keeps their p99 within 2× of an
// idle run" (go test -tags bench -count=1 -v -run TestBenchRetentionSweep
// ./appliance/privacy/retention; `make bench` runs it).
//
// Three in-process nodes (real raftstore, loopback mutual TLS, the tests'
// 500 ms raft timeouts) share a clock the test moves, which is why the
// cluster is in process and not three custos processes: a process's clock
// cannot be moved. 100,000 records of 1,000 subjects (an indexed pii
// field and an internal one each, as a guest record has) are written at
// t0 into a collection kept 30 days. Then 64 clients create records of
// another collection (retention 0: a year for subjects' records), spread
// over the three nodes, for 8 s with nothing else running (idle); the
// clock moves 31 days on, and the same 64 clients write while the
// leader's sweeper, as the node configures it by default (256 records per
// transaction, 20 ms least pause), erases the 100,000. The figures: the
// writes' p50 and p99 idle and during the sweep, and the sweep's duration.
// RETENTION_BATCH, RETENTION_PAUSE (a duration) and RETENTION_SHARE vary
// the sweeper.
func TestBenchRetentionSweep(t *testing.T) {
	const (
		expired  = 100_000
		subjects = 1000
		clients  = 64
		idleFor  = 8 * time.Second
	)
	cfg := retention.Config{}
	if v := os.Getenv("RETENTION_BATCH"); v != "" {
		cfg.Batch, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("RETENTION_PAUSE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Pause = d
		if d == 0 {
			cfg.Pause = -1
		}
	}
	if v := os.Getenv("RETENTION_SHARE"); v != "" {
		cfg.Share, _ = strconv.ParseFloat(v, 64)
	}
	cl := newCluster(t, cfg)
	ctx := context.Background()
	cl.define(t, "events", 30)
	cl.define(t, "live", 0)

	// Seed: 100,000 records at t0, through every node.
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			n := cl.nodes[c%len(cl.nodes)]
			for {
				i := next.Add(1) - 1
				if i >= expired {
					return
				}
				if err := create(ctx, n, "events", input(fmt.Sprintf("e%06d", i), int(i%subjects))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("seeded %d records of %d subjects in %v", expired, subjects, time.Since(start).Round(time.Millisecond))

	// What a sweep's scan costs: every page of the collection, nothing
	// expired yet.
	leader := cl.leader(t)
	scan := time.Now()
	pages, after := 0, ""
	for {
		found, next, err := leader.recs.Expired(ctx, "acme", records.ExpiredQuery{Collection: "events", Before: t0, After: after, Limit: 256})
		if err != nil || len(found) != 0 {
			t.Fatalf("scan: %d found, %v", len(found), err)
		}
		pages++
		if next == "" {
			break
		}
		after = next
	}
	t.Logf("scan of %d records with nothing expired: %v (%d pages)", expired, time.Since(scan).Round(time.Millisecond), pages)

	// Idle: 64 writers, nothing else.
	idle := write(t, cl, clients, "idle", func(stop <-chan struct{}) { time.Sleep(idleFor) })

	// The sweep, with the same writers.
	cl.clock.set(t0.Add(31 * 24 * time.Hour))
	leader = cl.leader(t)
	var rep retention.Report
	var took time.Duration
	interrupted := 0
	during := write(t, cl, clients, "sweep", func(<-chan struct{}) {
		s := time.Now()
		// A leader that steps down (a loaded machine) stops its sweep,
		// or fails its transaction; the next leader's sweep goes on, as
		// Run's next tick would.
		for interrupted < 50 {
			r, err := cl.leader(t).sweep.Sweep(ctx)
			rep.Erased += r.Erased
			rep.Transactions += r.Transactions
			rep.Scanned += r.Scanned
			if err == nil {
				break // a whole sweep: what it found expired is gone
			}
			interrupted++
			t.Logf("sweep interrupted: %v", err)
		}
		took = time.Since(s)
	})
	leader = cl.leader(t)
	if rep.Erased != expired {
		// A transaction whose leader stepped down while committing it
		// may have applied without being counted.
		t.Logf("the sweep counted %d records erased of %d", rep.Erased, expired)
	}
	if err := leader.store.View(ctx, raftstore.Linearizable, func(*raftstore.ReadTx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if left, _, err := leader.recs.Expired(ctx, "acme", records.ExpiredQuery{Collection: "events", Before: t0.Add(time.Hour)}); err != nil || len(left) != 0 {
		t.Errorf("after the sweep: %d expired records left, %v", len(left), err)
	}
	t.Logf("sweeper: batch %d (0: %d), pause %v (0: %v), share %.2f (0: %.2f)", cfg.Batch, retention.DefaultBatch, cfg.Pause, retention.DefaultPause, cfg.Share, retention.DefaultShare)
	t.Logf("sweep: %d records erased in %d transactions (%d scan pages), %v (%.0f records/s); sweeps interrupted (leader changes): %d",
		rep.Erased, rep.Transactions, rep.Scanned, took.Round(time.Millisecond), float64(rep.Erased)/took.Seconds(), interrupted)
	t.Logf("%-6s %8s %8s %9s %9s", "run", "writes", "w/s", "p50 ms", "p99 ms")
	for _, r := range []result{idle, during} {
		t.Logf("%-6s %8d %8.0f %9.2f %9.2f", r.name, r.n, float64(r.n)/r.took.Seconds(), ms(r.p50), ms(r.p99))
	}
	t.Logf("p99 during the sweep / idle p99: %.2f×", float64(during.p99)/float64(idle.p99))
}

// create creates a record through n, again when the store answers that
// the write's outcome is unknown (a leader change on a loaded machine);
// a record that exists then is the first try's.
func create(ctx context.Context, n *node, collection string, in records.Input) error {
	var err error
	for range 5 {
		_, err = n.recs.Create(ctx, custos, "acme", collection, in)
		if err == nil || errors.Is(err, records.ErrExists) {
			return nil
		}
	}
	return err
}

// input is record id of subject s (guest-s).
func input(id string, s int) records.Input {
	return records.Input{ID: id, Subject: fmt.Sprintf("guest-%d", s), Fields: map[string]json.RawMessage{
		"email": json.RawMessage(`"` + id + `@acme.example"`), "n": json.RawMessage(`1`)}}
}

type result struct {
	name     string
	n        int
	took     time.Duration
	p50, p99 time.Duration
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// write runs clients writers (each creating records of "live" through
// one node, round robin) while during runs, and returns their latencies.
func write(t *testing.T, cl *cluster, clients int, name string, during func(stop <-chan struct{})) result {
	t.Helper()
	ctx := context.Background()
	stop := make(chan struct{})
	lat := make([][]time.Duration, clients)
	var seq atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			n := cl.nodes[c%len(cl.nodes)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := seq.Add(1)
				s := time.Now()
				if err := create(ctx, n, "live", input(fmt.Sprintf("%s%07d", name, i), int(i%1000))); err != nil {
					t.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(s))
			}
		})
	}
	s := time.Now()
	during(stop)
	took := time.Since(s)
	close(stop)
	wg.Wait()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		t.Fatalf("%s: no writes", name)
	}
	return result{name: name, n: len(all), took: took, p50: all[len(all)/2], p99: all[len(all)*99/100]}
}
