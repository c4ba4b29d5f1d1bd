package api

import "testing"

// benchBodies are typical request bodies: a tenant, a record with a json
// field, a collection of five fields.
var benchBodies = []struct {
	name string
	body string
	new  func() any
}{
	{"tenant", `{"id":"acme-corp","display_name":"Acme Corporation","region":"eu-west"}`, func() any { return new(createTenantRequest) }},
	{"record", `{"id":"guest-0001","subject":"subj-42","attributes":{"plan":"gold","source":"web"},"fields":{"email":"jane@example.com","name":"Jane Doe","age":42,"notes":"Prefers the window seat; arrives late on Fridays.","doc":{"k":[1,2,3],"nested":{"a":true,"b":null}}}}`, func() any { return new(createRecordRequest) }},
	{"collection", `{"fields":[{"name":"email","type":"string","classification":"pii","index":true},{"name":"name","type":"string","classification":"pii"},{"name":"age","type":"integer","classification":"internal"},{"name":"plan","type":"enum","classification":"internal","values":["gold","silver","bronze"]},{"name":"doc","type":"json","classification":"sensitive"}],"retention_days":365,"subject_required":true}`, func() any { return new(putCollectionRequest) }},
}

// BenchmarkDecodeObject: the scanner and encoding/json on typical bodies
// (BENCHMARKS.md, issue 10).
func BenchmarkDecodeObject(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			body := []byte(bb.body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeObject(body, bb.new()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
