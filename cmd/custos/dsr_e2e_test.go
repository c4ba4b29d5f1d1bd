package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/custos/custos/internal/testkit/e2e"
)

// TestE2EDataSubjectRequests: with the built binary, a tenant set to CCPA
// in Los Angeles; the desk (a Front-of-house key) records a guest's
// request and may not read requests; Compliance verifies and extends it
// (45 + 45 days), a duplicate and a step out of order are refused with
// their problems, a rectification is applied to the guest's record, and
// the summary counts what is open.
func TestE2EDataSubjectRequests(t *testing.T) {
	bin := e2e.Binary(t)
	node := e2e.StartDevNode(t, bin, "e2e-dsr-token")
	must := e2e.Must(t)
	owner := func(args ...string) e2e.CLIResult { return node.TenantCLI(t, "acme", args...) }
	file := e2e.Files(t, node.Dir)
	must(node.CLI(t, "tenant", "create", "acme"), "tenant create")
	r := must(node.CLI(t, "tenant", "update", "acme", "--regulation", "ccpa", "--time-zone", "America/Los_Angeles", "--retention-days", "730"), "tenant update")
	if !strings.Contains(r.Stdout, "Regulation: ccpa, time zone America/Los_Angeles") || !strings.Contains(r.Stdout, "records kept 730 days") {
		t.Errorf("tenant update: %v", r)
	}
	if r := node.CLI(t, "tenant", "update", "acme", "--regulation", "hipaa"); r.Code == 0 || !strings.Contains(r.Stderr, "regulation") {
		t.Errorf("tenant update --regulation hipaa: %v", r)
	}
	must(owner("collection", "put", "acme", "guests", "--file", file("guests.json", `{"fields":[
		{"name":"email","type":"string","required":true,"classification":"pii","index":true}],"subject_required":true}`)), "collection put")
	must(owner("record", "create", "acme", "guests", "--file", file("g1.json", `{"id":"g1","subject":"guest-1","fields":{"email":"old@example.com"}}`)), "record create")

	as := func(role string) func(args ...string) e2e.CLIResult {
		r := must(node.CLI(t, "apikey", "create", "acme", "--name", role, "--role", role, "--format", "json"), "apikey create --role "+role)
		var k struct{ Token string }
		if json.Unmarshal([]byte(r.Stdout), &k) != nil || !strings.HasPrefix(k.Token, "ck_") {
			t.Fatalf("apikey create --role %s: %v", role, r)
		}
		return func(args ...string) e2e.CLIResult {
			return e2e.RunCLI(t, bin, append([]string{"--addr", "http://" + node.Addr, "--token", k.Token}, args...)...)
		}
	}
	desk, dpo := as("foh"), as("compliance")

	var req struct {
		ID, Status, Regulation, Basis string
		Due                           string
		Extension                     *struct{ By string }
	}
	r = must(desk("dsr", "create", "acme", "access", "guest-1", "--format", "json"), "dsr create at the desk")
	if json.Unmarshal([]byte(r.Stdout), &req) != nil || req.Status != "received" || req.Regulation != "ccpa" || !strings.Contains(req.Basis, "1798.130") {
		t.Fatalf("dsr create: %v", r)
	}
	if r := desk("dsr", "list", "acme"); r.Code == 0 || !strings.Contains(r.Stderr, "(403)") {
		t.Errorf("dsr list at the desk: %v", r)
	}
	if r := desk("dsr", "create", "acme", "access", "guest-1"); r.Code == 0 || !strings.Contains(r.Stderr, "Duplicate request (409)") || !strings.Contains(r.Stderr, req.ID) {
		t.Errorf("a duplicate request: %v", r)
	}
	if r := dpo("dsr", "transition", "acme", req.ID, "completed", "--note", "sent"); r.Code == 0 || !strings.Contains(r.Stderr, "Invalid transition (409)") {
		t.Errorf("completed before verified: %v", r)
	}
	must(dpo("dsr", "transition", "acme", req.ID, "verified", "--method", "document", "--evidence", "driving licence seen"), "verify")
	r = must(dpo("dsr", "transition", "acme", req.ID, "extended", "--reason", "many requests this month", "--format", "json"), "extend")
	if json.Unmarshal([]byte(r.Stdout), &req) != nil || req.Status != "extended" || req.Extension == nil || req.Extension.By != "45 days" {
		t.Errorf("extend: %v", r)
	}
	r = must(dpo("dsr", "show", "acme", req.ID), "dsr show")
	if !strings.Contains(r.Stdout, "driving licence seen") || !strings.Contains(r.Stdout, "many requests this month") || !strings.Contains(r.Stdout, "guest-1") {
		t.Errorf("dsr show: %v", r)
	}

	r = must(dpo("dsr", "create", "acme", "rectification", "guest-1", "--collection", "guests", "--record", "g1", "--fields", `{"email":"new@example.com"}`, "--format", "json"), "rectification")
	var rect struct{ ID string }
	if json.Unmarshal([]byte(r.Stdout), &rect) != nil || rect.ID == "" {
		t.Fatalf("rectification: %v", r)
	}
	if r := dpo("dsr", "rectify", "acme", rect.ID); r.Code == 0 || !strings.Contains(r.Stderr, "Invalid transition (409)") {
		t.Errorf("rectify before verified: %v", r)
	}
	must(dpo("dsr", "transition", "acme", rect.ID, "verified", "--method", "account", "--evidence", "logged in"), "verify rectification")
	r = must(dpo("dsr", "rectify", "acme", rect.ID), "rectify")
	if !strings.Contains(r.Stdout, "completed") {
		t.Errorf("rectify: %v", r)
	}
	if r := must(owner("record", "get", "acme", "guests", "g1"), "record get"); !strings.Contains(r.Stdout, "new@example.com") {
		t.Errorf("the record after rectification: %v", r)
	}

	r = must(dpo("dsr", "summary", "acme", "--format", "json"), "dsr summary")
	var sum struct {
		Open     int            `json:"open"`
		ByStatus map[string]int `json:"by_status"`
	}
	if json.Unmarshal([]byte(r.Stdout), &sum) != nil || sum.Open != 1 || sum.ByStatus["completed"] != 1 || sum.ByStatus["extended"] != 1 {
		t.Errorf("dsr summary: %v", r)
	}
	r = must(dpo("dsr", "list", "acme", "--status", "open"), "dsr list --status open")
	if !strings.Contains(r.Stdout, req.ID) || strings.Contains(r.Stdout, rect.ID) {
		t.Errorf("dsr list --status open: %v", r)
	}
}
