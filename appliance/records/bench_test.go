package records_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/testkit/storetest"
)

// benchCollection is the collection of `make bench`'s record scenarios: 5
// fields (3 pii, 1 sensitive, 1 internal), 2 blind-indexed.
var benchCollection = collections.Definition{Fields: []collections.Field{
	{Name: "email", Type: collections.TypeString, Required: true, Classification: collections.ClassPII, Index: true},
	{Name: "phone", Type: collections.TypeString, Classification: collections.ClassPII, Index: true},
	{Name: "name", Type: collections.TypeString, Classification: collections.ClassPII},
	{Name: "notes", Type: collections.TypeString, Classification: collections.ClassSensitive},
	{Name: "visits", Type: collections.TypeNumber, Classification: collections.ClassInternal},
}}

var benchNotes = strings.Repeat("Prefers a quiet room away from the lift; allergic to feathers. ", 14)

// benchInput is a record of about 1 KiB of field values.
func benchInput(id string, i int64) records.Input {
	f := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	return records.Input{ID: id, Fields: map[string]json.RawMessage{
		"email":  f(fmt.Sprintf("guest.%s@example.com", id)),
		"phone":  f(fmt.Sprintf("+44 20 7946 %07d", i)),
		"name":   f(fmt.Sprintf("Guest Number %d", i)),
		"notes":  f(benchNotes),
		"visits": f(i % 40),
	}}
}

func benchEnv(b *testing.B) (*env, *records.Service) {
	e := newEnv(b, storetest.Options{})
	svc := e.service()
	ctx := context.Background()
	if _, err := e.ten.Create(ctx, tenantsActor, tenantsInput("bench")); err != nil {
		b.Fatal(err)
	}
	if _, _, err := e.colls.Put(ctx, custos, "bench", "guests", benchCollection, 0); err != nil {
		b.Fatal(err)
	}
	return e, svc
}

// BenchmarkCreate: record creates from 64 goroutines on a single node
// (group commit, fsync'd log), the whole records write path.
func BenchmarkCreate(b *testing.B) {
	_, svc := benchEnv(b)
	var seq atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			if _, err := svc.Create(context.Background(), reader(0), "bench", "guests", benchInput(fmt.Sprint("g", i), i)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGet: audited reads by id from 64 goroutines on a single node.
func BenchmarkGet(b *testing.B) {
	_, svc := benchEnv(b)
	const n = 1000
	for i := range int64(n) {
		if _, err := svc.Create(context.Background(), reader(0), "bench", "guests", benchInput(fmt.Sprint("g", i), i)); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			if _, err := svc.Get(context.Background(), reader(1), "bench", "guests", fmt.Sprint("g", i%n), false); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
