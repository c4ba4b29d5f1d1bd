package api_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/privacy/receipt"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// TestTenantExportRoute: the Owner exports the tenant (201, the export
// with its manifest), lists it and downloads an archive whose signed
// manifest verifies with the cluster's audit key and holds the records;
// Compliance may not take the whole tenant but lists and downloads; the
// download is audited; a missing export is 404.
func TestTenantExportRoute(t *testing.T) {
	e := newEnv(t, api.Options{})
	e.mustCreate("acme", "Acme")
	owner := e.createKey(t, "acme", `{"name":"owner","role":"owner"}`)
	compliance := e.createKey(t, "acme", `{"name":"dpo","role":"compliance"}`)
	if r := e.do("PUT", "/v1/tenants/acme/collections/guests", `{"fields":[{"name":"email","type":"string","classification":"pii"}]}`, as(owner)); r.status != http.StatusCreated {
		t.Fatalf("collection: %d %s", r.status, r.body)
	}
	for _, id := range []string{"g1", "g2"} {
		if r := e.do("POST", "/v1/tenants/acme/collections/guests/records", `{"id":"`+id+`","subject":"s-`+id+`","fields":{"email":"`+id+`@example.com"}}`, as(owner)); r.status != http.StatusCreated {
			t.Fatalf("record: %d %s", r.status, r.body)
		}
	}
	checkProblem(t, e.do("POST", "/v1/tenants/acme/export", "", as(compliance)), http.StatusForbidden, "forbidden", "")
	checkProblem(t, e.do("POST", "/v1/tenants/acme/export", `{"format":"xml"}`, as(owner)), http.StatusUnprocessableEntity, "validation", "")
	r := e.do("POST", "/v1/tenants/acme/export", `{"format":"csv","compression":"zip"}`, as(owner))
	if r.status != http.StatusCreated {
		t.Fatalf("export: %d %s", r.status, r.body)
	}
	var x client.Export
	r.json(t, &x)
	if x.Kind != "tenant" || x.Counts["records"] != 2 || !strings.HasPrefix(x.Manifest, "custos-export-manifest v1\n") {
		t.Fatalf("export %+v", x)
	}
	var l client.ExportList
	e.do("GET", "/v1/tenants/acme/exports", "", as(compliance)).json(t, &l)
	if len(l.Exports) != 1 || l.Exports[0].ID != x.ID {
		t.Fatalf("list %+v", l)
	}
	d := e.do("GET", "/v1/tenants/acme/exports/"+x.ID, "", as(compliance))
	if d.status != http.StatusOK || d.header.Get("Content-Type") != "application/zip" || int64(len(d.body)) != x.Size {
		t.Fatalf("download: %d %s, %d bytes", d.status, d.header.Get("Content-Type"), len(d.body))
	}
	files, err := receipt.ZipFS(bytes.NewReader(d.body), int64(len(d.body)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := receipt.VerifyExport([]byte(e.vkey), files)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if m.Tenant != "acme" || len(m.Files) != 2 { // records/guests.csv, blobs.json
		t.Fatalf("manifest %+v", m)
	}
	items, _, err := e.audit.List(context.Background(), raftstore.Linearizable, tenancy.ChainOf("acme"), audit.Filter{Target: "export:" + x.ID}, 0, 10)
	if err != nil || len(items) != 1 || items[0].Entry.Action != "export.download" || items[0].Entry.Actor.ID != compliance.ID {
		t.Fatalf("download entries %+v %v", items, err)
	}
	checkProblem(t, e.do("GET", "/v1/tenants/acme/exports/xaaaaaaaaaaaaaaaa", "", as(owner)), http.StatusNotFound, "not-found", "")
	checkProblem(t, e.do("POST", "/v1/tenants/acme/requests/nope/export", "", as(owner)), http.StatusNotFound, "not-found", "")
}
