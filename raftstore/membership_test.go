package raftstore

import (
	"errors"
	"testing"
)

// TestRemoveLastVoterRefused: a one-node cluster cannot remove its only
// voter. The refusal is ErrLastVoter, found from the configuration before
// raft is asked, so callers can map it without reading raft's message; the
// configuration is left as it was.
func TestRemoveLastVoterRefused(t *testing.T) {
	c := newTestCluster(t, 1)
	leader := c.waitLeader()
	err := leader.RemovePeer(ctxT(t), leader.NodeID())
	if !errors.Is(err, ErrLastVoter) {
		t.Fatalf("remove the only voter: %v, want ErrLastVoter", err)
	}
	peers, err := leader.Peers(ctxT(t))
	if err != nil || len(peers) != 1 || peers[0].ID != leader.NodeID() || !peers[0].Voter {
		t.Fatalf("peers after the refused remove: %+v %v", peers, err)
	}
	// An absent member is still removed idempotently.
	if err := leader.RemovePeer(ctxT(t), "ghost"); err != nil {
		t.Fatalf("remove an absent member: %v", err)
	}
}

// TestLastVoterCrossesTheWire: a follower forwarding a removal to the
// leader gets the same sentinel back.
func TestLastVoterCrossesTheWire(t *testing.T) {
	if err := toWire(ErrLastVoter).err(); !errors.Is(err, ErrLastVoter) {
		t.Fatalf("round trip: %v does not unwrap to ErrLastVoter", err)
	}
}
