package consent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// clock is a test's clock, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

type env struct {
	store *raftstore.Store
	dir   string
	svc   *consent.Service
	keys  *keyring.Hierarchy
	clock *clock
}

var (
	operator = audit.Principal{Kind: audit.ActorOperator, ID: "operator"}
	owner    = audit.Principal{Kind: audit.ActorAPIKey, ID: "k1", Tenant: "acme", Role: "owner"}
	stranger = audit.Principal{Kind: audit.ActorAPIKey, ID: "k2", Tenant: "other", Role: "owner"}
	march1   = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

func hierarchy(t testing.TB, b *tenancy.Boundary, id *age.X25519Identity) *keyring.Hierarchy {
	return keyring.NewHierarchy(b, keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id},
		System: audit.System(), Pseudonym: audit.Pseudonym})
}

// newEnv is tenant acme on one node with the product-analytics purposes.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	store := storetest.StartWith(t, storetest.Options{Dir: dir})
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	b := tenancy.New(store)
	keys := hierarchy(t, b, id)
	if _, err := tenants.New(b, storetest.Region, tenants.WithKeys(keys)).Create(context.Background(), operator, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: march1}
	e := &env{store: store, dir: dir, svc: consent.New(b, keys, c.now), keys: keys, clock: c}
	createFixture(t, e.svc)
	return e
}

// fixture: a product-analytics tenant's purposes and call recording.
var fixture = []consent.PurposeInput{
	{ID: "essential-analytics", Description: "Analytics the product cannot run without", Basis: consent.BasisContract, Required: true},
	{ID: "performance-monitoring", Description: "Performance monitoring", Basis: consent.BasisLegitimateInterest, DefaultOn: true},
	{ID: "enhanced-insights", Description: "Enhanced insights", Basis: consent.BasisConsent},
	{ID: "error-tracking", Description: "Error tracking", Basis: consent.BasisConsent},
	{ID: "user-research", Description: "User research", Basis: consent.BasisConsent, Sale: true},
	{ID: "call-recording", Description: "Recording of calls, announced in the IVR greeting", Basis: consent.BasisConsent, Required: true},
}

func createFixture(t *testing.T, s *consent.Service) {
	t.Helper()
	for _, in := range fixture {
		if _, err := s.CreatePurpose(context.Background(), owner, "acme", in); err != nil {
			t.Fatalf("%s: %v", in.ID, err)
		}
	}
}

