//go:build bench

package export

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/records"
)

// TestBenchExport is the issue's "export of a subject with 10,000
// records < 1 s (JSON) on a 3-node cluster" (go test -tags bench
// -count=1 -v -run TestBenchExport ./appliance/privacy/export; `make
// bench` runs it). Three in-process nodes (real raftstore, loopback
// mutual TLS); the services run on a follower. One subject holds 10,000
// records of a guest-like collection (two pii strings, one indexed, a
// number and a bool), beside 1,000 records of other subjects. The figure
// is Service.Subject end to end — the records read in pages and
// decrypted, the consent ledger, requests and audit entries about the
// subject read, the archive written, the manifest signed, and the
// archive sealed and replicated in chunks with its audit entry — then
// the same export into io.Discard (the build alone), for JSON, CSV and
// Parquet. Each is the best and the worst of three runs.
func TestBenchExport(t *testing.T) {
	const (
		mine   = 10_000
		others = 1_000
		runs   = 3
	)
	e := newEnv(t)
	c := ctx(t)
	fields := []collections.Field{{Name: "name", Type: "string", Classification: "pii", Index: true}, {Name: "email", Type: "string", Classification: "pii"},
		{Name: "nights", Type: "number", Classification: "internal"}, {Name: "vip", Type: "bool", Classification: "internal"}}
	if _, _, err := e.colls.Put(c, owner, "acme", "guests", collections.Definition{Fields: fields}, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range 64 {
		wg.Go(func() {
			for i := range work {
				subject := "guest-1"
				if i >= mine {
					subject = fmt.Sprintf("other-%d", i%50)
				}
				raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
				_, err := e.recs.Create(c, owner, "acme", "guests", records.Input{ID: fmt.Sprintf("r%06d", i), Subject: subject, Fields: map[string]json.RawMessage{
					"name": raw(fmt.Sprintf("Guest Number %d", i)), "email": raw(fmt.Sprintf("guest%d@example.com", i)), "nights": raw(i % 14), "vip": raw(i%7 == 0)}})
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range mine + others {
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	t.Logf("seeded %d records in %s", mine+others, time.Since(start).Round(time.Millisecond))
	t.Logf("%-8s %-5s %14s %14s %14s %12s", "format", "pkg", "stored best", "stored worst", "build only", "archive")
	for _, f := range []Format{FormatJSON, FormatCSV, FormatParquet} {
		var best, worst time.Duration
		var size int64
		for r := range runs {
			t0 := time.Now()
			x, err := e.svc.Subject(c, owner, "acme", "guest-1", fmt.Sprintf("bench-%s-%d", f, r), Options{Format: f})
			d := time.Since(t0)
			if err != nil {
				t.Fatal(err)
			}
			if x.Counts["records"] != mine {
				t.Fatalf("%d records exported", x.Counts["records"])
			}
			size = x.Size
			if best == 0 || d < best {
				best = d
			}
			worst = max(worst, d)
		}
		if p := os.Getenv("EXPORT_CPUPROFILE"); p != "" && f == FormatJSON {
			out, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			_ = pprof.StartCPUProfile(out)
			for range 5 {
				j := &job{caller: owner, tenant: "acme", subject: "guest-1", pseudonym: "subject:h:AAAAAAAAAAAAAAAAAAAAAA", request: "bench", opt: Options{Format: f, Packaging: PackageZip}, now: e.clock.now()}
				if _, err := e.svc.build(c, j, io.Discard); err != nil {
					t.Fatal(err)
				}
			}
			pprof.StopCPUProfile()
			out.Close()
		}
		t0 := time.Now()
		j := &job{caller: owner, tenant: "acme", subject: "guest-1", pseudonym: "subject:h:AAAAAAAAAAAAAAAAAAAAAA", request: "bench", opt: Options{Format: f, Packaging: PackageZip}, now: e.clock.now()}
		if _, err := e.svc.build(c, j, io.Discard); err != nil {
			t.Fatal(err)
		}
		build := time.Since(t0)
		t.Logf("%-8s %-5s %14s %14s %14s %12d", f, "zip", best.Round(time.Millisecond), worst.Round(time.Millisecond), build.Round(time.Millisecond), size)
	}
}
