package uitest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/tenancy"
)

// SeedTenants creates count tenants named prefix-00001… through the API
// (workers at a time), as an operator would: each a registry entry, a
// bucket, a data key and an entry of the system chain.
func (n *Node) SeedTenants(t testing.TB, prefix string, count, workers int) {
	t.Helper()
	ctx := context.Background()
	api := n.API()
	ids := make(chan string)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if _, err := api.CreateTenant(ctx, client.NewTenant{ID: id, DisplayName: "Seeded " + id, Region: n.N.Store().Region()}); err != nil {
					errs <- fmt.Errorf("seed tenant %s: %w", id, err)
					return
				}
			}
		}()
	}
	go func() {
		defer close(ids)
		for i := 1; i <= count; i++ {
			select {
			case ids <- fmt.Sprintf("%s-%05d", prefix, i):
			case <-errs:
				return
			}
		}
	}()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// auditBatch is how many entries one seeding transaction appends
// (raftstore allows 4096 items and 8 MiB per transaction; an entry is
// about 300 bytes).
const auditBatch = 4000

// SeedAudit appends count audit entries to tenant's chain, spread
// evenly in time over the days before now and in order: what a year of
// a busy tenant's reads and writes leaves. They are real chain entries
// (canonically encoded, hashed into the chain's Merkle tree by the
// store as it applies them), written the way the audit package's
// batcher writes read entries — many per replicated transaction, through
// the tenancy boundary — rather than one API request each, which would
// take hours for a million. It returns the time the appends took.
func (n *Node) SeedAudit(t testing.TB, tenant string, count int, days int) time.Duration {
	t.Helper()
	ctx := context.Background()
	b := tenancy.New(n.N.Store())
	sc := b.Scope(tenant)
	actions := []string{"record.read", "record.read", "record.read", "record.create", "record.update", "blob.read", "consent.grant", "subject.read", "record.read", "record.delete"}
	end := time.Now().UTC()
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	step := end.Sub(start) / time.Duration(count)
	began := time.Now()
	batch := make([]tenancy.BatchEntry, 0, auditBatch)
	flush := func() {
		t.Helper()
		if len(batch) == 0 {
			return
		}
		failed, res, err := b.AppendBatch(ctx, batch)
		if err == nil && res.Err != nil {
			err = res.Err
		}
		if err != nil || failed >= 0 || !res.Applied {
			t.Fatalf("seed audit of %s: failed=%d applied=%v: %v", tenant, failed, res.Applied, err)
		}
		batch = batch[:0]
	}
	for i := range count {
		act := actions[i%len(actions)]
		e := audit.Entry{
			Time:      start.Add(time.Duration(i) * step),
			Actor:     audit.Actor{Type: audit.ActorUser, ID: fmt.Sprintf("u%04d", i%97)},
			Action:    act,
			Target:    fmt.Sprintf("record:guests/g%07d", i%100000),
			Outcome:   audit.OutcomeSuccess,
			RequestID: fmt.Sprintf("SEED%022d", i),
			Source:    fmt.Sprintf("10.0.%d.%d", i%7, i%251),
			Details:   map[string]string{"masked": "true", "sight": "pii:masked"},
		}
		data, err := e.Encode()
		if err != nil {
			t.Fatalf("seed audit: %v", err)
		}
		batch = append(batch, tenancy.BatchEntry{Scope: sc, Data: data})
		if len(batch) == auditBatch {
			flush()
		}
	}
	flush()
	return time.Since(began)
}
