package tenants_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/custos/custos/appliance/privacy/deadline"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/raftstore"
)

func ptr[T any](v T) *T { return &v }

func TestPrivacySettings(t *testing.T) {
	svc, store := newService(t)
	created := mustCreate(t, svc, "acme", "Acme")
	if created.Regulation != deadline.GDPR || created.TimeZone != "UTC" || created.DPDPResponseDays != deadline.DefaultDPDPDays || created.RetentionDays != tenants.DefaultRetentionDays {
		t.Fatalf("defaults at creation: %+v", created)
	}
	seq, _ := chainState(t, store)
	got, err := svc.Update(ctx(t), operator, "acme", tenants.Patch{
		Regulation: ptr("DPDP"), TimeZone: ptr("Asia/Kolkata"), DPDPResponseDays: ptr(14), RetentionDays: ptr(730),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Regulation != deadline.DPDP || got.TimeZone != "Asia/Kolkata" || got.DPDPResponseDays != 14 || got.RetentionDays != 730 {
		t.Fatalf("updated: %+v", got)
	}
	if read, err := svc.Get(ctx(t), raftstore.Linearizable, "acme"); err != nil || read != got {
		t.Fatalf("read back %+v, %v; want %+v", read, err, got)
	}
	if s, _ := chainState(t, store); s != seq+1 {
		t.Fatalf("chain moved from %d to %d, want one tenant.update", seq, s)
	}
	if e := chainEntry(t, store, seq+1); e["action"] != tenants.ActionUpdate {
		t.Errorf("entry %v, want %s", e, tenants.ActionUpdate)
	}
	rule, zone, err := got.Deadlines()
	if err != nil || rule.Mode() != deadline.DPDP || rule.Response() != deadline.Days(14) || zone.String() != "Asia/Kolkata" {
		t.Fatalf("deadlines: %v %v %v", rule, zone, err)
	}
	// Changing the mode changes nothing else: GDPR does not force a retention.
	got, err = svc.Update(ctx(t), operator, "acme", tenants.Patch{Regulation: ptr("gdpr")})
	if err != nil || got.Regulation != deadline.GDPR || got.RetentionDays != 730 || got.DPDPResponseDays != 14 {
		t.Fatalf("mode change: %+v, %v", got, err)
	}
	if rule, _, _ := got.Deadlines(); rule.Response() != deadline.Months(1) {
		t.Errorf("gdpr rule response %v", rule.Response())
	}
	// The same settings again: no change, no entry.
	seq, _ = chainState(t, store)
	if _, err := svc.Update(ctx(t), operator, "acme", tenants.Patch{Regulation: ptr("gdpr"), RetentionDays: ptr(730)}); err != nil {
		t.Fatal(err)
	}
	if s, _ := chainState(t, store); s != seq {
		t.Errorf("an update that changes nothing appended to the chain")
	}
}

func TestPrivacySettingsInvalid(t *testing.T) {
	svc, store := newService(t)
	before := mustCreate(t, svc, "acme", "Acme")
	seq, _ := chainState(t, store)
	cases := []struct {
		name  string
		patch tenants.Patch
		field string
	}{
		{"unknown regulation", tenants.Patch{Regulation: ptr("hipaa")}, "regulation"},
		{"empty regulation", tenants.Patch{Regulation: ptr("")}, "regulation"},
		{"unknown zone", tenants.Patch{TimeZone: ptr("Mars/Olympus")}, "time_zone"},
		{"Local zone", tenants.Patch{TimeZone: ptr("Local")}, "time_zone"},
		{"empty zone", tenants.Patch{TimeZone: ptr("")}, "time_zone"},
		{"path as zone", tenants.Patch{TimeZone: ptr("../../etc/passwd")}, "time_zone"},
		{"long zone", tenants.Patch{TimeZone: ptr(strings.Repeat("A", 65))}, "time_zone"},
		{"dpdp 0 days", tenants.Patch{DPDPResponseDays: ptr(0)}, "dpdp_response_days"},
		{"dpdp 91 days", tenants.Patch{DPDPResponseDays: ptr(91)}, "dpdp_response_days"},
		{"retention 0", tenants.Patch{RetentionDays: ptr(0)}, "retention_days"},
		{"retention negative", tenants.Patch{RetentionDays: ptr(-1)}, "retention_days"},
		{"retention beyond 100 years", tenants.Patch{RetentionDays: ptr(36501)}, "retention_days"},
		{"one bad among good", tenants.Patch{Regulation: ptr("ccpa"), RetentionDays: ptr(0)}, "retention_days"},
	}
	for _, c := range cases {
		_, err := svc.Update(ctx(t), operator, "acme", c.patch)
		var fe *validation.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want a field error on %s", c.name, err, c.field)
		}
	}
	if s, _ := chainState(t, store); s != seq {
		t.Errorf("invalid updates appended to the chain")
	}
	if after, err := svc.Get(ctx(t), raftstore.Linearizable, "acme"); err != nil || after != before {
		t.Errorf("tenant changed: %+v, %v", after, err)
	}
}

// An entry written before the privacy settings existed reads with their
// defaults, through Get, List and Decode alike.
func TestPrivacySettingsDefaultsOnOldEntries(t *testing.T) {
	svc, store := newService(t)
	mustCreate(t, svc, "acme", "Acme")
	old, err := json.Marshal(map[string]any{
		"id": "acme", "display_name": "Acme", "region": "x", "state": "active",
		"created_at": fixedTime, "updated_at": fixedTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := tenancy.New(store).Registry()
	var version uint64
	if err := reg.View(ctx(t), raftstore.Linearizable, func(tx tenancy.RegistryRead) error {
		_, version, _ = tx.Get("acme")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	entry, err := operator.Entry(fixedTime, tenants.ActionUpdate, tenancy.AuditTarget("acme"), "success", nil).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if res, err := reg.Update(ctx(t), "acme", version, old, entry); err != nil || !res.Applied {
		t.Fatalf("rewrite as an old entry: %+v, %v", res, err)
	}
	check := func(how string, tn tenants.Tenant) {
		t.Helper()
		if tn.Regulation != deadline.GDPR || tn.TimeZone != "UTC" || tn.DPDPResponseDays != 30 || tn.RetentionDays != 365 {
			t.Errorf("%s: %+v lacks the defaults", how, tn)
		}
	}
	got, err := svc.Get(ctx(t), raftstore.Linearizable, "acme")
	if err != nil {
		t.Fatal(err)
	}
	check("get", got)
	page, _, err := svc.List(ctx(t), raftstore.Linearizable, "", 0)
	if err != nil || len(page) != 1 {
		t.Fatalf("list: %v %v", page, err)
	}
	check("list", page[0])
	decoded, err := tenants.Decode(old)
	if err != nil {
		t.Fatal(err)
	}
	check("decode", decoded)
	rule, zone, err := decoded.Deadlines()
	if err != nil || rule.Mode() != deadline.GDPR || zone != time.UTC && zone.String() != "UTC" {
		t.Errorf("deadlines of an old entry: %v %v %v", rule, zone, err)
	}
}
