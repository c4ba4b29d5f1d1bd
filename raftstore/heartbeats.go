package raftstore

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// heartbeats is the leader's view of its followers, for the operator: a
// follower whose heartbeat failed is "failing" (with when it last
// answered) until one succeeds again. hashicorp/raft reports both
// through its observer (FailedHeartbeatObservation,
// ResumedHeartbeatObservation); it does not expose the followers' match
// indexes, so the view is reachability only. It is kept from the moment
// this node leads: a change of leader clears it (a new leader starts
// replicating afresh), as does a peer's removal.
type heartbeats struct {
	mu      sync.Mutex
	failing map[string]time.Time // peer id → last contact (zero: never)
	obs     *raft.Observer
	ch      chan raft.Observation
}

func newHeartbeats() *heartbeats {
	h := &heartbeats{failing: map[string]time.Time{}, ch: make(chan raft.Observation, 64)}
	h.obs = raft.NewObserver(h.ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation, raft.PeerObservation:
			return true
		}
		return false
	})
	return h
}

// run applies the observations until done is closed. The observer never
// blocks raft: an observation dropped on a full channel is made again at
// the next heartbeat's failure (a resumption is not, but the next
// failure or leader change corrects the view).
func (h *heartbeats) run(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case o := <-h.ch:
			h.observe(o.Data)
		}
	}
}

func (h *heartbeats) observe(data any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch d := data.(type) {
	case raft.FailedHeartbeatObservation:
		h.failing[string(d.PeerID)] = d.LastContact
	case raft.ResumedHeartbeatObservation:
		delete(h.failing, string(d.PeerID))
	case raft.LeaderObservation:
		clear(h.failing)
	case raft.PeerObservation:
		if d.Removed {
			delete(h.failing, string(d.Peer.ID))
		}
	}
}

// annotate sets the leader's view on peers (other than self).
func (h *heartbeats) annotate(peers []Peer, self string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range peers {
		if peers[i].ID == self {
			continue
		}
		if last, ok := h.failing[peers[i].ID]; ok {
			peers[i].Heartbeat, peers[i].LastContact = HeartbeatFailing, last
		} else {
			peers[i].Heartbeat = HeartbeatOK
		}
	}
}

// The values of Peer.Heartbeat.
const (
	HeartbeatOK      = "ok"
	HeartbeatFailing = "failing"
)
