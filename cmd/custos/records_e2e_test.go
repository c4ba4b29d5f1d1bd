package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2ERecordsThreeNodes (issue 5, acceptance 1, in part): records on a
// three-node cluster — written through one node, read through every node,
// a duplicate id refused (409), and two concurrent replaces of the same
// version through two nodes: exactly one wins, the other gets 412.
func TestE2ERecordsThreeNodes(t *testing.T) {
	bin := e2e.Binary(t)
	c := e2e.StartCluster(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hc := c.HTTPClient(10 * time.Second)
	call := func(n *e2e.Node, method, path, body, ifMatch string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, n.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		// The tenant is created by the operator; its data is read and
		// written by its Owner key (the operator reads none).
		tok := c.Token
		if strings.HasPrefix(path, "/v1/tenants/acme/") {
			tok = c.OwnerKey("acme")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	if s, b := call(n1, "POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`, ""); s != 201 {
		t.Fatalf("tenant: %d %s", s, b)
	}
	if s, b := call(n2, "PUT", "/v1/tenants/acme/collections/guests", `{"fields":[{"name":"email","type":"string","required":true,"classification":"pii","index":true},{"name":"n","type":"number","classification":"internal"}]}`, ""); s != 201 {
		t.Fatalf("collection: %d %s", s, b)
	}
	if s, b := call(n3, "POST", "/v1/tenants/acme/collections/guests/records", `{"id":"g1","fields":{"email":"a@b.c","n":0}}`, ""); s != 201 {
		t.Fatalf("create: %d %s", s, b)
	}
	for _, n := range c.Nodes {
		s, b := call(n, "GET", "/v1/tenants/acme/collections/guests/records/g1", "", "")
		var rec struct {
			Version uint64                     `json:"version"`
			Fields  map[string]json.RawMessage `json:"fields"`
		}
		if s != 200 || json.Unmarshal(b, &rec) != nil || string(rec.Fields["email"]) != `"a@b.c"` || rec.Version != 1 {
			t.Fatalf("%s: get: %d %s", n.ID, s, b)
		}
	}
	if s, b := call(n1, "POST", "/v1/tenants/acme/collections/guests/records", `{"id":"g1","fields":{"email":"x@y.z"}}`, ""); s != 409 {
		t.Fatalf("duplicate id: %d %s", s, b)
	}
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i, n := range []*e2e.Node{n1, n2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = call(n, "PUT", "/v1/tenants/acme/collections/guests/records/g1", `{"fields":{"email":"a@b.c","n":`+string(rune('1'+i))+`}}`, `"1"`)
		}()
	}
	wg.Wait()
	if !(statuses[0] == 200 && statuses[1] == 412 || statuses[0] == 412 && statuses[1] == 200) {
		t.Fatalf("concurrent replaces of version 1: %v, want one 200 and one 412", statuses)
	}
	s, b := call(n3, "GET", "/v1/tenants/acme/collections/guests/records/g1", "", "")
	if s != 200 || !strings.Contains(string(b), `"version":2`) {
		t.Fatalf("after the race: %d %s", s, b)
	}
}
