package ui_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit/browser"
)

// The steps of TestBrowserScenario that go through the data and privacy
// pages' forms: define a collection, upload and play a recording, record
// consent and watch the chart, answer a data-subject request (export,
// erase, receipt verified with the CLI).

// defineCollection defines collection name with schema through the
// collections page's form and checks through the API that it exists
// with the schema's fields.
func defineCollection(t *testing.T, n *browser.Node, s *browser.Session, tenant, name, schema string) {
	t.Helper()
	if p := s.Open(t, "/ui/t/"+tenant+"/data"); p.Status != http.StatusOK {
		t.Fatalf("the collections page: HTTP %d: %s", p.Status, browserClip(s.Text(t)))
	}
	// Typed as one line: a person's keystrokes, without the newlines.
	p := s.Submit(t, `form[data-api="PUT /tenants/:id/collections/:name"]`, "name", name, "schema", strings.Join(strings.Fields(schema), " "))
	if txt := s.Text(t); p.Status != http.StatusOK || pathOf(p) != "/ui/t/"+tenant+"/data/"+name || !strings.Contains(txt, "Collection "+name+" created") {
		t.Fatalf("define the collection %s through the form: HTTP %d at %s: %s", name, p.Status, p.Path, browserClip(txt))
	}
	c, err := n.Owner(tenant).Collection(context.Background(), tenant, name)
	if err != nil {
		t.Fatalf("the collection %s defined through the form, read through the API: %v", name, err)
	}
	var fields []string
	for _, f := range c.Fields {
		fields = append(fields, f.Name)
	}
	if !slices.Equal(fields, []string{"email", "notes", "room"}) || !c.SubjectRequired {
		t.Errorf("the collection %s as the API has it: fields %v, subject_required %v; want email, notes, room and true", name, fields, c.SubjectRequired)
	}
}

// wav is a mono 16-bit PCM WAV file of a 440 Hz tone lasting seconds.
func wav(seconds float64) []byte {
	const rate = 8000
	samples := int(rate * seconds)
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36 + 2*samples))
	b.WriteString("WAVEfmt ")
	le(uint32(16))       // the fmt chunk's size
	le(uint16(1))        // PCM
	le(uint16(1))        // mono
	le(uint32(rate))     // samples a second
	le(uint32(rate * 2)) // bytes a second
	le(uint16(2))        // bytes a frame
	le(uint16(16))       // bits a sample
	b.WriteString("data")
	le(uint32(2 * samples))
	for i := range samples {
		le(int16(8000 * math.Sin(2*math.Pi*440*float64(i)/rate)))
	}
	return b.Bytes()
}

// playback is what the page's <audio> element says after play().
type playback struct {
	Error       string  `json:"error"`
	ReadyState  int     `json:"readyState"`
	Duration    float64 `json:"duration"`
	CurrentTime float64 `json:"currentTime"`
}

// playJS plays the page's <audio> (muted) and answers once it has
// played a little, ended or failed.
const playJS = `(async () => {
  const a = document.querySelector("main audio");
  if (!a) return {error: "the page has no <audio> element"};
  a.muted = true;
  try { await a.play(); } catch (e) { return {error: "play(): " + e}; }
  await new Promise(done => {
    if (a.currentTime > 0 || a.ended) return done();
    for (const ev of ["timeupdate", "ended", "error"]) a.addEventListener(ev, done, {once: true});
  });
  return {error: a.error ? "media error " + a.error.code + ": " + a.error.message : "",
    readyState: a.readyState, duration: a.duration, currentTime: a.currentTime};
})()`

