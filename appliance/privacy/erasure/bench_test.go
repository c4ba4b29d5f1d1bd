//go:build bench

package erasure_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/privacy/erasure"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/sealtest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/raftstore"
)

// TestBenchErase is the issue's "erasure of a subject with 10,000
// records and 10 blobs to unreadable on every node < 1 s" (go test -tags
// bench -count=1 -v -run TestBenchErase ./appliance/privacy/erasure;
// `make bench` runs it).
//
// Three in-process nodes (real raftstore, loopback mutual TLS, the
// tests' raft timeouts, a node's snapshot thresholds) on this machine's
// disk; the services as the node
// wires them, on the leader. The subject holds 10,000 records (an indexed
// pii field and an internal one, as a guest record has) and 10 blobs of
// 256 KiB, among 1,000 records of other subjects. The figures, from the
// call of Erase, watching every node's own state (local reads): until no
// node holds the subject's data key (unreadable everywhere: the plan and
// the first transaction), until no node holds any of its records or
// blobs (removed everywhere), and the whole call (with the receipt
// signed and the request completed).
func TestBenchErase(t *testing.T) {
	const (
		subjectRecords = 10_000
		blobCount      = 10
		blobSize       = 256 << 10
		others         = 1000
		clients        = 32
	)
	// A node's snapshot defaults (cluster.snapshot_threshold 8192, the
	// interval raft's 2 minutes): not the tests' snapshot every 64
	// entries.
	c := storetest.NewClusterWith(t, 3, storetest.ClusterOptions{SnapshotThreshold: 8192, SnapshotInterval: 2 * time.Minute})
	ctx := context.Background()
	leader := c.Leader(t)
	seal := sealtest.Bootstrap(t, leader, "custos-audit-bench")
	id := seal.Identity
	b := tenancy.New(leader)
	keys := seal.Hierarchy(b)
	if _, err := tenants.New(b, storetest.Region, tenants.WithKeys(keys)).Create(ctx, audit.Principal{Kind: audit.ActorOperator, ID: "operator"}, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	colls := collections.New(b, nil)
	recs := records.New(b, keys, colls, nil)
	bl := blobs.New(b, keys, recs, blobs.Config{}, nil)
	reqs := requests.New(b, keys)
	svc := erasure.New(b, erasure.Deps{Records: recs, Blobs: bl, Consent: consent.New(b, keys, nil), Keys: keys, Audit: audit.New(leader, []age.Identity{id}, nil), Requests: reqs})
	def := collections.Definition{Fields: []collections.Field{
		{Name: "email", Type: collections.TypeString, Classification: collections.ClassPII, Index: true},
		{Name: "n", Type: collections.TypeNumber, Classification: collections.ClassInternal},
	}}
	if _, _, err := colls.Put(ctx, custos, "acme", "guests", def, 0); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= subjectRecords+others {
					return
				}
				subject := "guest-1"
				if i >= subjectRecords {
					subject = fmt.Sprintf("other-%d", i%100)
				}
				in := records.Input{ID: fmt.Sprintf("r%05d", i), Subject: subject, Fields: map[string]json.RawMessage{
					"email": json.RawMessage(fmt.Sprintf(`"r%05d@acme.example"`, i)), "n": json.RawMessage(`1`)}}
				if _, err := recs.Create(ctx, custos, "acme", "guests", in); err != nil {
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
	payload := bytes.Repeat([]byte("a recording "), blobSize/12)
	for range blobCount {
		if _, err := bl.Put(ctx, custos, "acme", blobs.Input{Subject: "guest-1", ContentType: "audio/wav", Length: int64(len(payload))}, bytes.NewReader(payload)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := reqs.Create(ctx, custos, "acme", requests.Input{Kind: requests.Erasure, Subject: "guest-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reqs.Transition(ctx, custos, "acme", r.ID, requests.TransitionInput{To: requests.Verified, Evidence: &requests.Evidence{Method: "document", Text: "passport"}}); err != nil {
		t.Fatal(err)
	}
	// Every node holds the subject's data before the erasure.
	for _, n := range c.Nodes {
		testkit.Eventually(t, "the seed on every node", func() bool { key, held := state(t, n); return key && held == subjectRecords+blobCount })
	}
	t.Logf("seeded %d records and %d blobs of the subject, %d of others, in %v", subjectRecords, blobCount, others, time.Since(start).Round(time.Millisecond))

	// Watch every node's own state while the erasure runs: when its
	// data key is gone there (unreadable), when its records, blobs and
	// index are (gone).
	began := time.Now()
	unreadable := make([]time.Duration, len(c.Nodes))
	gone := make([]time.Duration, len(c.Nodes))
	var watch sync.WaitGroup
	for i, n := range c.Nodes {
		watch.Go(func() {
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				key, held := state(t, n)
				if !key && unreadable[i] == 0 {
					unreadable[i] = time.Since(began)
				}
				if !key && held == 0 {
					gone[i] = time.Since(began)
					return
				}
			}
		})
	}
	entry, err := svc.Erase(ctx, custos, "acme", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	erased := time.Since(began)
	watch.Wait()
	slowest := func(ds []time.Duration) time.Duration {
		out := time.Duration(0)
		for _, d := range ds {
			if d == 0 {
				t.Fatalf("a node never got there: %v", ds)
			}
			out = max(out, d)
		}
		return out
	}
	if entry.Counts[erasure.KindRecords] != subjectRecords || entry.Counts[erasure.KindBlobs] != blobCount || !entry.KeyShredded {
		t.Fatalf("erasure %+v", entry)
	}
	fmt.Printf("\nissue13 erase records=%d blobs=%d (%d KiB each) others=%d unreadable_every_node_ms=%.0f removed_every_node_ms=%.0f erase_call_with_receipt_ms=%.0f\n",
		subjectRecords, blobCount, blobSize>>10, others, ms(slowest(unreadable)), ms(slowest(gone)), ms(erased))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// state reads node n's own state (a local read): whether the subject's
// data key is there, and how many of its records and blobs.
func state(t *testing.T, n *raftstore.Store) (key bool, held int) {
	err := tenancy.New(n).Scope("acme").View(context.Background(), raftstore.Stale, func(r tenancy.Read) error {
		held = r.Count(raftstore.Path("subjects", "guest-1")) + r.Count(raftstore.Path("blob_subjects", "guest-1"))
		_, _, key = r.Get(raftstore.Path("keys"), []byte("dek/guest-1"))
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	return key, held
}
