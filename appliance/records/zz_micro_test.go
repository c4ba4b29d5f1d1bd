package records

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/custos/custos/appliance/collections"
)

func BenchmarkZZEnvelopeDecode(b *testing.B) {
	env := envelope{Subject: "", Version: 1, SchemaVersion: 1, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(), Sealed: map[string][]byte{
		"email": make([]byte, 60), "phone": make([]byte, 50), "name": make([]byte, 50), "notes": make([]byte, 940), "visits": make([]byte, 40)}}
	raw, _ := json.Marshal(env)
	b.Logf("%d bytes", len(raw))
	b.ReportAllocs()
	for b.Loop() {
		var e envelope
		if err := json.Unmarshal(raw, &e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZZSchemaDecode(b *testing.B) {
	sc := collections.Schema{Tenant: "bench", Name: "guests", Version: 1, UpdatedAt: time.Now(), Fields: []collections.Field{
		{Name: "email", Type: collections.TypeString, Required: true, Classification: collections.ClassPII, Index: true},
		{Name: "phone", Type: collections.TypeString, Classification: collections.ClassPII, Index: true},
		{Name: "name", Type: collections.TypeString, Classification: collections.ClassPII},
		{Name: "notes", Type: collections.TypeString, Classification: collections.ClassSensitive},
		{Name: "visits", Type: collections.TypeNumber, Classification: collections.ClassInternal},
	}}
	raw, _ := json.Marshal(sc)
	b.Logf("%d bytes", len(raw))
	b.ReportAllocs()
	for b.Loop() {
		var s collections.Schema
		if err := json.Unmarshal(raw, &s); err != nil {
			b.Fatal(err)
		}
	}
}
