package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/client"
)

// consentEnv is blobEnv (acme, guests, g1 of guest-1) with the purposes
// the consent tests use and a blob kind call-recording.
func consentEnv(t *testing.T) *env {
	t.Helper()
	e := blobEnv(t, blobs.Config{})
	for _, s := range []struct{ method, path, body string }{
		{"POST", "/v1/tenants/acme/purposes", `{"id":"call-recording","description":"Recording of calls","basis":"consent","on_withdraw":"erase"}`},
		{"POST", "/v1/tenants/acme/purposes", `{"id":"enhanced-insights","description":"Enhanced insights","basis":"consent"}`},
		{"POST", "/v1/tenants/acme/purposes", `{"id":"performance-monitoring","description":"Performance monitoring","basis":"legitimate-interest","default_on":true}`},
		{"PUT", "/v1/tenants/acme/blob-kinds/call-recording", `{"purposes":["call-recording"]}`},
	} {
		if r := e.do(s.method, s.path, s.body); r.status >= 300 {
			t.Fatalf("setup %s %s: %d %s", s.method, s.path, r.status, r.body)
		}
	}
	return e
}

// consentRefused checks r is 403 consent-required naming purpose.
func consentRefused(t *testing.T, r response, purpose string) {
	t.Helper()
	p := checkProblem(t, r, http.StatusForbidden, "consent-required", "")
	if !strings.Contains(p.Detail, purpose) {
		t.Errorf("consent-required does not name %s: %q", purpose, p.Detail)
	}
}