// recording uploads a one-second WAV of subject through the recordings
// page's form, opens its page and plays it in the page's player, whose
// requests for the content are answered 206 (ranges). It returns the
// blob's id.
func recording(t *testing.T, n *browser.Node, s *browser.Session, tenant, subject string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "call.wav")
	sound := wav(1)
	if err := os.WriteFile(file, sound, 0o600); err != nil {
		t.Fatalf("write the recording: %v", err)
	}
	if p := s.Open(t, "/ui/t/"+tenant+"/blobs"); p.Status != http.StatusOK {
		t.Fatalf("the recordings page: HTTP %d: %s", p.Status, browserClip(s.Text(t)))
	}
	const form = `form[data-api="POST /tenants/:id/blobs"]`
	s.Upload(t, form+` input[name="file"]`, file)
	p := s.Submit(t, form, "subject", subject)
	prefix := "/ui/t/" + tenant + "/blobs/"
	txt := s.Text(t)
	if p.Status != http.StatusOK || !strings.HasPrefix(p.Path, prefix) || !strings.Contains(txt, "Uploaded") {
		t.Fatalf("upload a recording through the form: HTTP %d at %s: %s", p.Status, p.Path, browserClip(txt))
	}
	id := strings.TrimPrefix(pathOf(p), prefix)
	b, err := n.Owner(tenant).BlobMetadata(context.Background(), tenant, id)
	if err != nil {
		t.Fatalf("the uploaded recording %s, read through the API: %v", id, err)
	}
	if b.Size != int64(len(sound)) || b.Subject != subject || !strings.HasPrefix(b.ContentType, "audio/") {
		t.Errorf("the uploaded recording as the API has it: %d bytes of %s, subject %q; want %d bytes of audio/*, subject %q", b.Size, b.ContentType, b.Subject, len(sound), subject)
	}

	// Its page (open again, as a person who follows a link to it would).
	if p := s.Open(t, prefix+id); p.Status != http.StatusOK {
		t.Fatalf("the recording's page: HTTP %d: %s", p.Status, browserClip(s.Text(t)))
	}
	got, err := browser.Eval[playback](s, playJS)
	if err != nil {
		t.Fatalf("play the recording: %v", err)
	}
	s.Shot(t, prefix+id+" playing")
	t.Logf("the recording in the page's player: %+v", got)
	if got.Error != "" || got.ReadyState < 2 || got.Duration <= 0.9 || got.Duration >= 1.1 {
		t.Errorf("the recording in the page's player: %+v; want no error, readyState >= 2 (HAVE_CURRENT_DATA) and the file's one second", got)
	}
	content := s.Responses(prefix + id + "/content")
	partial := false
	for _, r := range content {
		partial = partial || (r.Status == http.StatusPartialContent && strings.HasPrefix(r.ContentRange, "bytes "))
		if r.Status >= 400 {
			t.Errorf("the player's request for the content: HTTP %d (%s)", r.Status, r.URL)
		}
	}
	if !partial {
		t.Errorf("the player's requests for the content got no 206 with a Content-Range: %+v", content)
	}
	t.Logf("the player's requests for the content: %+v", content)
	return id
}

// purpose is the consent purpose the scenario charts.
const purpose = "call-recording"

// consentChart defines a consent purpose through the consent page's form,
// then records grants (of every subject in grant) and a withdrawal (of
// withdraw) through the subject consent page's forms, and sees the
// chart's values move: empty before anyone decided, 100% after the
// grants, lower after the withdrawal.
func consentChart(t *testing.T, n *browser.Node, s *browser.Session, tenant string, grant []string, withdraw string) {
	t.Helper()
	consent := "/ui/t/" + tenant + "/privacy/consent"
	if p := s.Open(t, consent); p.Status != http.StatusOK {
		t.Fatalf("the consent page: HTTP %d: %s", p.Status, browserClip(s.Text(t)))
	}
	p := s.Submit(t, `form[data-api="POST /tenants/:id/purposes"]`, "id", purpose, "description", "Calls are recorded for quality and training", "basis", "consent")
	if p.Status != http.StatusOK || !strings.Contains(s.Text(t), purpose) {
		t.Fatalf("define the purpose %s through the form: HTTP %d at %s: %s", purpose, p.Status, p.Path, browserClip(s.Text(t)))
	}
	if _, err := n.Owner(tenant).Purpose(context.Background(), tenant, purpose); err != nil {
		t.Fatalf("the purpose defined through the form, read through the API: %v", err)
	}

	before := chartRate(t, s, consent)
	for _, sid := range grant {
		consentForm(t, s, tenant, sid, "grant", "said yes when the call began")
	}
	granted := chartRate(t, s, consent)
	if granted == before || granted != "100%" {
		t.Errorf("the consent chart after %d grants: today's rate of %s is %q (before: %q), want 100%%", len(grant), purpose, granted, before)
	}
	consentForm(t, s, tenant, withdraw, "withdraw", "asked not to be recorded")
	after := chartRate(t, s, consent)
	want := fmt.Sprintf("%.0f%%", 100*float64(len(grant)-1)/float64(len(grant)))
	t.Logf("today's consent rate of %s in the chart: %q before, %q after %d grants, %q after a withdrawal", purpose, before, granted, len(grant), after)
	if after == granted || after != want {
		t.Errorf("the consent chart after a withdrawal: today's rate of %s is %q (before it: %q), want %s", purpose, after, granted, want)
	}
}

