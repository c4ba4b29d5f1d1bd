package consent_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/internal/validation"
)

// TestBadInput: each refused with its error, and nothing appended.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.svc
	ok := consent.Input{Subject: "guest-1", Purposes: []string{"call-recording"}, Source: consent.SourceIVR}
	with := func(f func(*consent.Input)) consent.Input { in := ok; f(&in); return in }
	field := func(name string) func(error) bool {
		return func(err error) bool {
			var fe *validation.FieldError
			return errors.As(err, &fe) && fe.Field == name && errors.Is(err, validation.ErrInvalid)
		}
	}
	is := func(target error) func(error) bool { return func(err error) bool { return errors.Is(err, target) } }
	before := len(chain(t, e.store))
	for _, c := range []struct {
		name string
		call func() error
		want func(error) bool
	}{
		{"unknown purpose", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.Purposes = []string{"call-recording", "telepathy"} }))
			return err
		}, field("purposes[1]")},
		{"purpose twice", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.Purposes = []string{"call-recording", "call-recording"} }))
			return err
		}, field("purposes[1]")},
		{"no purposes", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.Purposes = nil }))
			return err
		}, field("purposes")},
		{"too many purposes", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.Purposes = make([]string, consent.MaxEventPurposes+1) }))
			return err
		}, field("purposes")},
		{"grant of all", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.All = true }))
			return err
		}, field("all")},
		{"withdraw of all naming purposes", func() error {
			_, err := s.Withdraw(ctx, owner, "acme", with(func(in *consent.Input) { in.All = true }))
			return err
		}, field("purposes")},
		{"grant of a contract purpose", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.Purposes = []string{"essential-analytics"} }))
			return err
		}, is(consent.ErrNotConsentBased)},
		{"withdraw of a contract purpose", func() error {
			_, err := s.Withdraw(ctx, owner, "acme", with(func(in *consent.Input) { in.Purposes = []string{"essential-analytics"} }))
			return err
		}, is(consent.ErrNotConsentBased)},
		{"stale policy version", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.PolicyVersion = 2 }))
			return err
		}, field("policy_version")},
		{"bad source", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.Source = "fax" }))
			return err
		}, field("source")},
		{"bad subject", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.Subject = "guest/1" }))
			return err
		}, field("subject")},
		{"subject too long", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.Subject = strings.Repeat("g", validation.MaxID+1) }))
			return err
		}, field("subject")},
		{"evidence text and blob", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.Evidence = consent.Evidence{Text: "yes", Blob: "b1"} }))
			return err
		}, field("evidence")},
		{"evidence text too long", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) {
				in.Evidence = consent.Evidence{Text: strings.Repeat("y", consent.MaxEvidenceText+1)}
			}))
			return err
		}, field("evidence.text")},
		{"bad blob id", func() error {
			_, err := s.Grant(ctx, owner, "acme", with(func(in *consent.Input) { in.Evidence = consent.Evidence{Blob: "../b"} }))
			return err
		}, field("evidence.blob")},
		{"bad flag", func() error {
			_, err := s.SetFlag(ctx, owner, "acme", consent.FlagInput{Subject: "guest-1", Flag: "sell-more", Source: consent.SourceWeb})
			return err
		}, field("flag")},
		{"another tenant's principal", func() error {
			_, err := s.Grant(ctx, stranger, "acme", ok)
			return err
		}, is(consent.ErrNoTenant)},
		{"missing tenant", func() error {
			_, err := s.Grant(ctx, operator, "nobody", ok)
			return err
		}, func(err error) bool { return err != nil }},
	} {
		if err := c.call(); !c.want(err) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if n := len(chain(t, e.store)); n != before {
		t.Errorf("%d entries appended by refused input", n-before)
	}
	if h, err := s.History(ctx, owner, "acme", "guest-1"); err != nil || len(h) != 0 {
		t.Errorf("history after refused input: %+v %v", h, err)
	}
}