func grant(t *testing.T, e *env, subject, body string) {
	t.Helper()
	if r := e.do("POST", "/v1/tenants/acme/consent/"+subject+"/grant", body); r.status != http.StatusCreated {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
}

func withdraw(t *testing.T, e *env, subject, body string) {
	t.Helper()
	if r := e.do("POST", "/v1/tenants/acme/consent/"+subject+"/withdraw", body); r.status != http.StatusCreated {
		t.Fatalf("withdraw: %d %s", r.status, r.body)
	}
}

// Acceptance 3 through the API: a recording of guest-1 is refused
// without call-recording consent, accepted with it, refused after the
// withdrawal — and the accepted one is no longer served; a blob without
// subject, or of no kind, is not checked; an unknown kind is refused.
func TestConsentBlobKind(t *testing.T) {
	e := consentEnv(t)
	rec := []byte("OggS a call")
	r, _ := e.upload(t, "?subject=guest-1&kind=call-recording", "audio/ogg", rec)
	consentRefused(t, r, "call-recording")
	if r, _ := e.upload(t, "?subject=guest-1&kind=no-such-kind", "audio/ogg", rec); r.status != http.StatusUnprocessableEntity {
		t.Errorf("unknown kind: %d %s", r.status, r.body)
	}
	if r, _ := e.upload(t, "?kind=call-recording", "audio/ogg", rec); r.status != http.StatusCreated {
		t.Errorf("a subject-less recording: %d %s", r.status, r.body)
	}
	grant(t, e, "guest-1", `{"purposes":["call-recording"],"source":"ivr","evidence":{"text":"Yes, you may record this call."}}`)
	r, b := e.upload(t, "?subject=guest-1&kind=call-recording", "audio/ogg", rec)
	if r.status != http.StatusCreated || b.Kind != "call-recording" {
		t.Fatalf("upload with consent: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/tenants/acme/blobs/"+b.ID, ""); r.status != http.StatusOK {
		t.Fatalf("read with consent: %d %s", r.status, r.body)
	}
	withdraw(t, e, "guest-1", `{"purposes":["call-recording"],"source":"web"}`)
	r, _ = e.upload(t, "?subject=guest-1&kind=call-recording", "audio/ogg", rec)
	consentRefused(t, r, "call-recording")
	consentRefused(t, e.do("GET", "/v1/tenants/acme/blobs/"+b.ID, ""), "call-recording")
	if r, _ := e.upload(t, "?subject=guest-1", "audio/ogg", rec); r.status != http.StatusCreated {
		t.Errorf("a blob of no kind: %d %s", r.status, r.body)
	}
}

// A collection that requires purposes: a subject's record is written
// only with them, read until the subject withdraws; records without a
// subject are not checked; restrict-processing refuses a purpose resting
// on legitimate interest, not consent given.
func TestConsentCollection(t *testing.T) {
	e := consentEnv(t)
	checkProblem(t, e.do("PUT", "/v1/tenants/acme/collections/insights", `{"fields":[{"name":"score","type":"number","classification":"internal"}],"purposes":["no-such-purpose"]}`),
		http.StatusUnprocessableEntity, "validation", "")
	if r := e.do("PUT", "/v1/tenants/acme/collections/insights", `{"fields":[{"name":"score","type":"number","classification":"internal"}],"purposes":["enhanced-insights"]}`); r.status != http.StatusCreated ||
		!strings.Contains(string(r.body), `"purposes":["enhanced-insights"]`) {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	const records = "/v1/tenants/acme/collections/insights/records"
	consentRefused(t, e.do("POST", records, `{"id":"i1","subject":"guest-1","fields":{"score":1}}`), "enhanced-insights")
	if r := e.do("POST", records, `{"id":"anon","fields":{"score":1}}`); r.status != http.StatusCreated {
		t.Errorf("subject-less record: %d %s", r.status, r.body)
	}
	grant(t, e, "guest-1", `{"purposes":["enhanced-insights"],"source":"app"}`)
	if r := e.do("POST", records, `{"id":"i1","subject":"guest-1","fields":{"score":1}}`); r.status != http.StatusCreated {
		t.Fatalf("record with consent: %d %s", r.status, r.body)
	}
	// restrict-processing leaves consent given.
	if r := e.do("POST", "/v1/tenants/acme/consent/guest-1/flags", `{"flag":"restrict-processing","on":true,"source":"app"}`); r.status != http.StatusCreated {
		t.Fatalf("flag: %d %s", r.status, r.body)
	}
	if r := e.do("PATCH", records+"/i1", `{"fields":{"score":2}}`); r.status != http.StatusOK {
		t.Errorf("patch under restriction, consent given: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/tenants/acme/collections/perf", `{"fields":[{"name":"ms","type":"number","classification":"internal"}],"purposes":["performance-monitoring"]}`); r.status != http.StatusCreated {
		t.Fatalf("collection perf: %d %s", r.status, r.body)
	}
	consentRefused(t, e.do("POST", "/v1/tenants/acme/collections/perf/records", `{"subject":"guest-1","fields":{"ms":3}}`), "performance-monitoring")
	withdraw(t, e, "guest-1", `{"all":true,"source":"web"}`)
	consentRefused(t, e.do("GET", records+"/i1", ""), "enhanced-insights")
	consentRefused(t, e.do("PUT", records+"/i1", `{"subject":"guest-1","fields":{"score":3}}`), "enhanced-insights")
	if r := e.do("GET", records+"/anon", ""); r.status != http.StatusOK {
		t.Errorf("subject-less record after the withdrawal: %d %s", r.status, r.body)
	}
}

// Acceptance 6 for consent: unknown purposes (422 naming it), consent of
// a subject the tenant holds nothing about (404), a stale If-Match
// (412) — and nothing changed.
func TestConsentBadInput(t *testing.T) {
	e := consentEnv(t)
	before := e.chainSizes()
	p := checkProblem(t, e.do("POST", "/v1/tenants/acme/consent/guest-1/grant", `{"purposes":["call-recording","no-such-purpose"],"source":"api"}`),
		http.StatusUnprocessableEntity, "validation", "")
	if len(p.Errors) != 1 || p.Errors[0].Field != "purposes[1]" || !strings.Contains(p.Errors[0].Reason, "no-such-purpose") {
		t.Errorf("unknown purpose: %+v", p)
	}
	checkProblem(t, e.do("POST", "/v1/tenants/acme/consent/nobody/grant", `{"purposes":["call-recording"],"source":"api"}`), http.StatusNotFound, "not-found", "")
	checkProblem(t, e.do("POST", "/v1/tenants/acme/consent/nobody/flags", `{"flag":"do-not-sell","on":true,"source":"api"}`), http.StatusNotFound, "not-found", "")
	checkProblem(t, e.do("POST", "/v1/tenants/acme/consent/guest-1/withdraw", `{"purposes":["call-recording"],"all":true,"source":"api"}`), http.StatusUnprocessableEntity, "validation", "")
	checkProblem(t, e.do("POST", "/v1/tenants/acme/consent/guest-1/grant", `{"purposes":["call-recording"],"source":"fax"}`), http.StatusUnprocessableEntity, "validation", "")
	checkProblem(t, e.do("PUT", "/v1/tenants/acme/purposes/enhanced-insights", `{"description":"Insights","basis":"consent"}`, withHeader("If-Match", `"7"`)),
		http.StatusPreconditionFailed, "precondition-failed", "")
	checkProblem(t, e.do("POST", "/v1/tenants/acme/purposes", `{"id":"enhanced-insights","description":"Again","basis":"consent"}`), http.StatusConflict, "conflict", "")
	checkProblem(t, e.do("POST", "/v1/tenants/acme/purposes", `{"id":"pre-ticked","description":"A pre-ticked box","basis":"consent","default_on":true}`), http.StatusUnprocessableEntity, "validation", "")
	checkProblem(t, e.do("GET", "/v1/tenants/acme/purposes/no-such-purpose", ""), http.StatusNotFound, "not-found", "")
	for name, size := range e.chainSizes() {
		if before[name] != size {
			t.Errorf("chain %s moved from %d to %d on refused requests", name, before[name], size)
		}
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/consent/nobody", ""), http.StatusNotFound, "not-found", "")
	// Nothing was recorded for guest-1.
	var st struct{ Events int }
	if r := e.do("GET", "/v1/tenants/acme/consent/guest-1", ""); r.status != http.StatusOK {
		t.Fatalf("state: %d %s", r.status, r.body)
	} else if r.json(t, &st); st.Events != 0 {
		t.Errorf("refused requests left %d events", st.Events)
	}
	// A purpose's versions, and If-Match that matches.
	if r := e.do("PUT", "/v1/tenants/acme/purposes/enhanced-insights", `{"description":"Insights, v2","basis":"consent"}`, withHeader("If-Match", `"1"`)); r.status != http.StatusOK || r.header.Get("ETag") != `"2"` {
		t.Errorf("update: %d %s %v", r.status, r.body, r.header)
	}
	var vs struct {
		Versions []struct {
			PolicyVersion int `json:"policy_version"`
		}
	}
	if e.do("GET", "/v1/tenants/acme/purposes/enhanced-insights/versions", "").json(t, &vs); len(vs.Versions) != 2 || vs.Versions[1].PolicyVersion != 2 {
		t.Errorf("versions: %+v", vs)
	}
}

// GET .../consent-stats answers each purpose resting on agreement, today
// last, with the day's grant counted and the rate it gives; days is
// checked.
func TestConsentStats(t *testing.T) {
	e := consentEnv(t)
	grant(t, e, "guest-1", `{"purposes":["call-recording"],"source":"ivr"}`)
	r := e.do("GET", "/v1/tenants/acme/consent-stats?days=3", "")
	if r.status != http.StatusOK {
		t.Fatalf("stats: %d %s", r.status, r.body)
	}
	var got client.ConsentStats
	r.json(t, &got)
	today := time.Now().UTC().Format(time.DateOnly)
	if got.To != today || len(got.Purposes) == 0 {
		t.Fatalf("stats: %s", r.body)
	}
	found := false
	for _, p := range got.Purposes {
		if len(p.Days) != 3 || p.Days[2].Day != today {
			t.Fatalf("%s: days %+v", p.Purpose, p.Days)
		}
		if p.Purpose == "call-recording" {
			d := p.Days[2]
			found = d.Grants == 1 && d.Granted == 1 && d.Decided == 1 && d.Rate != nil && *d.Rate == 100
		}
	}
	if !found {
		t.Fatalf("call-recording today: %s", r.body)
	}
	for _, q := range []string{"days=0", "days=367", "days=x"} {
		checkProblem(t, e.do("GET", "/v1/tenants/acme/consent-stats?"+q, ""), http.StatusBadRequest, "validation", "")
	}
}
