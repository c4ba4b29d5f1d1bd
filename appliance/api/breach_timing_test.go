package api_test

import (
	"io"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/custos/custos/appliance/api"
)

// TestCrossTenantBreachTiming: the not-found path does not tell, by its
// timing, whether another tenant's resource exists. Over a real loopback
// listener, tenant acme's key asks for
//
//	A  globex's record that exists,
//	B  the same path under a tenant that does not exist,
//	C  a globex record that does not exist (an id of the same length),
//
// and all three must be the same 404, reached without any service call but
// the key's authentication (the structural property, from the call log),
// and with medians that do not differ measurably.
//
// Why the timing rule cannot flake from noise: the samples are
// interleaved (A B C, B C A, C A B, ...), so a burst of load from the rest
// of a shared 2-core machine (another package's tests, the race detector,
// GC) falls on the three classes alike and moves their medians together.
// With n = 300 per class the standard error of a median is about
// 1.2533·σ/√n ≈ 0.11·MAD (σ ≈ 1.4826·MAD), so the difference of two
// medians has a standard error of about 0.15 pooled MADs: the 3·MAD bound
// is some 20 standard errors away, and the 2 ms floor keeps a very quiet
// machine (a tiny MAD) from turning a scheduling hiccup into a failure. A
// failure needs a systematic difference of more than 2 ms. That also says
// what timing can and cannot show here: a storage lookup costs
// microseconds, far below any bound that holds on a shared machine. What
// proves that no lookup happens is the call log (no service call beyond
// authentication); the figures are logged for the record, next to those
// of a legitimate read, which does look up, decrypt and audit.
func TestCrossTenantBreachTiming(t *testing.T) {
	e := newEnv(t, api.Options{})
	calls := e.withCallLog()
	for _, s := range []struct{ method, path, body string }{
		{"POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`},
		{"POST", "/v1/tenants", `{"id":"globex","display_name":"Globex"}`},
		{"PUT", "/v1/tenants/globex/collections/guests", guestsV1},
		{"POST", "/v1/tenants/globex/collections/guests/records", `{"id":"` + vRecord + `","subject":"` + vSubject + `","fields":{"email":"` + vEmail + `"}}`},
	} {
		if r := e.do(s.method, s.path, s.body); r.status >= 300 {
			t.Fatalf("setup %s %s: %d %s", s.method, s.path, r.status, r.body)
		}
	}
	attacker := e.createKey(t, attackerTenant, `{"name":"attacker","permissions":["admin"]}`)
	victim := e.createKey(t, victimTenant, `{"name":"victim","permissions":["admin"]}`)
	base := e.serve(t)
	client := &http.Client{Timeout: 10 * time.Second}

	get := func(path, token string) (time.Duration, response) {
		t.Helper()
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		d := time.Since(start)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return d, response{status: res.StatusCode, header: res.Header, body: body}
	}

	const records = "/collections/guests/records/"
	classes := []struct{ name, path string }{
		{"A globex record that exists", "/v1/tenants/" + victimTenant + records + vRecord},
		{"B tenant that does not exist", "/v1/tenants/" + ghostTenant + records + vRecord},
		{"C globex record that does not exist", "/v1/tenants/" + victimTenant + records + randomLike(vRecord, false)},
	}
	const n = 300
	samples := make([][]float64, len(classes))
	var want string
	mark := 0
	for i := -30; i < n; i++ { // 30 rounds of warm-up
		if i == 0 {
			mark = calls.mark()
		}
		for j := range classes {
			c := (i + 30 + j) % len(classes)
			d, r := get(classes[c].path, attacker.Token)
			if r.status != http.StatusNotFound {
				t.Fatalf("%s: %d %s", classes[c].name, r.status, r.body)
			}
			if p := normProblem(r) + "\n" + normHeaders(r.header); want == "" {
				want = p
			} else if p != want {
				t.Fatalf("%s: the 404 differs:\n%s\nvs\n%s", classes[c].name, p, want)
			}
			if i >= 0 {
				samples[c] = append(samples[c], float64(d.Microseconds()))
			}
		}
	}
	made := calls.since(mark)
	if beyond := callsBeyondAuth(made); len(beyond) > 0 {
		t.Errorf("the cross-tenant 404 called services beyond authentication: %d calls, such as %v", len(beyond), beyond[:min(5, len(beyond))])
	}
	if len(made) != n*len(classes) {
		t.Errorf("%d service calls for %d requests: want exactly one authentication each", len(made), n*len(classes))
	}

	med := make([]float64, len(classes))
	mad := make([]float64, len(classes))
	for c := range classes {
		med[c], mad[c] = medianMAD(samples[c])
		t.Logf("%-38s median %7.0f µs  MAD %6.0f µs  (n=%d)", classes[c].name, med[c], mad[c], len(samples[c]))
	}
	for i := range classes {
		for j := i + 1; j < len(classes); j++ {
			diff := math.Abs(med[i] - med[j])
			pooled := math.Sqrt((mad[i]*mad[i] + mad[j]*mad[j]) / 2)
			bound := math.Max(3*pooled, 2000)
			t.Logf("%c vs %c: median difference %.0f µs, bound %.0f µs", classes[i].name[0], classes[j].name[0], diff, bound)
			if diff > bound {
				t.Errorf("%s vs %s: the medians differ by %.0f µs (bound %.0f µs): the not-found path tells them apart", classes[i].name, classes[j].name, diff, bound)
			}
		}
	}

	// For scale, not asserted: the victim's own key on the same paths,
	// which does look the record up (and, when it exists, decrypts and
	// audits the read).
	var own [2][]float64
	for i := range 60 {
		for j := range 2 {
			c := (i + j) % 2
			d, r := get(classes[[]int{0, 2}[c]].path, victim.Token)
			if want := []int{200, 404}[c]; r.status != want {
				t.Fatalf("the victim's own read: %d, want %d: %s", r.status, want, r.body)
			}
			own[c] = append(own[c], float64(d.Microseconds()))
		}
	}
	for c, name := range []string{"victim key, its record (read, audited)", "victim key, a missing record (lookup)"} {
		m, d := medianMAD(own[c])
		t.Logf("%-38s median %7.0f µs  MAD %6.0f µs  (n=%d; for scale)", name, m, d, len(own[c]))
	}
}

// medianMAD returns the median and the median absolute deviation.
func medianMAD(xs []float64) (float64, float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	m := medianOf(s)
	dev := make([]float64, len(s))
	for i, x := range s {
		dev[i] = math.Abs(x - m)
	}
	slices.Sort(dev)
	return m, medianOf(dev)
}

func medianOf(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