// consentForm records a grant or a withdrawal ("grant", "withdraw") of
// purpose for subject sid through its consent page's form.
func consentForm(t *testing.T, s *browser.Session, tenant, sid, kind, evidence string) {
	t.Helper()
	if p := s.Open(t, "/ui/t/"+tenant+"/privacy/consent/"+sid); p.Status != http.StatusOK {
		t.Fatalf("the consent page of %s: HTTP %d: %s", sid, p.Status, browserClip(s.Text(t)))
	}
	form := `form[data-api="POST /tenants/:id/consent/:sid/` + kind + `"]`
	box := form + ` input[name="purpose"][value="` + purpose + `"]`
	if !browser.MustEval[bool](t, s, `(() => { const b = document.querySelector('`+box+`'); if (!b) return false; b.checked = true; return true })()`) {
		t.Fatalf("the %s form of %s has no box for %s: %s", kind, sid, purpose, browserClip(s.Text(t)))
	}
	p := s.Submit(t, form, "evidence", evidence)
	if txt := s.Text(t); p.Status != http.StatusOK || !strings.Contains(txt, purpose) {
		t.Fatalf("record a %s of %s through the form: HTTP %d at %s: %s", kind, sid, p.Status, p.Path, browserClip(txt))
	}
}

// chartRateJS is today's value of purpose in the consent chart's table of
// values ("" when the chart has none), its <details> opened as a person
// reading it does.
const chartRateJS = `(() => {
  const d = document.querySelector("figure.chart details");
  if (!d) return "";
  d.open = true;
  const heads = Array.from(d.querySelectorAll("thead th")).map(th => th.textContent.trim());
  const col = heads.indexOf(%q);
  const rows = d.querySelectorAll("tbody tr");
  if (col < 0 || rows.length === 0) return "";
  return rows[rows.length - 1].children[col].textContent.trim();
})()`

// chartRate opens the consent page and reads today's rate of purpose
// from the chart's values, checking the rates table says the same.
func chartRate(t *testing.T, s *browser.Session, consent string) string {
	t.Helper()
	if p := s.Open(t, consent); p.Status != http.StatusOK {
		t.Fatalf("the consent page: HTTP %d: %s", p.Status, browserClip(s.Text(t)))
	}
	v := browser.MustEval[string](t, s, fmt.Sprintf(chartRateJS, purpose))
	s.Shot(t, consent+" values "+v)
	table := browser.MustEval[string](t, s, `(() => { const c = document.querySelector('table.consent-rates tr[data-purpose="`+purpose+`"] [data-rate]'); return c ? c.textContent.trim() : "" })()`)
	if v != "" && v != table {
		t.Errorf("the consent chart says %s for %s today, the rates table %q", v, purpose, table)
	}
	return v
}

