package backup_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/backup"
	"github.com/custos/custos/raftstore"
)

// BenchmarkBackupRestore (make bench; run once: -benchtime 1x) builds a
// state of CUSTOS_BENCH_STATE_MB MiB (default 1024) on an in-process
// single-node store, then measures: 64 writers' small transactions for a
// few seconds (idle: their p99); a backup to a local file while the 64
// writers go on (the backup's MB/s and the writers' p99 meanwhile); a
// backup alone; the restore of the file into a new state file (MB/s).
// MB/s count the state dump's bytes (what the backup holds) per second of
// wall time. It asserts nothing: the figures go to BENCHMARKS.md.
func BenchmarkBackupRestore(b *testing.B) {
	mb := 1024
	if v, err := strconv.Atoi(os.Getenv("CUSTOS_BENCH_STATE_MB")); err == nil && v > 0 {
		mb = v
	}
	store, svc, id, _ := setup(b)
	ctx := context.Background()
	start := time.Now()
	fill(b, store, mb)
	b.Logf("state of %d MiB built in %s", mb, time.Since(start).Round(time.Millisecond))
	dir := b.TempDir()

	idle := write64(b, store, nil)
	b.Logf("idle: 64 writers, %d txns in %s, p50 %s p99 %s", idle.n, idle.d.Round(time.Millisecond), idle.p50, idle.p99)

	var bytes int64
	var dur time.Duration
	var file string
	busy := write64(b, store, func() {
		file = filepath.Join(dir, "busy.age")
		bytes, dur = backupTo(b, svc, file)
	})
	b.Logf("backup under load: %d MiB in %s = %.0f MB/s; writers meanwhile: %d txns, p50 %s p99 %s (%.2f× idle p99)",
		bytes>>20, dur.Round(time.Millisecond), float64(bytes)/1e6/dur.Seconds(), busy.n, busy.p50, busy.p99, float64(busy.p99)/float64(idle.p99))
	b.ReportMetric(float64(bytes)/1e6/dur.Seconds(), "backup-MB/s")
	b.ReportMetric(float64(busy.p99)/float64(idle.p99), "p99-ratio")

	c0 := cpuTime()
	qb, qd := backupTo(b, svc, filepath.Join(dir, "quiet.age"))
	qc := cpuTime() - c0
	b.Logf("backup alone: %d MiB in %s = %.0f MB/s; %s CPU = %.0f MB per CPU-second", qb>>20, qd.Round(time.Millisecond), float64(qb)/1e6/qd.Seconds(),
		qc.Round(time.Millisecond), float64(qb)/1e6/qc.Seconds())

	f, err := os.Open(filepath.Join(dir, "quiet.age"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	t0, c1 := time.Now(), cpuTime()
	m, _, err := backup.Read(ctx, f, []age.Identity{id}, filepath.Join(dir, "restored.db"), backup.ReadOptions{})
	rd, rc := time.Since(t0), cpuTime()-c1
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("restore: %d MiB in %s = %.0f MB/s; %s CPU = %.0f MB per CPU-second", m.Size>>20, rd.Round(time.Millisecond), float64(m.Size)/1e6/rd.Seconds(),
		rc.Round(time.Millisecond), float64(m.Size)/1e6/rc.Seconds())
	b.ReportMetric(float64(m.Size)/1e6/rd.Seconds(), "restore-MB/s")
}

// fill writes mb MiB of random 64 KiB values, 1 MiB a transaction, from
// 4 appliers.
func fill(b *testing.B, store *raftstore.Store, mb int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(mb) {
					return
				}
				t := &raftstore.Txn{}
				for j := range 16 {
					v := make([]byte, 64<<10)
					rand.Read(v)
					t.Ops = append(t.Ops, raftstore.Op{Kind: raftstore.OpPut, Bucket: raftstore.Path("bench", fmt.Sprint(i%64)),
						Key: binary.BigEndian.AppendUint64(nil, uint64(i*16+int64(j))), Value: v})
				}
				if _, err := store.Apply(context.Background(), t); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

type latencies struct {
	n        int
	d        time.Duration
	p50, p99 time.Duration
}

// write64 runs 64 writers of small transactions while during runs (or
// for 5 s when during is nil), and returns their latencies meanwhile.
func write64(b *testing.B, store *raftstore.Store, during func()) latencies {
	stop := make(chan struct{})
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; ; i++ {
				select {
				case <-stop:
					mu.Lock()
					all = append(all, mine...)
					mu.Unlock()
					return
				default:
				}
				v := make([]byte, 200)
				t0 := time.Now()
				_, err := store.Apply(context.Background(), &raftstore.Txn{Ops: []raftstore.Op{{Kind: raftstore.OpPut,
					Bucket: raftstore.Path("writers"), Key: fmt.Appendf(nil, "w%02d-%d", w, i), Value: v}}})
				if err != nil {
					b.Error(err)
				}
				mine = append(mine, time.Since(t0))
			}
		})
	}
	t0 := time.Now()
	time.Sleep(500 * time.Millisecond) // the writers at speed
	if during == nil {
		time.Sleep(5 * time.Second)
	} else {
		during()
	}
	close(stop)
	wg.Wait()
	slices.Sort(all)
	if len(all) == 0 {
		b.Fatal("no writes")
	}
	return latencies{n: len(all), d: time.Since(t0), p50: all[len(all)/2], p99: all[len(all)*99/100]}
}

// cpuTime is the process's user and system CPU time so far: on a shared
// machine the wall-clock rates depend on what else runs, this does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func backupTo(b *testing.B, svc *backup.Service, path string) (int64, time.Duration) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	t0 := time.Now()
	m, err := svc.Backup(context.Background(), audit.System(), f)
	if err == nil {
		err = f.Sync()
	}
	d := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	return int64(m.Size), d
}