// chain is tenant acme's decoded audit entries, on store.
func chain(t *testing.T, store *raftstore.Store) []audit.Entry {
	t.Helper()
	var raw [][]byte
	if err := store.View(context.Background(), raftstore.Linearizable, func(r *raftstore.ReadTx) error {
		r.ChainEntries([]byte(tenancy.ChainOf("acme")), 1, func(_ uint64, _ [32]byte, data []byte) bool {
			raw = append(raw, bytes.Clone(data))
			return true
		})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out := make([]audit.Entry, 0, len(raw))
	for _, d := range raw {
		e, err := audit.Decode(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// consentEntries are the entries of ledger events (not of purposes,
// blob kinds or reads).
func consentEntries(es []audit.Entry) []audit.Entry {
	var out []audit.Entry
	for _, e := range es {
		if strings.HasPrefix(e.Action, "consent.") && !strings.HasPrefix(e.Action, "consent.purpose.") &&
			!strings.HasPrefix(e.Action, "consent.kind.") && e.Action != "consent.read" {
			out = append(out, e)
		}
	}
	return out
}

func TestPurposes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.svc
	for _, c := range []struct {
		name  string
		in    consent.PurposeInput
		field string
	}{
		{"id with capitals", consent.PurposeInput{ID: "Bad", Description: "d", Basis: consent.BasisConsent}, "id"},
		{"id too long", consent.PurposeInput{ID: strings.Repeat("a", consent.MaxPurposeID+1), Description: "d", Basis: consent.BasisConsent}, "id"},
		{"id ending in -", consent.PurposeInput{ID: "a-", Description: "d", Basis: consent.BasisConsent}, "id"},
		{"no description", consent.PurposeInput{ID: "a", Description: "  ", Basis: consent.BasisConsent}, "description"},
		{"description too long", consent.PurposeInput{ID: "a", Description: strings.Repeat("x", consent.MaxDescription+1), Basis: consent.BasisConsent}, "description"},
		{"unknown basis", consent.PurposeInput{ID: "a", Description: "d", Basis: "vital-interest"}, "basis"},
		{"consent defaulting to on", consent.PurposeInput{ID: "a", Description: "d", Basis: consent.BasisConsent, DefaultOn: true}, "default_on"},
	} {
		var fe *validation.FieldError
		if _, err := s.CreatePurpose(ctx, owner, "acme", c.in); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want a field error on %s", c.name, err, c.field)
		}
	}
	if _, err := s.CreatePurpose(ctx, owner, "acme", fixture[2]); !errors.Is(err, consent.ErrExists) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := s.CreatePurpose(ctx, stranger, "acme", consent.PurposeInput{ID: "x", Description: "d", Basis: consent.BasisConsent}); !errors.Is(err, consent.ErrNoTenant) {
		t.Errorf("another tenant's principal: %v", err)
	}
	if _, err := s.CreatePurpose(ctx, operator, "nobody", consent.PurposeInput{ID: "x", Description: "d", Basis: consent.BasisConsent}); !errors.Is(err, consent.ErrNoTenant) {
		t.Errorf("missing tenant: %v", err)
	}
	if _, err := s.Purpose(ctx, owner, "acme", "nothing"); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
	e.clock.set(march1.Add(time.Hour))
	up := fixture[3]
	up.Description = "Error tracking, with stack traces"
	p, err := s.UpdatePurpose(ctx, owner, "acme", up, 1)
	if err != nil || p.PolicyVersion != 2 || p.Description != up.Description || !p.CreatedAt.Equal(march1) || !p.UpdatedAt.Equal(march1.Add(time.Hour)) {
		t.Fatalf("update: %+v %v", p, err)
	}
	if _, err := s.UpdatePurpose(ctx, owner, "acme", up, 1); !errors.Is(err, consent.ErrConflict) {
		t.Errorf("update on a stale version: %v", err)
	}
	bad := up
	bad.DefaultOn = true
	if _, err := s.UpdatePurpose(ctx, owner, "acme", bad, 0); err == nil {
		t.Error("an update to a consent purpose defaulting to on accepted")
	}
	if got, err := s.Purpose(ctx, owner, "acme", "error-tracking"); err != nil || got != p {
		t.Errorf("get: %+v %v, want %+v", got, err, p)
	}
	list, err := s.Purposes(ctx, owner, "acme")
	if err != nil || len(list) != len(fixture) {
		t.Fatalf("list: %d %v", len(list), err)
	}
	for i := 1; i < len(list); i++ {
		if list[i-1].ID >= list[i].ID {
			t.Errorf("list not by id: %s before %s", list[i-1].ID, list[i].ID)
		}
	}
	var creates, updates int
	for _, en := range chain(t, e.store) {
		switch en.Action {
		case "consent.purpose.create":
			creates++
		case "consent.purpose.update":
			updates++
			if en.Target != "consent-purpose:error-tracking" || en.Details["policy_version"] != "2" {
				t.Errorf("update entry: %+v", en)
			}
		}
	}
	if creates != len(fixture) || updates != 1 {
		t.Errorf("%d create and %d update entries, want %d and 1", creates, updates, len(fixture))
	}
}

// step is one ledger event of the table at a time.
type step struct {
	at   time.Time
	kind string // grant, withdraw, withdraw-all, flag-on, flag-off
	arg  []string
}

func (st step) apply(ctx context.Context, s *consent.Service, subject string) (consent.Event, error) {
	in := consent.Input{Subject: subject, Purposes: st.arg, Source: consent.SourceWeb}
	switch st.kind {
	case "grant":
		return s.Grant(ctx, owner, "acme", in)
	case "withdraw":
		return s.Withdraw(ctx, owner, "acme", in)
	case "withdraw-all":
		in.Purposes, in.All = nil, true
		return s.Withdraw(ctx, owner, "acme", in)
	case "flag-on", "flag-off":
		return s.SetFlag(ctx, owner, "acme", consent.FlagInput{Subject: subject, Flag: st.arg[0], On: st.kind == "flag-on", Source: consent.SourceApp})
	}
	panic(st.kind)
}

func day(d int) time.Time { return march1.AddDate(0, 0, d-1) }

// TestLedger: the table's events, then the state as of moments between
// them, and Require now.
func TestLedger(t *testing.T) {
	ctx := context.Background()
	allowed := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	type asOf struct {
		at      time.Time
		allowed map[string]bool // every fixture purpose not named is refused
		flags   [2]bool         // do-not-sell, restrict-processing
	}
	base := allowed("essential-analytics", "performance-monitoring")
	for _, c := range []struct {
		name    string
		steps   []step
		asOf    []asOf
		require map[string]string // purpose → the reason Require gives ("" = allowed)
	}{
		{
			name: "no events: the basis and the defaults",
			asOf: []asOf{{at: day(2), allowed: base}},
			require: map[string]string{"essential-analytics": "", "performance-monitoring": "",
				"call-recording": consent.ReasonNotGranted, "enhanced-insights": consent.ReasonNotGranted, "no-such": consent.ReasonUndefined},
		},
		{
			name: "grant then withdraw",
			steps: []step{
				{day(2), "grant", []string{"call-recording", "error-tracking"}},
				{day(4), "withdraw", []string{"call-recording"}},
			},
			asOf: []asOf{
				{at: day(1), allowed: base},
				{at: day(3), allowed: allowed("essential-analytics", "performance-monitoring", "call-recording", "error-tracking")},
				{at: day(2), allowed: allowed("essential-analytics", "performance-monitoring", "call-recording", "error-tracking")},
				{at: day(5), allowed: allowed("essential-analytics", "performance-monitoring", "error-tracking")},
			},
			require: map[string]string{"error-tracking": "", "call-recording": consent.ReasonWithdrawn},
		},
		{
			name: "objection to a default-on legitimate interest, then consent again",
			steps: []step{
				{day(2), "withdraw", []string{"performance-monitoring"}},
				{day(3), "grant", []string{"performance-monitoring"}},
			},
			asOf: []asOf{
				{at: day(2).Add(time.Hour), allowed: allowed("essential-analytics")},
				{at: day(3), allowed: base},
			},
			require: map[string]string{"performance-monitoring": ""},
		},
		{
			name: "withdraw of a purpose never granted is a recorded refusal",
			steps: []step{
				{day(2), "withdraw", []string{"user-research"}},
			},
			asOf:    []asOf{{at: day(3), allowed: base}},
			require: map[string]string{"user-research": consent.ReasonWithdrawn},
		},
		{
			name: "withdraw all, then one granted again",
			steps: []step{
				{day(2), "grant", []string{"enhanced-insights", "error-tracking", "user-research"}},
				{day(3), "withdraw-all", nil},
				{day(4), "grant", []string{"error-tracking"}},
			},
			asOf: []asOf{
				{at: day(2), allowed: allowed("essential-analytics", "performance-monitoring", "enhanced-insights", "error-tracking", "user-research")},
				{at: day(3), allowed: allowed("essential-analytics")},
				{at: day(4), allowed: allowed("essential-analytics", "error-tracking")},
			},
			require: map[string]string{"essential-analytics": "", "error-tracking": "", "performance-monitoring": consent.ReasonWithdrawn},
		},
		{
			name: "do-not-sell and restrict-processing",
			steps: []step{
				{day(2), "grant", []string{"user-research", "call-recording"}},
				{day(3), "flag-on", []string{consent.FlagDoNotSell}},
				{day(4), "flag-on", []string{consent.FlagRestrictProcessing}},
				{day(5), "flag-off", []string{consent.FlagDoNotSell}},
			},
			asOf: []asOf{
				{at: day(2), allowed: allowed("essential-analytics", "performance-monitoring", "user-research", "call-recording")},
				{at: day(3), allowed: allowed("essential-analytics", "performance-monitoring", "call-recording"), flags: [2]bool{true, false}},
				// restriction leaves consent given (art. 18(2)), not contract or legitimate interest
				{at: day(4), allowed: allowed("call-recording"), flags: [2]bool{true, true}},
				{at: day(5), allowed: allowed("call-recording", "user-research"), flags: [2]bool{false, true}},
			},
			require: map[string]string{"call-recording": "", "essential-analytics": consent.ReasonRestricted},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			for i, st := range c.steps {
				e.clock.set(st.at)
				ev, err := st.apply(ctx, e.svc, "guest-1")
				if err != nil || ev.Seq != uint64(i+1) || !ev.At.Equal(st.at) {
					t.Fatalf("step %d: %+v %v", i, ev, err)
				}
			}
			// Another subject's ledger is untouched by guest-1's.
			if st, err := e.svc.State(ctx, owner, "acme", "guest-2"); err != nil || st.Events != 0 {
				t.Fatalf("guest-2: %+v %v", st, err)
			}
			for _, a := range c.asOf {
				st, err := e.svc.StateAt(ctx, owner, "acme", "guest-1", a.at)
				if err != nil {
					t.Fatal(err)
				}
				if st.DoNotSell != a.flags[0] || st.Restricted != a.flags[1] {
					t.Errorf("as of %s: flags %v %v, want %v", a.at, st.DoNotSell, st.Restricted, a.flags)
				}
				for _, in := range fixture {
					ps, ok := st.Purpose(in.ID)
					if !ok || ps.Allowed != a.allowed[in.ID] {
						t.Errorf("as of %s: %s %+v, want allowed=%v", a.at.Format(time.DateTime), in.ID, ps, a.allowed[in.ID])
					}
				}
			}
			e.clock.set(day(30))
			for purpose, reason := range c.require {
				err := e.svc.Require(ctx, "acme", "guest-1", purpose)
				var re *consent.RequiredError
				switch {
				case reason == "" && err != nil:
					t.Errorf("require %s: %v", purpose, err)
				case reason != "" && (!errors.As(err, &re) || re.Purpose != purpose || re.Reason != reason || !errors.Is(err, consent.ErrConsentRequired)):
					t.Errorf("require %s: %v, want %s", purpose, err, reason)
				}
			}
			// Each event is in the chain once, naming guest-1 only by pseudonym.
			events := consentEntries(chain(t, e.store))
			if len(events) != len(c.steps) {
				t.Fatalf("%d consent entries, want %d", len(events), len(c.steps))
			}
			for i, en := range events {
				if !strings.HasPrefix(en.Target, "subject:h:") || en.Target != events[0].Target || en.Details["seq"] != fmt.Sprint(i+1) {
					t.Errorf("entry %d: %+v", i, en)
				}
			}
		})
	}
}

// TestAsOfTermsInForce: a state as of a past moment judges by the terms
// of the purposes in force then — a purpose created later is absent, one
// whose basis changed since is judged by its old basis — and a grant
// keeps the policy version it was given for.
func TestAsOfTermsInForce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.svc
	e.clock.set(day(2))
	if _, err := s.Grant(ctx, owner, "acme", consent.Input{Subject: "guest-1", Purposes: []string{"error-tracking"}, Source: consent.SourceWeb}); err != nil {
		t.Fatal(err)
	}
	e.clock.set(day(3))
	if _, err := s.CreatePurpose(ctx, owner, "acme", consent.PurposeInput{ID: "marketing", Description: "Marketing", Basis: consent.BasisConsent}); err != nil {
		t.Fatal(err)
	}
	e.clock.set(day(4))
	research := fixture[4]
	research.Basis, research.DefaultOn = consent.BasisLegitimateInterest, true
	if _, err := s.UpdatePurpose(ctx, owner, "acme", research, 1); err != nil {
		t.Fatal(err)
	}
	tracking := fixture[3]
	tracking.Description = "Error tracking, v2"
	if _, err := s.UpdatePurpose(ctx, owner, "acme", tracking, 1); err != nil {
		t.Fatal(err)
	}
	e.clock.set(day(6))
	for _, c := range []struct {
		at                        time.Time
		researchAllowed           bool
		researchVersion           int
		marketing                 bool
		trackingGrant, trackingAt int
	}{
		{at: day(2).Add(time.Hour), researchVersion: 1, trackingGrant: 1, trackingAt: 1},
		{at: day(3), researchVersion: 1, marketing: true, trackingGrant: 1, trackingAt: 1},
		{at: day(5), researchAllowed: true, researchVersion: 2, marketing: true, trackingGrant: 1, trackingAt: 2},
		{at: time.Time{}, researchAllowed: true, researchVersion: 2, marketing: true, trackingGrant: 1, trackingAt: 2},
	} {
		st, err := s.StateAt(ctx, owner, "acme", "guest-1", c.at)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := st.Purpose("user-research")
		if !ok || r.Allowed != c.researchAllowed || r.PolicyVersion != c.researchVersion {
			t.Errorf("as of %s: user-research %+v", c.at, r)
		}
		if m, ok := st.Purpose("marketing"); ok != c.marketing || m.Allowed {
			t.Errorf("as of %s: marketing %+v present=%v", c.at, m, ok)
		}
		if tr, _ := st.Purpose("error-tracking"); !tr.Allowed || tr.GrantedVersion != c.trackingGrant || tr.PolicyVersion != c.trackingAt {
			t.Errorf("as of %s: error-tracking %+v", c.at, tr)
		}
	}
	vs, err := s.PurposeVersions(ctx, owner, "acme", "user-research")
	if err != nil || len(vs) != 2 || vs[0].Basis != consent.BasisConsent || vs[1].Basis != consent.BasisLegitimateInterest || vs[1].PolicyVersion != 2 {
		t.Fatalf("versions: %+v %v", vs, err)
	}
	if vs, err := s.PurposeVersions(ctx, owner, "acme", "marketing"); err != nil || len(vs) != 1 {
		t.Errorf("marketing versions: %+v %v", vs, err)
	}
	if _, err := s.PurposeVersions(ctx, owner, "acme", "user"); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("versions of a missing purpose: %v", err)
	}
}
