package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/custos/custos/appliance/api"
)

// TestRemoveLastVoterIsConflict: removing the only voter of a one-node
// cluster is a valid request the cluster's shape refuses, so it is 409
// conflict (as transfer-leader's "no other voter" is), not a 500, and the
// node keeps its membership.
func TestRemoveLastVoterIsConflict(t *testing.T) {
	e := newEnv(t, api.Options{})
	for range 2 { // the refusal is stable, not a one-off
		r := e.do("DELETE", "/v1/operator/raft/peers/n1", "")
		p := checkProblem(t, r, http.StatusConflict, "conflict", "/v1/operator/raft/peers/n1")
		if !strings.Contains(p.Detail, "last voter") || strings.Contains(p.Detail, "raftstore") || strings.Contains(p.Detail, "need at least") {
			t.Errorf("detail %q: want this package's words about the last voter", p.Detail)
		}
	}
	if strings.Contains(e.logBuf.String(), "request failed") {
		t.Errorf("the refusal was logged as a failure: %s", e.logBuf.String())
	}
	r := e.do("GET", "/v1/operator/raft/peers", "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"id":"n1"`) || !e.store.IsLeader() {
		t.Fatalf("after the refused remove: leader %v, peers %d %s", e.store.IsLeader(), r.status, r.body)
	}
}
