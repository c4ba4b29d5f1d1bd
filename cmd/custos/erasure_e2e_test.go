package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2EErasure (issue 13, acceptance 2): on a cluster of three custos
// processes, a subject with records in three collections, records of
// others that refer to them (one erased with them, one detached), two
// recordings and a consent grant with evidence, among another subject's
// data, is erased through a
// verified erasure request with `custos dsr erase`. Afterwards every
// route answers, through every node, as if the subject never existed —
// records, the ref followed, blobs, finds by blind index, the subject
// listing — while the other subject's data is intact; the receipt
// verifies offline with `custos dsr verify-receipt` and fails once
// altered; and after the compaction window (1 s here) no file of any
// node holds the subject's id (which named its data key, its index
// buckets and its blobs' entries) or any canary of its data.
func TestE2EErasure(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartClusterWith(t, bin, "[keyring]\ncompact_window = \"1s\"\n")
	n := c.Nodes[0]
	ctx := context.Background()
	must := e2e.Must(t)
	must(c.CLI(n, "tenant", "create", "acme"), "tenant create")
	api := c.TenantAPI(n, "acme")
	const (
		subject = "subj-7c41e9-erasecanary"
		other   = "subj-other-2b"
		canary  = "CANARY-ERASE-91f3"
		control = "controlerasurecollection"
	)
	schemas := map[string]string{
		control:    `{"fields":[{"name":"email","type":"string","classification":"pii","index":true},{"name":"note","type":"string","classification":"sensitive"}]}`,
		"notes":    `{"fields":[{"name":"guest","type":"ref","collection":"` + control + `","on_erase":"erase","classification":"internal"},{"name":"text","type":"string","classification":"pii","index":true}]}`,
		"bookings": `{"fields":[{"name":"guest","type":"ref","collection":"` + control + `","classification":"internal"},{"name":"room","type":"string","classification":"internal","index":true}]}`,
	}
	for name, s := range schemas {
		if _, err := api.PutCollection(ctx, "acme", name, rawJSON(s)); err != nil {
			t.Fatalf("collection %s: %v", name, err)
		}
	}
	create := func(col, id, subj string, fields map[string]any) {
		t.Helper()
		body := map[string]any{"id": id, "fields": fields}
		if subj != "" {
			body["subject"] = subj
		}
		if _, err := api.CreateRecord(ctx, "acme", col, body); err != nil {
			t.Fatalf("record %s/%s: %v", col, id, err)
		}
	}
	// The subject: a guest record, a note and a booking of its own.
	create(control, "g1", subject, map[string]any{"email": canary + "@example.com", "note": canary + " has a nut allergy"})
	create("notes", "n1", subject, map[string]any{"text": canary + " asked for a late checkout"})
	create("bookings", "b1", subject, map[string]any{"guest": "g1", "room": "101"})
	// Others' records that refer to it: a note erased with it (on_erase
	// erase), a booking detached (on_erase detach, the default).
	create("notes", "n2", "", map[string]any{"guest": "g1", "text": canary + " called reception"})
	create("bookings", "b2", other, map[string]any{"guest": "g1", "room": "202"})
	// The other subject.
	create(control, "g2", other, map[string]any{"email": "other@example.com", "note": "keep me"})
	create("notes", "n3", "", map[string]any{"guest": "g2", "text": "about the other"})
	blob := func(subj, content string) string {
		t.Helper()
		data := bytes.Repeat([]byte(content), 20000)
		sum := sha256.Sum256(data)
		b, err := api.UploadBlob(ctx, "acme", client.BlobUpload{Body: bytes.NewReader(data), Size: int64(len(data)), ContentType: "audio/wav", SHA256: sum[:], Subject: subj})
		if err != nil {
			t.Fatalf("blob: %v", err)
		}
		return b.ID
	}
	blobs := []string{blob(subject, canary+" spoke about the booking. "), blob(subject, canary+" second call. ")}
	otherBlob := blob(other, "the other subject spoke. ")
	// Consent: both subjects agreed to call recording, with evidence.
	if _, err := api.CreatePurpose(ctx, "acme", client.NewPurpose{ID: "call-recording", Description: "Calls are recorded", Basis: "consent"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{subject, other} {
		if _, err := api.Grant(ctx, "acme", s, client.ConsentChange{Purposes: []string{"call-recording"}, Source: "ivr", Evidence: &client.Evidence{Text: canary + " said yes"}}); err != nil {
			t.Fatalf("grant %s: %v", s, err)
		}
	}

	// A verified erasure request of the subject.
	req, err := api.CreateDSR(ctx, "acme", client.NewDSR{Kind: "erasure", Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.TransitionDSR(ctx, "acme", req.ID, client.DSRTransition{To: "verified", Evidence: &client.DSREvidence{Method: "document", Text: "passport seen"}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	receiptFile, keyFile := filepath.Join(dir, "receipt.txt"), filepath.Join(dir, "audit.pub")
	r := c.TenantCLI(c.Nodes[1], "acme", "dsr", "erase", "acme", req.ID, "--receipt-out", receiptFile)
	must(r, "dsr erase")
	if !strings.Contains(r.Stdout, "records 3") || !strings.Contains(r.Stdout, "linked-records 1") || !strings.Contains(r.Stdout, "detached-records 1") || !strings.Contains(r.Stdout, "blobs 2") || !strings.Contains(r.Stdout, "consent-events 1") {
		t.Fatalf("dsr erase: %s", r.Stdout)
	}
	if done, err := api.DSR(ctx, "acme", req.ID); err != nil || done.Status != "completed" {
		t.Fatalf("the request after the erasure: %+v %v", done, err)
	}

	// The receipt verifies offline, and fails once altered.
	key := c.CLI(n, "audit", "key")
	must(key, "audit key")
	writeFile(t, keyFile, []byte(key.Stdout))
	v := e2e.RunCLI(t, bin, "dsr", "verify-receipt", "--key", keyFile, receiptFile)
	if v.Code != 0 || !strings.HasPrefix(v.Stdout, "OK:") {
		t.Fatalf("verify-receipt: %v", v)
	}
	rc, err := os.ReadFile(receiptFile)
	if err != nil {
		t.Fatal(err)
	}
	altered := filepath.Join(dir, "altered.txt")
	writeFile(t, altered, bytes.Replace(rc, []byte("count blobs 2"), []byte("count blobs 1"), 1))
	if v := e2e.RunCLI(t, bin, "dsr", "verify-receipt", "--key", keyFile, altered); v.Code == 0 {
		t.Fatalf("an altered receipt verified: %v", v)
	}

	// Every node answers as if the subject never existed; the other
	// subject's data is intact.
	gone := func(err error) bool {
		var ce *client.Error
		return errors.As(err, &ce) && ce.Status == http.StatusNotFound
	}
	for _, node := range c.Nodes {
		napi := c.TenantAPI(node, "acme")
		for _, rec := range [][2]string{{control, "g1"}, {"notes", "n1"}, {"bookings", "b1"}, {"notes", "n2"}} {
			if _, err := napi.Record(ctx, "acme", rec[0], rec[1], false); !gone(err) {
				t.Errorf("%s: %s/%s after the erasure: %v", node.ID, rec[0], rec[1], err)
			}
		}
		b2, err := napi.Record(ctx, "acme", "bookings", "b2", false)
		if err != nil {
			t.Fatalf("%s: b2: %v", node.ID, err)
		}
		if f, _ := b2["fields"].(map[string]any); f["guest"] != nil || f["room"] != "202" {
			t.Errorf("%s: b2 not detached: %v", node.ID, b2)
		}
		for _, find := range [][3]string{{control, "email", canary + "@example.com"}, {"notes", "text", canary + " called reception"}, {"bookings", "room", "101"}} {
			if ids, err := napi.FindRecords(ctx, "acme", find[0], find[1], `"`+find[2]+`"`, 10); err != nil || len(ids.IDs) != 0 {
				t.Errorf("%s: find %v: %v %v", node.ID, find, ids, err)
			}
		}
		var held map[string]any
		if err := napi.Do(ctx, "GET", "/v1/tenants/acme/subjects/"+subject, nil, &held); !gone(err) {
			t.Errorf("%s: the subject's listing: %+v %v", node.ID, held, err)
		}
		for _, id := range blobs {
			if _, err := napi.BlobMetadata(ctx, "acme", id); !gone(err) {
				t.Errorf("%s: blob %s: %v", node.ID, id, err)
			}
		}
		if page, err := napi.Blobs(ctx, "acme", subject, 10, ""); err != nil || len(page.Blobs) != 0 {
			t.Errorf("%s: blobs of the subject: %+v %v", node.ID, page, err)
		}
		if h, err := napi.ConsentHistory(ctx, "acme", subject); err != nil && !gone(err) || len(h) != 0 {
			t.Errorf("%s: the subject's consent history: %+v %v", node.ID, h, err)
		}
		// The other subject: intact.
		if h, err := napi.ConsentHistory(ctx, "acme", other); err != nil || len(h) != 1 {
			t.Errorf("%s: the other subject's consent history: %+v %v", node.ID, h, err)
		}
		if _, err := napi.Record(ctx, "acme", control, "g2", false); err != nil {
			t.Errorf("%s: g2: %v", node.ID, err)
		}
		if _, err := napi.Record(ctx, "acme", "notes", "n3", false); err != nil {
			t.Errorf("%s: n3: %v", node.ID, err)
		}
		if _, err := napi.BlobMetadata(ctx, "acme", otherBlob); err != nil {
			t.Errorf("%s: the other subject's blob: %v", node.ID, err)
		}
		if ids, err := napi.FindRecords(ctx, "acme", control, "email", `"other@example.com"`, 10); err != nil || len(ids.IDs) != 1 {
			t.Errorf("%s: find the other subject: %v %v", node.ID, ids, err)
		}
	}
	if l, err := api.Erasures(ctx, "acme"); err != nil || len(l.Erasures) != 1 || l.Erasures[0].Request != req.ID || !l.Erasures[0].KeyShredded {
		t.Fatalf("erasure ledger: %+v %v", l, err)
	}

	// After the compaction window, no file of any node holds the
	// subject's id or a canary; the control (a collection name, in the
	// clear) shows the scan sees.
	testkit.Poll(t, 90*time.Second, "no trace of the subject in any node's files", func() error {
		var found []string
		controls := 0
		for _, node := range c.Nodes {
			testkit.ScanFiles(t, func(p string, data []byte) {
				if bytes.Contains(data, []byte(control)) {
					controls++
				}
				for _, s := range []string{subject, canary} {
					if bytes.Contains(data, []byte(s)) || bytes.Contains(bytes.ToLower(data), []byte(strings.ToLower(s))) {
						found = append(found, fmt.Sprintf("%s in %s", s, p))
					}
				}
			}, node.DataDir)
		}
		if controls < 3 {
			t.Fatalf("the plaintext control was found in only %d files: the scan is blind", controls)
		}
		if len(found) > 0 {
			return fmt.Errorf("%s", strings.Join(found, "; "))
		}
		return nil
	})
}

// rawJSON is a JSON document sent as it is.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }
