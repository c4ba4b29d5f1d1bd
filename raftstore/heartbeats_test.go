package raftstore

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/custos/custos/internal/testkit"
)

// The leader's view of its followers: a partitioned follower's
// heartbeats fail and its peer entry says so, with when it last
// answered; once healed, it is ok again. Followers show no view.
func TestClusterLeaderSeesFailingHeartbeats(t *testing.T) {
	c := newTestCluster(t, 3)
	leader := c.waitLeader()
	iso := c.follower()
	heartbeat := func(s *Store, id string) Peer {
		for _, p := range s.Status().Peers {
			if p.ID == id {
				return p
			}
		}
		t.Fatalf("%s has no peer %s", s.NodeID(), id)
		return Peer{}
	}
	testkit.Eventually(t, "every follower ok", func() bool {
		for _, p := range leader.Status().Peers {
			if p.ID != leader.NodeID() && p.Heartbeat != HeartbeatOK {
				return false
			}
		}
		return true
	})
	if p := heartbeat(leader, leader.NodeID()); p.Heartbeat != "" {
		t.Fatalf("the leader's own entry: %+v", p)
	}
	if p := heartbeat(iso, leader.NodeID()); p.Heartbeat != "" {
		t.Fatalf("a follower shows a view: %+v", p)
	}

	c.partition(iso)
	testkit.Eventually(t, "the isolated follower failing", func() bool {
		return leader.IsLeader() && heartbeat(leader, iso.NodeID()).Heartbeat == HeartbeatFailing
	})
	if p := heartbeat(leader, iso.NodeID()); p.LastContact.IsZero() || p.LastContact.After(time.Now()) {
		t.Fatalf("the failing follower's last contact: %+v", p)
	}
	c.heal()
	testkit.Eventually(t, "the healed follower ok", func() bool { return heartbeat(leader, iso.NodeID()).Heartbeat == HeartbeatOK })
}

// The observations as raft sends them.
func TestHeartbeatsObserve(t *testing.T) {
	h := newHeartbeats()
	at := time.Unix(1700000000, 0)
	peers := func() []Peer {
		ps := []Peer{{ID: "a"}, {ID: "b"}, {ID: "c"}}
		h.annotate(ps, "a")
		return ps
	}
	for _, step := range []struct {
		obs  any
		want [3]string
	}{
		{nil, [3]string{"", "ok", "ok"}},
		{raft.FailedHeartbeatObservation{PeerID: "b", LastContact: at}, [3]string{"", "failing", "ok"}},
		{raft.FailedHeartbeatObservation{PeerID: "c"}, [3]string{"", "failing", "failing"}},
		{raft.ResumedHeartbeatObservation{PeerID: "c"}, [3]string{"", "failing", "ok"}},
		{raft.PeerObservation{Removed: true, Peer: raft.Server{ID: "b"}}, [3]string{"", "ok", "ok"}},
		{raft.FailedHeartbeatObservation{PeerID: "c"}, [3]string{"", "ok", "failing"}},
		{raft.LeaderObservation{LeaderID: "a"}, [3]string{"", "ok", "ok"}},
	} {
		if step.obs != nil {
			h.observe(step.obs)
		}
		ps := peers()
		for i, p := range ps {
			if p.Heartbeat != step.want[i] {
				t.Fatalf("after %T: %s is %q, want %q", step.obs, p.ID, p.Heartbeat, step.want[i])
			}
		}
	}
	h.observe(raft.FailedHeartbeatObservation{PeerID: "b", LastContact: at})
	if ps := peers(); !ps[1].LastContact.Equal(at) {
		t.Fatalf("last contact: %+v", ps[1])
	}
}
