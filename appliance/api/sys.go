package api

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/raftstore"
)

type healthResponse struct {
	Status   string `json:"status"` // "ok" or "sealed"
	NodeID   string `json:"node_id"`
	Role     string `json:"role"`
	LeaderID string `json:"leader_id"`
	Sealed   bool   `json:"sealed"`
}

// health answers load balancers and the CLI without a token: 200 while a
// leader is known and the node is unsealed, 503 otherwise ("sealed": true
// when the node has no seal identity). X-Custos-Role lets a balancer send
// writes to the leader.
func (s *server) health(c *fiber.Ctx, _ *input) error {
	st := s.deps.Cluster.Status()
	role := "follower"
	if s.deps.Cluster.IsLeader() {
		role = "leader"
	}
	c.Set(headerRole, role)
	if st.LeaderID == "" {
		return errNoLeaderKnown
	}
	h := healthResponse{Status: "ok", NodeID: st.NodeID, Role: role, LeaderID: st.LeaderID}
	if s.deps.Keys.Sealed() {
		// A sealed node cannot open any tenant key: balancers must route
		// around it, so it answers 503, with the reason in the body.
		h.Status, h.Sealed = "sealed", true
		c.Status(fiber.StatusServiceUnavailable)
	}
	return c.JSON(h)
}

type statusResponse struct {
	raftstore.Status
	Version string        `json:"version"`
	Keyring keyringStatus `json:"keyring"`
}

// keyringStatus is this node's key state: whether it can unseal tenant
// roots, and how many unwrapped keys it holds in memory.
type keyringStatus struct {
	Sealed     bool `json:"sealed"`
	CachedKeys int  `json:"cached_keys"`
}

func (s *server) status(c *fiber.Ctx, _ *input) error {
	st := s.deps.Cluster.Status()
	if st.Peers == nil {
		st.Peers = []raftstore.Peer{}
	}
	return c.JSON(statusResponse{Status: st, Version: s.deps.Version,
		Keyring: keyringStatus{Sealed: s.deps.Keys.Sealed(), CachedKeys: s.deps.Keys.CachedKeys()}})
}

type peersResponse struct {
	Peers []raftstore.Peer `json:"peers"`
}

func (s *server) listPeers(c *fiber.Ctx, _ *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	peers, err := s.deps.Cluster.Peers(ctx)
	if err != nil {
		return fmt.Errorf("api: list peers: %w", err)
	}
	if peers == nil {
		peers = []raftstore.Peer{}
	}
	return c.JSON(peersResponse{Peers: peers})
}

// removePeer removes a member; removing a member that is not there
// succeeds, so the call can be retried.
func (s *server) removePeer(c *fiber.Ctx, in *input) error {
	id := in.str("id")
	if err := s.auditRequested(c, in.who, "cluster.remove_peer", "node:"+id); err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.Cluster.RemovePeer(ctx, id); err != nil {
		return fmt.Errorf("api: remove peer %q: %w", id, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type transferRequest struct {
	ID string `json:"id"`
}

type transferResponse struct {
	Status string `json:"status"`
}

// transferLeader hands leadership to the named peer, or to any voter when
// no id is given. Naming the current leader succeeds without a transfer.
// A cluster without another voter is answered 409: the request is valid
// but cannot be carried out in the cluster's current shape.
func (s *server) transferLeader(c *fiber.Ctx, in *input) error {
	req := bodyOf[transferRequest](in)
	if req.ID != "" && !validNodeID(req.ID) {
		return &requestError{kind: kindValidation, detail: "id must be a node id.",
			fields: []FieldProblem{{Field: "id", Reason: "must be a node id"}}}
	}
	target := "node:" + req.ID
	if req.ID == "" {
		target = "node:any"
	}
	if err := s.auditRequested(c, in.who, "cluster.transfer_leader", target); err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	peers, err := s.deps.Cluster.Peers(ctx)
	if err != nil {
		return fmt.Errorf("api: transfer leadership: %w", err)
	}
	others := 0
	for _, p := range peers {
		if p.ID == req.ID && p.Leader {
			return c.Status(fiber.StatusAccepted).JSON(transferResponse{Status: "transferred"})
		}
		if p.ID == req.ID && !p.Voter {
			return &requestError{kind: kindValidation, detail: "id is not a voting member of the cluster.",
				fields: []FieldProblem{{Field: "id", Reason: "is not a voting member"}}}
		}
		if p.Voter && !p.Leader {
			others++
		}
	}
	if others == 0 && req.ID == "" {
		return &requestError{kind: kindConflict, detail: "The cluster has no other voter to transfer leadership to."}
	}
	if err := s.deps.Cluster.TransferLeadership(ctx, req.ID); err != nil {
		return fmt.Errorf("api: transfer leadership to %q: %w", req.ID, err)
	}
	return c.Status(fiber.StatusAccepted).JSON(transferResponse{Status: "transferred"})
}