// subjectRequest answers two data-subject requests of subject through
// the requests pages: an access request, exported (the archive
// downloaded through the page's link, a tar.gz the CLI verifies), and
// an erasure request, erased with the typed confirmation (the signed
// receipt downloaded and verified with the CLI).
func subjectRequest(t *testing.T, n *browser.Node, s *browser.Session, tenant, subject string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	key := n.CLI("audit", "key")
	if key.Code != 0 {
		t.Fatalf("custos audit key: %v", key)
	}
	keyFile := filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(keyFile, []byte(key.Stdout), 0o600); err != nil {
		t.Fatalf("write the audit key: %v", err)
	}

	// Access: exported, the archive downloaded.
	base := openRequest(t, s, tenant, "access", subject)
	p := s.Click(t, `a[href="`+base+`/export"]`)
	if p.Status != http.StatusOK {
		t.Fatalf("the export page: HTTP %d: %s", p.Status, browserClip(s.Text(t)))
	}
	p = s.Submit(t, `form[data-api="POST /tenants/:id/requests/:rid/export"]`, "compression", "gzip")
	if txt := s.Text(t); p.Status != http.StatusOK || !strings.Contains(txt, "ready") || !strings.Contains(txt, "completed") {
		t.Fatalf("build the export: HTTP %d at %s: %s", p.Status, p.Path, browserClip(txt))
	}
	archive := s.Download(t, `a[href*="/privacy/exports/"]`)
	names, err := tarGzNames(archive)
	if err != nil {
		t.Fatalf("the downloaded export (%d bytes) is no tar.gz: %v", len(archive), err)
	}
	if len(names) < 2 {
		t.Errorf("the downloaded export holds %v: want the manifest and the subject's data", names)
	}
	exportFile := filepath.Join(dir, "export.tar.gz")
	if err := os.WriteFile(exportFile, archive, 0o600); err != nil {
		t.Fatalf("write the export: %v", err)
	}
	// (The CLI names the subject by its pseudonym.)
	if v := n.CLI("dsr", "verify-export", "--key", keyFile, exportFile); v.Code != 0 || !strings.HasPrefix(v.Stdout, "OK: export of ") ||
		!strings.Contains(v.Stdout, "for tenant "+tenant+", request "+path.Base(base)+",") {
		t.Errorf("custos dsr verify-export of the downloaded export: %v", v)
	}

	// Erasure: erased with the typed subject id, the receipt downloaded.
	base = openRequest(t, s, tenant, "erasure", subject)
	if p := s.Click(t, `a[href="`+base+`/erase"]`); p.Status != http.StatusOK {
		t.Fatalf("the erasure page: HTTP %d: %s", p.Status, browserClip(s.Text(t)))
	}
	const erase = `form[data-api="POST /tenants/:id/requests/:rid/erase"]`
	p = s.Submit(t, erase, "confirm", subject+"x")
	if txt := s.Text(t); p.Status != http.StatusBadRequest || !strings.Contains(txt, "Nothing was erased") {
		t.Errorf("an erasure confirmed with the wrong subject id: HTTP %d: %s", p.Status, browserClip(txt))
	}
	p = s.Submit(t, erase, "confirm", subject)
	if txt := s.Text(t); p.Status != http.StatusOK || !strings.Contains(txt, "Erased:") || !strings.Contains(txt, "Erasure receipt") {
		t.Fatalf("erase the subject: HTTP %d at %s: %s", p.Status, p.Path, browserClip(txt))
	}
	receipt := s.Download(t, `a[href="`+base+`/receipt"]`)
	receiptFile := filepath.Join(dir, "erasure.receipt")
	if err := os.WriteFile(receiptFile, receipt, 0o600); err != nil {
		t.Fatalf("write the receipt: %v", err)
	}
	v := n.CLI("dsr", "verify-receipt", "--key", keyFile, receiptFile)
	if v.Code != 0 || !strings.HasPrefix(v.Stdout, "OK: ") || !strings.Contains(v.Stdout, " erased from tenant "+tenant+" ") ||
		!strings.Contains(v.Stdout, "(request "+path.Base(base)+")") || !strings.Contains(v.Stdout, "records 1") || !strings.Contains(v.Stdout, "blobs 1") {
		t.Errorf("custos dsr verify-receipt of the downloaded receipt: %v", v)
	}
	// And the subject's record is gone.
	_, err = n.Owner(tenant).Record(ctx, tenant, "guests", "d1", true)
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("the erased subject's record through the API: %v, want 404", err)
	}
}

// openRequest records a request of kind for subject through the requests
// page's form and marks the subject verified through the request page's
// form; it returns the request page's path.
func openRequest(t *testing.T, s *browser.Session, tenant, kind, subject string) string {
	t.Helper()
	if p := s.Open(t, "/ui/t/"+tenant+"/privacy/requests"); p.Status != http.StatusOK {
		t.Fatalf("the requests page: HTTP %d: %s", p.Status, browserClip(s.Text(t)))
	}
	p := s.Submit(t, `form[data-api="POST /tenants/:id/requests"]`, "kind", kind, "subject", subject)
	prefix := "/ui/t/" + tenant + "/privacy/requests/"
	if txt := s.Text(t); p.Status != http.StatusOK || !strings.HasPrefix(p.Path, prefix) || !strings.Contains(txt, "recorded") {
		t.Fatalf("record a %s request through the form: HTTP %d at %s: %s", kind, p.Status, p.Path, browserClip(txt))
	}
	base := pathOf(p)
	p = s.Submit(t, `form[aria-label="Verify the subject"]`, "evidence", "passport seen at the front desk")
	if txt := s.Text(t); p.Status != http.StatusOK || !strings.Contains(txt, "verified") {
		t.Fatalf("verify the subject of the %s request: HTTP %d at %s: %s", kind, p.Status, p.Path, browserClip(txt))
	}
	return base
}

// pathOf is the page's path without its query.
func pathOf(p *browser.Page) string {
	path, _, _ := strings.Cut(p.Path, "?")
	return path
}

// tarGzNames are the names of the files of a gzip'd tar.
func tarGzNames(data []byte) ([]string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return names, fmt.Errorf("tar: %w", err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return names, fmt.Errorf("tar: %s: %w", h.Name, err)
		}
		names = append(names, h.Name)
	}
}
