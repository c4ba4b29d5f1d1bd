package raftstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/custos/custos/internal/testkit"
)

// BenchmarkApply measures the in-process cost of a durable transaction (one
// 1 KiB put + one chain append) on a 3-node loopback cluster with mutual TLS,
// without HTTP, at several concurrencies. Compare with `make bench`'s HTTP
// figures to see what the API layer costs.
func BenchmarkApply(b *testing.B) {
	c := newTestCluster(b, 3)
	leader := c.waitLeader()
	value := bytes.Repeat([]byte("v"), 1024)
	for _, conc := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", conc), func(b *testing.B) {
			before := leader.Status().Stats
			lat := make([]time.Duration, b.N)
			var next int64
			var mu sync.Mutex
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < conc; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for {
						mu.Lock()
						i := next
						next++
						mu.Unlock()
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						_, err := leader.Apply(b.Context(), &Txn{
							Ops:     []Op{{Kind: OpPut, Bucket: Path("bench"), Key: []byte(fmt.Sprintf("%d-%d", w, i)), Value: value}},
							Appends: []Append{{Chain: []byte("bench"), Data: []byte(fmt.Sprint(i))}},
						})
						if err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
					}
				}(w)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			after := leader.Status().Stats
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "txn/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			if d := after.LogBatches - before.LogBatches; d > 0 {
				b.ReportMetric(float64(b.N)/float64(d), "txn/fsync")
				b.ReportMetric(float64(after.LogNanos-before.LogNanos)/float64(d)/1e6, "ms/logwrite")
			}
			if d := after.FSMBatches - before.FSMBatches; d > 0 {
				b.ReportMetric(float64(after.FSMNanos-before.FSMNanos)/float64(d)/1e6, "ms/fsmcommit")
				b.ReportMetric(float64(b.N)/float64(d), "txn/fsmcommit")
			}
		})
	}
}

// BenchmarkFsyncFloor is the disk's floor: one 4 KiB write + fdatasync.
func BenchmarkFsyncFloor(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(buf, int64(i%256)*4096); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/fsync")
}

// BenchmarkFSMApplyBatch is the state machine alone: batches of 100
// transactions (1 KiB put + chain append) per bbolt commit.
func BenchmarkFSMApplyBatch(b *testing.B) {
	f, err := OpenFSM(filepath.Join(b.TempDir(), "state.db"), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	value := bytes.Repeat([]byte("v"), 1024)
	idx := uint64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		txns := make([]*Txn, 100)
		for k := range txns {
			txns[k] = &Txn{
				Ops:     []Op{{Kind: OpPut, Bucket: Path("bench"), Key: []byte(fmt.Sprintf("%d-%d", k, i)), Value: value}},
				Appends: []Append{{Chain: []byte("bench"), Data: []byte(fmt.Sprint(i))}},
			}
		}
		idx++
		f.ApplyBatch([]*raft.Log{{Index: idx, Type: raft.LogCommand, Data: encodeBatch(txns)}})
		f.flush() // one state commit per batch of 100
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "txn/s")
}

