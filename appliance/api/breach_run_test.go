//go:build !race

package api_test

// The breach suite sends thousands of requests through the whole stack;
// under the race detector that took two of make test's ten minutes, so it
// is built without it, and make test runs it in a run of its own without
// -race (its helpers, in breach_test.go, are built either way).

import (
	"strings"
	"testing"
)

// TestCrossTenantBreach is the suite; see the comment at the top.
func TestCrossTenantBreach(t *testing.T) {
	b := newBreach(t)
	b.control()
	before := b.victimState()
	if !strings.Contains(before["record guests/"+vRecord], breachCanary) || !strings.Contains(before["API keys"], breachCanary) || len(before) < 12 {
		t.Fatalf("the victim's state, as read back before the attack, does not hold its data: %v", before)
	}
	chainBefore := b.victimChainHead()

	b.phase1()
	b.phase1Methods()
	b.phase2()
	b.phase3()
	b.phase4()
	b.phase5()

	if after := b.victimChainHead(); after != chainBefore {
		t.Errorf("the victim's audit chain moved during the attack: %v -> %v", chainBefore, after)
	}
	after := b.victimState()
	for k, v := range before {
		if after[k] != v {
			if _, ok := after[k]; !ok {
				t.Errorf("the victim's %s is gone after the attack", k)
				continue
			}
			t.Errorf("the victim's %s changed during the attack:\nbefore %s\nafter  %s", k, v, after[k])
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("the victim has a new %s after the attack: %s", k, v)
		}
	}
	b.checkVictimAudit()
	b.checkCoverage()
	if len(b.notFounds) != 1 {
		t.Errorf("cross-tenant 404s differ among themselves (want one body): %v", b.notFounds)
	}
	t.Logf("%d attacker requests over %d operations of the spec (%v); nothing of %s leaked", b.sent, len(b.ops), b.perPhase, victimTenant)
}
