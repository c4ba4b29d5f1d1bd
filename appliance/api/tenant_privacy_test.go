package api_test

import (
	"net/http"
	"testing"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/client"
)

// A tenant's privacy settings: defaults at creation, changed by PATCH,
// bad values refused with a problem naming the field and nothing changed.
func TestTenantPrivacySettings(t *testing.T) {
	e := newEnv(t, api.Options{})
	r := e.do("POST", "/v1/tenants", `{"id":"acme","display_name":"Acme"}`)
	var ten client.Tenant
	r.json(t, &ten)
	if r.status != http.StatusCreated || ten.Regulation != "gdpr" || ten.TimeZone != "UTC" || ten.DPDPResponseDays != 30 || ten.RetentionDays != 365 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r = e.do("PATCH", "/v1/tenants/acme", `{"regulation":"CCPA","time_zone":"America/Los_Angeles","retention_days":730,"dpdp_response_days":45}`)
	r.json(t, &ten)
	if r.status != http.StatusOK || ten.Regulation != "ccpa" || ten.TimeZone != "America/Los_Angeles" || ten.RetentionDays != 730 || ten.DPDPResponseDays != 45 {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	for body, field := range map[string]string{
		`{"regulation":"hipaa"}`:                       "regulation",
		`{"time_zone":"Nowhere/Town"}`:                 "time_zone",
		`{"dpdp_response_days":91}`:                    "dpdp_response_days",
		`{"retention_days":0}`:                         "retention_days",
		`{"regulation":"gdpr","retention_days":36501}`: "retention_days",
	} {
		p := checkProblem(t, e.do("PATCH", "/v1/tenants/acme", body), http.StatusUnprocessableEntity, "validation", "/v1/tenants/acme")
		if len(p.Errors) != 1 || p.Errors[0].Field != field {
			t.Errorf("%s: %+v", body, p.Errors)
		}
	}
	r = e.do("GET", "/v1/tenants/acme", "")
	var after client.Tenant
	r.json(t, &after)
	after.Bootstrapping = false // GET tells the operator; PATCH does not
	if after != ten {
		t.Errorf("refused patches changed the tenant: %+v, want %+v", after, ten)
	}
}
