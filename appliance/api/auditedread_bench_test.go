//go:build unix

package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
)

// BenchmarkAuditedRead is an audited record read by id through the whole
// API (fiber, authentication of an API key, authorization, the records
// service's restricted store handle, decryption, the read-audit entry
// committed before the answer), by a Manager key without attribute scopes
// and by one scoped to property=villa-a (the record's), in turns: the
// difference is what the scope check costs, in the same run (ns/op is one
// turn of three reads). BenchmarkAuthorize is
// the permission check alone. Run them together:
//
//	go test -run '^$' -bench 'AuditedRead|Authorize' -benchtime 1500x -count 3 -cpu 1 ./appliance/api
//
// A read's wall time is mostly the wait for the audit entry's commit (an
// fsync); cpu-ns/op is the process's CPU time per read (getrusage), the
// stricter base to weigh the checks against.
func BenchmarkAuditedRead(b *testing.B) {
	e := newEnv(b, api.Options{})
	must := func(r response, status int, what string) response {
		b.Helper()
		if r.status != status {
			b.Fatalf("%s: %d %s", what, r.status, r.body)
		}
		return r
	}
	as := func(token string) reqOpt { return withHeader("Authorization", "Bearer "+token) }
	key := func(body string) string {
		var k struct{ Token string }
		must(doOn(b, e.app, "POST", "/v1/tenants/acme/apikeys", body), http.StatusCreated, "key").json(b, &k)
		return k.Token
	}
	must(doOn(b, e.app, "POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`), http.StatusCreated, "tenant")
	owner := key(`{"name":"setup","role":"owner"}`)
	must(doOn(b, e.app, "PUT", "/v1/tenants/acme/collections/guests", `{"fields":[
		{"name":"email","type":"string","required":true,"classification":"pii","index":true},
		{"name":"stay","type":"enum","classification":"internal","values":["short","long"]}],
		"subject_required":true}`, as(owner)), http.StatusCreated, "collection")
	must(doOn(b, e.app, "POST", "/v1/tenants/acme/collections/guests/records",
		`{"id":"r1","subject":"guest-1","attributes":{"property":"villa-a"},"fields":{"email":"guest@villas.test","stay":"short"}}`, as(owner)),
		http.StatusCreated, "record")
	reader := func(name, body string) func() {
		tok := key(body)
		// The timed reads skip doOn's openapi.json check of every
		// exchange, which would cost more than the checks weighed here.
		read := func() {
			req := httptest.NewRequest("GET", "/v1/tenants/acme/collections/guests/records/r1", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := e.app.Test(req, -1)
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatalf("%s read: %d %s", name, res.StatusCode, body)
			}
		}
		read() // the key's first use records last_used, off the request path
		return read
	}
	unscoped := reader("unscoped", `{"name":"manager","role":"manager"}`)
	scoped := reader("scoped", `{"name":"manager villa a","role":"manager","scopes":{"property":["villa-a"]}}`)
	// Three arms in turn — unscoped, the same unscoped key again, scoped —
	// each iteration starting with the next one, so that the machine's
	// load drifts under all alike. Each arm's wall and CPU time is summed
	// apart; the two unscoped arms differ only by chance, which is the
	// noise floor the scoped arm's difference is to be read against.
	b.Run("arms", func(b *testing.B) {
		b.ReportAllocs()
		var wall, cpu [3]int64
		reads := []func(){unscoped, unscoped, scoped}
		for it := 0; b.Loop(); it++ {
			for j := range 3 {
				i := (it + j) % 3
				t0, c0 := time.Now(), cpuTime(b)
				reads[i]()
				wall[i] += int64(time.Since(t0))
				cpu[i] += cpuTime(b) - c0
			}
		}
		n := float64(b.N)
		pct := func(a, base int64) float64 { return 100 * float64(a-base) / float64(base) }
		b.ReportMetric(float64(cpu[0]+cpu[1])/2/n, "unscoped-cpu-ns/read")
		b.ReportMetric(float64(cpu[2])/n, "scoped-cpu-ns/read")
		b.ReportMetric(float64(wall[0]+wall[1])/2/n, "unscoped-ns/read")
		b.ReportMetric(float64(wall[2])/n, "scoped-ns/read")
		b.ReportMetric(pct(cpu[1], cpu[0]), "noise-cpu-%")
		b.ReportMetric(pct(2*cpu[2], cpu[0]+cpu[1]), "scope-cpu-%")
		b.ReportMetric(pct(wall[1], wall[0]), "noise-wall-%")
		b.ReportMetric(pct(2*wall[2], wall[0]+wall[1]), "scope-wall-%")
	})
}

// cpuTime is the process's user and system CPU time so far, in ns.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