// BenchmarkRestart1M: a single node holding one million keys is stopped and
// started again. Reports the time from Open to a confirmed leader with
// a linearizable read served, and how many entries the FSM re-applied on
// the way (must be 0: the state file already has them).
func BenchmarkRestart1M(b *testing.B) {
	const keys, perTxn = 1_000_000, 4000
	dir := b.TempDir()
	creds, err := NewClusterCredentials("n1")
	if err != nil {
		b.Fatal(err)
	}
	cfg := fastConfig(b, "n1", "eu-west-1", creds)
	cfg.DataDir, cfg.Bootstrap = dir, true
	cfg.SnapshotThreshold = 1 << 20 // keep the applied entries in the log: the restart must skip them, not avoid them
	s, err := Open(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	testkit.Eventually(b, "a leader", s.IsLeader)
	val := bytes.Repeat([]byte("x"), 100)
	for i := 0; i < keys/perTxn; i++ {
		t := &Txn{}
		for k := 0; k < perTxn; k++ {
			t.Ops = append(t.Ops, Op{Kind: OpPut, Bucket: Path("big"), Key: fmt.Appendf(nil, "key-%09d", i*perTxn+k), Value: val})
		}
		if _, err := s.Apply(b.Context(), t); err != nil {
			b.Fatal(err)
		}
	}
	var rev uint64
	if err := s.View(b.Context(), Linearizable, func(r *ReadTx) error { rev = r.Revision(); return nil }); err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		s, err := Open(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		var rev2 uint64
		if err := s.View(b.Context(), Linearizable, func(r *ReadTx) error { rev2 = r.Revision(); return nil }); err != nil {
			b.Fatal(err)
		}
		ready := time.Since(start)
		b.StopTimer()
		_ = s.View(b.Context(), Stale, func(r *ReadTx) error {
			if n := r.Count(Path("big")); n != keys {
				b.Fatalf("%d keys after restart", n)
			}
			return nil
		})
		b.ReportMetric(float64(ready.Milliseconds()), "ms-to-linearizable-read")
		// The revision counts applied transactions: unchanged means the
		// restart re-applied none of the 250 logged ones.
		b.ReportMetric(float64(rev2-rev), "txns-reapplied")
		b.ReportMetric(float64(s.fsm.skipped.Load()), "entries-skipped")
		s.Close()
		b.StartTimer()
	}
}

// auditTxn is the write-path transaction of the append benchmarks: one put
// of a 200-byte value, and, with audit, one 300-byte chain append.
func auditTxn(i int, audit bool) *Txn { return shapedTxn(i, audit, false) }

// shapedTxn is auditTxn, or with record a write shaped like a tenant's
// record: a 1 KiB sealed value and two 64-byte blind-index entries, with
// (audit) a 250-byte entry — what Custos's data path writes.
func shapedTxn(i int, audit, record bool) *Txn {
	if !record {
		t := &Txn{Ops: []Op{{Kind: OpPut, Bucket: Path("bench"), Key: fmt.Appendf(nil, "key-%012d", i), Value: bytes.Repeat([]byte("v"), 200)}}}
		if audit {
			rec := fmt.Appendf(nil, "%012d ", i)
			t.Appends = []Append{{Chain: []byte("audit"), Data: append(rec, bytes.Repeat([]byte("a"), 300-len(rec))...)}}
		}
		return t
	}
	t := &Txn{Ops: []Op{
		{Kind: OpPut, Bucket: Path("tenant:bench", "records"), Key: fmt.Appendf(nil, "r-%012d", i), Value: bytes.Repeat([]byte("s"), 1024)},
		{Kind: OpPut, Bucket: Path("tenant:bench", "index", "email"), Key: fmt.Appendf(nil, "%052d", i), Value: fmt.Appendf(nil, "r-%012d", i)},
		{Kind: OpPut, Bucket: Path("tenant:bench", "index", "phone"), Key: fmt.Appendf(nil, "%052d", i), Value: fmt.Appendf(nil, "r-%012d", i)},
	}}
	if audit {
		rec := fmt.Appendf(nil, "%012d ", i)
		t.Appends = []Append{{Chain: []byte("tenant:bench"), Data: append(rec, bytes.Repeat([]byte("a"), 250-len(rec))...)}}
	}
	return t
}

// BenchmarkFSMAppendCost is what an audit append (link, head and Merkle
// tree hashes) adds to the state machine's apply path: the same
// transaction with and without one append, 128 transactions per log entry,
// one state commit (two fdatasyncs) per entry, as under load.
func BenchmarkFSMAppendCost(b *testing.B) {
	const perEntry = 128
	for _, audit := range []bool{false, true} {
		b.Run(fmt.Sprintf("append=%v", audit), func(b *testing.B) {
			f, err := OpenFSM(filepath.Join(b.TempDir(), "state.db"), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			idx := uint64(0)
			b.ResetTimer()
			for done := 0; done < b.N; done += perEntry {
				b.StopTimer()
				txns := make([]*Txn, min(perEntry, b.N-done))
				for k := range txns {
					txns[k] = auditTxn(done+k, audit)
				}
				idx++
				l := &raft.Log{Index: idx, Type: raft.LogCommand, Data: encodeBatch(txns)}
				b.StartTimer()
				f.ApplyBatch([]*raft.Log{l})
				f.flush()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txn/s")
		})
	}
}

// BenchmarkStoreAppendCost is the same comparison through the whole write
// path of a single node — Store.Apply, group commit, raft log fsync, FSM —
// with few and with many concurrent writers. Each run starts a fresh node,
// with snapshots off: a snapshot copies the whole state file, and its
// timing would drown the difference.
func BenchmarkStoreAppendCost(b *testing.B) {
	for _, shape := range []string{"put200", "record1k"} {
		for _, par := range []int{1, 32} {
			for _, audit := range []bool{false, true} {
				b.Run(fmt.Sprintf("txn=%s/writers=%d/append=%v", shape, par*runtime.GOMAXPROCS(0), audit), func(b *testing.B) {
					s := newTestClusterWith(b, 1, func(cfg *Config) {
						cfg.SnapshotThreshold, cfg.SnapshotInterval = 1<<40, time.Hour
					}).waitLeader()
					var next atomic.Int64
					b.SetParallelism(par)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := s.Apply(context.Background(), shapedTxn(int(next.Add(1)), audit, shape == "record1k")); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txn/s")
				})
			}
		}
	}
}

// BenchmarkStoreRecordHashes is the Merkle tree's share of an append alone:
// computing and storing one record's hashes in an open bbolt transaction,
// one commit per 128 records as in BenchmarkFSMAppendCost.
func BenchmarkStoreRecordHashes(b *testing.B) {
	f, err := OpenFSM(filepath.Join(b.TempDir(), "state.db"), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	data := auditTxn(0, true).Appends[0].Data
	chain := []byte("audit")
	b.ResetTimer()
	for done := 0; done < b.N; done += 128 {
		err := f.db.Update(func(tx *bolt.Tx) error {
			for k := done; k < min(done+128, b.N); k++ {
				s, err := writableHashes(tx, chain, uint64(k))
				if err != nil {
					return err
				}
				if err := storeRecordHashes(s, int64(k), data); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLinearizableRead measures a linearizable View (a read-gate
// round: since issue 14, a committed no-op entry; before, a VerifyLeader
// heartbeat round) on a 3-node loopback cluster, on the leader and on a
// follower (a ReadIndex RPC to the leader), serially and with 64 readers
// sharing rounds.
func BenchmarkLinearizableRead(b *testing.B) {
	c := newTestCluster(b, 3)
	leader := c.waitLeader()
	if _, err := leader.Apply(b.Context(), put("bench", "k", "v")); err != nil {
		b.Fatal(err)
	}
	for _, node := range []struct {
		name string
		s    *Store
	}{{"leader", leader}, {"follower", c.follower()}} {
		for _, conc := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/readers=%d", node.name, conc), func(b *testing.B) {
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for range conc {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if err := node.s.View(b.Context(), Linearizable, func(*ReadTx) error { return nil }); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
			})
		}
	}
}