// TestEvidenceSealed: the evidence text comes back from the history, the
// audit entry holds its keyed digest, and neither the subject id nor the
// evidence text reaches any file of the node.
func TestEvidenceSealed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	subject := "canary-subject-7f3a9c"
	text := "canary-evidence: caller pressed 1 to accept recording 5d2e"
	ev, err := e.svc.Grant(ctx, owner, "acme", consent.Input{Subject: subject, Purposes: []string{"call-recording"}, Source: consent.SourceIVR,
		Evidence: consent.Evidence{Text: text}})
	if err != nil || ev.EvidenceText != text || !strings.HasPrefix(ev.EvidenceDigest, "sha256:h:") {
		t.Fatalf("grant: %+v %v", ev, err)
	}
	if _, err := e.svc.Withdraw(ctx, owner, "acme", consent.Input{Subject: subject, Purposes: []string{"call-recording"}, Source: consent.SourceIVR,
		Evidence: consent.Evidence{Blob: "bgreeting1"}}); err != nil {
		t.Fatal(err)
	}
	h, err := e.svc.History(ctx, owner, "acme", subject)
	if err != nil || len(h) != 2 || h[0].EvidenceText != text || h[1].EvidenceBlob != "bgreeting1" || h[0].PolicyVersions["call-recording"] != 1 ||
		h[0].Actor != owner.Actor() {
		t.Fatalf("history: %+v %v", h, err)
	}
	entries := consentEntries(chain(t, e.store))
	if len(entries) != 2 || entries[0].Action != "consent.grant" || entries[1].Action != "consent.withdraw" {
		t.Fatalf("entries: %+v", entries)
	}
	if entries[0].Details["evidence"] != "text:"+ev.EvidenceDigest || entries[1].Details["evidence"] != "blob:bgreeting1" ||
		entries[0].Details["policy_versions"] != "call-recording=1" || entries[0].Details["source"] != "ivr" {
		t.Errorf("entry details: %+v / %+v", entries[0].Details, entries[1].Details)
	}
	// The tenant, holding the audit key, recognises the subject and the evidence.
	akey, err := e.keys.AuditKey(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(text))
	if entries[0].Target != audit.Pseudonym(akey, "subject", subject) || ev.EvidenceDigest != audit.Pseudonym(akey, "sha256", hex.EncodeToString(sum[:])) {
		t.Errorf("pseudonyms: %s %s", entries[0].Target, ev.EvidenceDigest)
	}
	for _, needle := range []string{subject, text, "canary-evidence"} {
		if found := testkit.FilesHolding(t, []byte(needle), e.dir); len(found) > 0 {
			t.Errorf("%q in the clear in %v", needle, found)
		}
	}
	// The scan looks where the data is: the purposes' descriptions are there.
	if found := testkit.FilesHolding(t, []byte("announced in the IVR greeting"), e.dir); len(found) == 0 {
		t.Error("the scan found no purpose description: it does not see the store's files")
	}
}

// TestClusterConcurrent: grants, withdrawals and flags for one subject,
// made at once through every node of a 3-node cluster, give one ledger —
// sequences 1..n without gaps, the same on every node, each event in the
// chain once — and the subject id reaches no node's files.
func TestClusterConcurrent(t *testing.T) {
	ctx := context.Background()
	c := storetest.NewCluster(t, 3)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	svcs := make([]*consent.Service, len(c.Nodes))
	for i, n := range c.Nodes {
		b := tenancy.New(n)
		keys := hierarchy(t, b, id)
		if i == 0 {
			if _, err := tenants.New(b, storetest.Region, tenants.WithKeys(keys)).Create(ctx, operator, tenants.CreateInput{ID: "acme", DisplayName: "Acme"}); err != nil {
				t.Fatal(err)
			}
		}
		svcs[i] = consent.New(b, keys, nil)
	}
	createFixture(t, svcs[0])
	const subject, perNode = "canary-guest-c41b", 6
	var wg sync.WaitGroup
	errs := make(chan error, len(svcs)*perNode)
	for i, s := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perNode {
				in := consent.Input{Subject: subject, Purposes: []string{fixture[2+(i+j)%4].ID}, Source: consent.SourceAPI}
				var err error
				switch j % 3 {
				case 0:
					_, err = s.Grant(ctx, owner, "acme", in)
				case 1:
					_, err = s.Withdraw(ctx, owner, "acme", in)
				default:
					_, err = s.SetFlag(ctx, owner, "acme", consent.FlagInput{Subject: subject, Flag: consent.FlagDoNotSell, On: j%2 == 0, Source: consent.SourceAPI})
				}
				if err != nil {
					errs <- fmt.Errorf("node %d op %d: %w", i+1, j, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := len(svcs) * perNode
	var first []consent.Event
	for i, s := range svcs {
		h, err := s.History(ctx, owner, "acme", subject)
		if err != nil || len(h) != want {
			t.Fatalf("node %d: %d events, %v; want %d", i+1, len(h), err, want)
		}
		for j, ev := range h {
			if ev.Seq != uint64(j+1) || (j > 0 && ev.At.Before(h[j-1].At)) {
				t.Fatalf("node %d: event %d: %+v", i+1, j, ev)
			}
		}
		if i == 0 {
			first = h
			continue
		}
		for j := range h {
			if fmt.Sprint(h[j]) != fmt.Sprint(first[j]) {
				t.Fatalf("node %d event %d differs: %+v / %+v", i+1, j, h[j], first[j])
			}
		}
	}
	for i, n := range c.Nodes {
		seqs := map[string]int{}
		for _, en := range consentEntries(chain(t, n)) {
			seqs[en.Details["seq"]]++
		}
		if len(seqs) != want {
			t.Errorf("node %d: %d distinct consent entries, want %d", i+1, len(seqs), want)
		}
		for seq, k := range seqs {
			if k != 1 {
				t.Errorf("node %d: seq %s in the chain %d times", i+1, seq, k)
			}
		}
	}
	if found := testkit.FilesHolding(t, []byte(subject), c.DataDirs...); len(found) > 0 {
		t.Errorf("the subject id in the clear in %v", found)
	}
	if found := testkit.FilesHolding(t, []byte("announced in the IVR greeting"), c.DataDirs...); len(found) == 0 {
		t.Error("the scan found no purpose description: it does not see the nodes' files")
	}
}
