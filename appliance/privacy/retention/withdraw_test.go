package retention_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/privacy/retention"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// TestSweepCarriesOutWithdrawals: a subject's withdrawal of a purpose
// whose rule is erase removes its records in the collections requiring
// the purpose; anonymise leaves them without subject and without pii,
// or removes those whose schema would not admit that; keep, other
// collections and other subjects are untouched. Each mark is carried
// out once, with one retention.withdrawal entry per transaction, and is
// gone after.
func TestSweepCarriesOutWithdrawals(t *testing.T) {
	cl := newCluster(t, retention.Config{})
	ctx := context.Background()
	cons := cl.nodes[0].cons
	for _, p := range []consent.PurposeInput{
		{ID: "marketing", Description: "Offers", Basis: consent.BasisConsent, OnWithdraw: consent.OnWithdrawErase},
		{ID: "insights", Description: "Usage insights", Basis: consent.BasisConsent, OnWithdraw: consent.OnWithdrawAnonymise},
		{ID: "support", Description: "Support", Basis: consent.BasisConsent},
	} {
		if _, err := cons.CreatePurpose(ctx, custos, "acme", p); err != nil {
			t.Fatal(err)
		}
	}
	fields := []collections.Field{
		{Name: "email", Type: collections.TypeString, Classification: collections.ClassPII, Index: true},
		{Name: "n", Type: collections.TypeNumber, Classification: collections.ClassInternal},
	}
	for name, d := range map[string]collections.Definition{
		"campaigns": {Fields: fields, Purposes: []string{"marketing"}},
		"usage":     {Fields: fields, Purposes: []string{"insights"}},
		"profiles":  {Fields: fields, Purposes: []string{"insights"}, SubjectRequired: true},
		"tickets":   {Fields: fields, Purposes: []string{"support"}},
		"notes":     {Fields: fields},
	} {
		if _, _, err := cl.nodes[0].colls.Put(ctx, custos, "acme", name, d, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"g1", "g2"} {
		for _, c := range []string{"campaigns", "usage", "profiles", "tickets", "notes"} {
			cl.put(t, 1, c, c[:1]+"-"+sub, sub)
		}
		if _, err := cons.Grant(ctx, custos, "acme", consent.Input{Subject: sub, Purposes: []string{"marketing", "insights", "support"}, Source: consent.SourceAPI}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cons.Withdraw(ctx, custos, "acme", consent.Input{Subject: "g1", Purposes: []string{"marketing", "insights", "support"}, Source: consent.SourceWeb}); err != nil {
		t.Fatal(err)
	}

	if rep := cl.sweep(t); rep.Withdrawals != 2 || rep.Erased != 2 || rep.Anonymised != 1 {
		t.Fatalf("sweep: %+v; want 2 withdrawals, 2 erased, 1 anonymised", rep)
	}
	for _, r := range [][2]string{{"campaigns", "c-g1"}, {"profiles", "p-g1"}} {
		if p := cl.present(t, r[0], r[1]); slices.Contains(p, true) {
			t.Errorf("%s/%s still read on nodes %v", r[0], r[1], p)
		}
	}
	for _, r := range [][2]string{{"tickets", "t-g1"}, {"notes", "n-g1"}, {"campaigns", "c-g2"}, {"usage", "u-g2"}, {"profiles", "p-g2"}} {
		if p := cl.present(t, r[0], r[1]); slices.Contains(p, false) {
			t.Errorf("%s/%s gone on nodes %v", r[0], r[1], p)
		}
	}
	// usage/u-g1 is no one's and holds only its internal value, on
	// every node; its email is found by nobody.
	for i, n := range cl.nodes {
		got, err := n.recs.Get(ctx, custos, "acme", "usage", "u-g1", false)
		if err != nil || got.Subject != "" || len(got.Fields) != 1 || string(got.Fields["n"]) != "1" {
			t.Errorf("node %d: usage/u-g1 is %+v, %v; want no subject and only n", i+1, got, err)
		}
		ids, _, err := n.recs.Find(ctx, custos, "acme", "usage", "email", json.RawMessage(`"u-g1@acme.example"`), "", 10)
		if err != nil || len(ids) != 0 {
			t.Errorf("node %d: the anonymised email is found: %v, %v", i+1, ids, err)
		}
		held, err := n.recs.Holdings(ctx, "acme", "g1")
		slices.SortFunc(held, func(a, b records.Held) int { return strings.Compare(a.Collection, b.Collection) })
		if err != nil || !slices.Equal(held, []records.Held{{Collection: "notes", ID: "n-g1"}, {Collection: "tickets", ID: "t-g1"}}) {
			t.Errorf("node %d: g1 holds %v, %v", i+1, held, err)
		}
	}
	// The marks are gone; a second sweep does nothing.
	if marks, err := cons.WithdrawalMarks(ctx, "acme", 0); err != nil || len(marks) != 0 {
		t.Errorf("marks left: %+v, %v", marks, err)
	}
	if rep := cl.sweep(t); rep.Withdrawals != 0 || rep.Erased != 0 || rep.Anonymised != 0 {
		t.Errorf("second sweep: %+v", rep)
	}
	// One entry per mark, naming the subject by pseudonym only.
	akey, err := cl.nodes[2].keys.AuditKey(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]string
	err = cl.nodes[2].store.View(ctx, raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.ChainEntries([]byte(tenancy.ChainOf("acme")), 1, func(_ uint64, _ [32]byte, data []byte) bool {
			e, err := audit.Decode(data)
			if err == nil && e.Action == "retention.withdrawal" {
				if e.Target != audit.Pseudonym(akey, "subject", "g1") || e.Actor.Type != audit.ActorSystem {
					t.Errorf("entry %+v", e)
				}
				d := e.Details
				got = append(got, map[string]string{"purpose": d["purpose"], "rule": d["rule"], "erased": d["erased"], "anonymised": d["anonymised"]})
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b map[string]string) int { return strings.Compare(a["purpose"], b["purpose"]) })
	want := []map[string]string{
		{"purpose": "insights", "rule": "anonymise", "erased": "1", "anonymised": "1"},
		{"purpose": "marketing", "rule": "erase", "erased": "1", "anonymised": "0"},
	}
	if !slices.EqualFunc(got, want, maps.Equal) {
		t.Errorf("withdrawal entries %v, want %v", got, want)
	}
}
