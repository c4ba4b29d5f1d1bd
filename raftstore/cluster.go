package raftstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// WireErr carries a sentinel error across the cluster RPC.
type WireErr struct {
	Kind string
	Msg  string
}

var wireKinds = []struct {
	kind string
	err  error
}{
	{"no_leader", ErrNoLeader}, {"timeout", ErrTimeout}, {"not_leader", ErrNotLeader},
	{"conflict", ErrConflict}, {"invalid", ErrInvalidTxn}, {"join_refused", ErrJoinRefused},
	{"region", ErrRegionMismatch}, {"unknown_peer", ErrUnknownPeer}, {"closed", ErrClosed},
	{"chain_unwritable", ErrChainUnwritable}, {"last_voter", ErrLastVoter},
}

func toWire(err error) WireErr {
	if err == nil {
		return WireErr{}
	}
	for _, k := range wireKinds {
		if errors.Is(err, k.err) {
			return WireErr{Kind: k.kind, Msg: err.Error()}
		}
	}
	return WireErr{Kind: "other", Msg: err.Error()}
}

func (w WireErr) err() error {
	if w.Kind == "" {
		return nil
	}
	for _, k := range wireKinds {
		if k.kind == w.Kind {
			return &remoteError{msg: w.Msg, sentinel: k.err}
		}
	}
	return errors.New(w.Msg)
}

// WireResult is Result on the wire.
type WireResult struct {
	Applied    bool
	FailedCond int
	ErrMsg     string
	ErrKind    string // a wireKinds kind; empty (an older node): conflict
	Revision   uint64
	Chains     []WireChainPos
}

// WireChainPos is ChainPos on the wire. gob matches fields by name, and
// nodes of different versions talk to each other during a rolling upgrade,
// so the field names stay what they were when ChainPos was sent itself:
// Hash is the entry's link (ChainPos.Link).
type WireChainPos struct {
	Chain string
	Seq   uint64
	Hash  [32]byte
}

func wireResult(r Result) WireResult {
	w := WireResult{Applied: r.Applied, FailedCond: r.FailedCond, Revision: r.Revision}
	for _, c := range r.Chains {
		w.Chains = append(w.Chains, WireChainPos{Chain: c.Chain, Seq: c.Seq, Hash: c.Link})
	}
	if r.Err != nil {
		we := toWire(r.Err)
		w.ErrMsg, w.ErrKind = we.Msg, we.Kind
	}
	return w
}

func (w WireResult) result() Result {
	r := Result{Applied: w.Applied, FailedCond: w.FailedCond, Revision: w.Revision}
	for _, c := range w.Chains {
		r.Chains = append(r.Chains, ChainPos{Chain: c.Chain, Seq: c.Seq, Link: c.Hash})
	}
	if w.ErrMsg != "" {
		r.Err = &remoteError{msg: w.ErrMsg, sentinel: ErrConflict}
		if w.ErrKind != "" {
			r.Err = WireErr{Kind: w.ErrKind, Msg: w.ErrMsg}.err()
		}
	}
	return r
}

// RPC argument and reply types (exported for net/rpc's gob codec).
type (
	ApplyArgs  struct{ Entry []byte }
	ApplyReply struct {
		Results []WireResult
		Err     WireErr
	}
	ReadIndexArgs  struct{ From string }
	ReadIndexReply struct {
		Index uint64
		Err   WireErr
	}
	MemberArgs struct {
		ID, Address, Region string
	}
	MemberReply struct{ Err WireErr }
	JoinArgs    struct {
		Token, NodeID, Region string
		PublicKey             []byte // PKIX DER
	}
	JoinReply struct {
		CACert, CAKey, NodeCert []byte
		Err                     WireErr
	}
)

func (r *ApplyReply) wireErr() WireErr     { return r.Err }
func (r *ReadIndexReply) wireErr() WireErr { return r.Err }
func (r *MemberReply) wireErr() WireErr    { return r.Err }

// clusterRPC serves node-to-node requests on the mutual-TLS channel.
type clusterRPC struct{ s *Store }

func (c *clusterRPC) Apply(args *ApplyArgs, reply *ApplyReply) error {
	s := c.s
	// A corrupt entry would stop every node that applies it: check first.
	if _, _, err := decodeCommand(args.Entry); err != nil {
		reply.Err = toWire(fmt.Errorf("%w: %v", ErrInvalidTxn, err))
		return nil
	}
	if s.raft.State() != raft.Leader {
		reply.Err = toWire(ErrNotLeader)
		return nil
	}
	results, err := s.waitApply(s.raft.Apply(args.Entry, s.cfg.ApplyTimeout))
	if err != nil {
		reply.Err = toWire(mapLeaderErr(err))
		return nil
	}
	reply.Results = make([]WireResult, len(results))
	for i, r := range results {
		reply.Results[i] = wireResult(r)
	}
	return nil
}

func (c *clusterRPC) ReadIndex(_ *ReadIndexArgs, reply *ReadIndexReply) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.ApplyTimeout)
	defer cancel()
	idx, err := c.s.gate.confirm(ctx)
	reply.Index, reply.Err = idx, toWire(err)
	return nil
}

func (c *clusterRPC) AddVoter(args *MemberArgs, reply *MemberReply) error {
	reply.Err = toWire(c.s.addVoterLocal(args.ID, args.Address, args.Region))
	return nil
}

func (c *clusterRPC) RemoveServer(args *MemberArgs, reply *MemberReply) error {
	reply.Err = toWire(c.s.removeLocal(args.ID))
	return nil
}

func (c *clusterRPC) TransferLeadership(args *MemberArgs, reply *MemberReply) error {
	reply.Err = toWire(c.s.transferLocal(args.ID))
	return nil
}

// checkRegion refuses a node of another region (residency): at the join
// handshake, and again whenever a voter is added.
func (s *Store) checkRegion(id, region string) error {
	if region != s.cfg.Region {
		return fmt.Errorf("%w: cluster region is %q, node %q declares %q", ErrRegionMismatch, s.cfg.Region, id, region)
	}
	return nil
}

// addVoterLocal adds a voter on the leader. Idempotent: a member with the
// same id and address is left alone.
func (s *Store) addVoterLocal(id, addr, region string) error {
	if err := s.checkRegion(id, region); err != nil {
		return err
	}
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	peers, err := s.peers()
	if err != nil {
		return err
	}
	for _, p := range peers {
		if p.ID == id && p.Address == addr && p.Voter {
			return nil
		}
	}
	if s.cfg.BeforeAddVoter != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
		err := s.cfg.BeforeAddVoter(ctx, id, addr)
		cancel()
		if err != nil {
			return fmt.Errorf("raftstore: add voter %s: %w", id, err)
		}
	}
	if err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("raftstore: add voter %s: %w", id, mapLeaderErr(err))
	}
	s.logger.Info("added voter", "id", id, "address", addr)
	return nil
}

// removeLocal removes a member on the leader. Removing an absent member
// succeeds; removing the only voter is refused with ErrLastVoter before
// raft is asked (raft refuses it too, but only with a message).
func (s *Store) removeLocal(id string) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	peers, err := s.peers()
	if err != nil {
		return err
	}
	found, voter, voters := false, false, 0
	for _, p := range peers {
		if p.ID == id {
			found, voter = true, p.Voter
		}
		if p.Voter {
			voters++
		}
	}
	if !found {
		return nil // idempotent
	}
	if voter && voters == 1 {
		return fmt.Errorf("raftstore: remove %s: %w", id, ErrLastVoter)
	}
	if err := s.raft.RemoveServer(raft.ServerID(id), 0, s.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("raftstore: remove %s: %w", id, mapLeaderErr(err))
	}
	s.logger.Info("removed peer", "id", id)
	return nil
}

func (s *Store) transferLocal(id string) error {
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	var f raft.Future
	if id == "" {
		f = s.raft.LeadershipTransfer()
	} else {
		peers, err := s.peers()
		if err != nil {
			return err
		}
		addr := ""
		for _, p := range peers {
			if p.ID == id {
				addr = p.Address
			}
		}
		if addr == "" {
			return fmt.Errorf("%w: %q", ErrUnknownPeer, id)
		}
		f = s.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr))
	}
	return waitFuture(f, 2*s.cfg.ApplyTimeout)
}

// onLeader runs op here when this node leads, or on the leader through the
// cluster RPC.
func (s *Store) onLeader(ctx context.Context, method string, args *MemberArgs, local func() error) error {
	if s.raft.State() == raft.Leader {
		if err := local(); !errors.Is(err, ErrNotLeader) {
			return err
		}
	}
	var reply MemberReply
	err := s.callLeader(ctx, method, args, &reply, waitAnswer)
	if errors.Is(err, errLocalLeader) {
		return local()
	}
	if err != nil {
		return err
	}
	return reply.Err.err()
}

// RemovePeer removes a member. Removing an absent member succeeds; removing
// the last voter is refused with ErrLastVoter (add another voter first).
// Being idempotent, it is retried through leader changes until ctx ends.
func (s *Store) RemovePeer(ctx context.Context, id string) error {
	for {
		err := s.onLeader(ctx, "Cluster.RemoveServer", &MemberArgs{ID: id}, func() error { return s.removeLocal(id) })
		if err == nil || !(errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrTimeout)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-s.done:
			return ErrClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TransferLeadership asks the leader to hand over to id (any peer if empty).
func (s *Store) TransferLeadership(ctx context.Context, id string) error {
	return s.onLeader(ctx, "Cluster.TransferLeadership", &MemberArgs{ID: id}, func() error { return s.transferLocal(id) })
}

// HandOver hands the leadership to another voter when this node leads
// and has one, before the node stops: the cluster then has a new leader
// within a round trip instead of after an election timeout of silence,
// which matters when every node is restarted in turn (a rolling upgrade).
// It is bounded by ctx and by raft's own transfer timeout (one
// ElectionTimeout); a node that does not lead does nothing. An error
// leaves the node the leader: it may stop anyway, and the others elect.
func (s *Store) HandOver(ctx context.Context) error {
	if s.raft.State() != raft.Leader {
		return nil
	}
	peers, err := s.peers()
	if err != nil {
		return err
	}
	voters := 0
	for _, p := range peers {
		if p.Voter && p.ID != s.cfg.NodeID {
			voters++
		}
	}
	if voters == 0 {
		return nil
	}
	d := 2 * s.cfg.ElectionTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	if err := waitFuture(s.raft.LeadershipTransfer(), d); err != nil {
		return fmt.Errorf("raftstore: hand over leadership: %w", err)
	}
	return nil
}

// Join asks the cluster to add this node as a voter, trying each address
// until one succeeds. It is idempotent, and a no-op when this node already
// belongs to a configuration.
func (s *Store) Join(ctx context.Context, addrs []string) error {
	if peers, err := s.peers(); err == nil {
		for _, p := range peers {
			if p.ID == s.cfg.NodeID {
				return nil
			}
		}
	}
	args := &MemberArgs{ID: s.cfg.NodeID, Address: s.cfg.AdvertiseAddress, Region: s.cfg.Region}
	var lastErr error
	for {
		for _, addr := range addrs {
			err := s.addVia(addr, args)
			if err == nil {
				return nil
			}
			if errors.Is(err, ErrRegionMismatch) {
				return err
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftstore: join: %w", lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// addVia asks the node at addr; a follower forwards to its leader.
func (s *Store) addVia(addr string, args *MemberArgs) error {
	conn, err := s.mux.dial(addr, chanCluster, s.cfg.ApplyTimeout)
	if err != nil {
		return err
	}
	c := rpc.NewClient(conn)
	defer c.Close()
	var reply MemberReply
	if err := c.Call("Cluster.ForwardAddVoter", args, &reply); err != nil {
		return err
	}
	return reply.Err.err()
}

// ForwardAddVoter adds a voter on the leader, forwarding when needed.
func (c *clusterRPC) ForwardAddVoter(args *MemberArgs, reply *MemberReply) error {
	s := c.s
	if err := s.checkRegion(args.ID, args.Region); err != nil {
		reply.Err = toWire(err)
		return nil
	}
	reply.Err = toWire(s.onLeader(context.Background(), "Cluster.AddVoter", args, func() error { return s.addVoterLocal(args.ID, args.Address, args.Region) }))
	return nil
}

// joinRPC serves the join handshake to nodes that have no certificate yet.
type joinRPC struct{ s *Store }

func (j *joinRPC) Join(args *JoinArgs, reply *JoinReply) error {
	s := j.s
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ApplyTimeout)
	defer cancel()
	if s.cfg.AuthorizeJoin == nil {
		reply.Err = toWire(fmt.Errorf("%w: this node does not admit joins", ErrJoinRefused))
		return nil
	}
	if err := s.cfg.AuthorizeJoin(ctx, args.Token); err != nil {
		s.logger.Warn("join refused: bad token", "node_id", args.NodeID)
		reply.Err = toWire(fmt.Errorf("%w: invalid join token", ErrJoinRefused))
		return nil
	}
	if err := s.checkRegion(args.NodeID, args.Region); err != nil {
		s.logger.Warn("join refused: region", "node_id", args.NodeID, "region", args.Region)
		reply.Err = toWire(err)
		return nil
	}
	pub, err := x509.ParsePKIXPublicKey(args.PublicKey)
	if err != nil || args.NodeID == "" {
		reply.Err = toWire(fmt.Errorf("%w: bad join request", ErrJoinRefused))
		return nil
	}
	if s.cfg.BeforeJoin != nil {
		if err := s.cfg.BeforeJoin(ctx, args.NodeID); err != nil {
			s.logger.Warn("join refused: not recorded", "node_id", args.NodeID, "error", err)
			reply.Err = toWire(fmt.Errorf("%w: the join could not be recorded", ErrJoinRefused))
			return nil
		}
	}
	cert, err := s.cfg.Credentials.IssueNodeCert(args.NodeID, pub)
	if err != nil {
		reply.Err = toWire(err)
		return nil
	}
	reply.CACert, reply.CAKey, reply.NodeCert = s.cfg.Credentials.CACert, s.cfg.Credentials.CAKey, cert
	s.logger.Info("issued node certificate for join", "node_id", args.NodeID)
	return nil
}

// Join tokens look like "custos-join.<ca sha256 hex>.<secret>": the
// fingerprint lets the joining node authenticate the cluster, the secret
// authenticates the node to the cluster (which stores only its hash).
const joinTokenPrefix = "custos-join."

// NewJoinToken makes a join token for the cluster CA.
func NewJoinToken(c *Credentials) (string, error) {
	fp, err := c.CAFingerprint()
	if err != nil {
		return "", err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	return joinTokenPrefix + fp + "." + base64.RawURLEncoding.EncodeToString(secret), nil
}

// ParseJoinToken splits a join token.
func ParseJoinToken(tok string) (caFingerprint string, err error) {
	rest, ok := strings.CutPrefix(tok, joinTokenPrefix)
	fp, secret, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || len(fp) != 64 || secret == "" {
		return "", fmt.Errorf("%w: malformed join token", ErrJoinRefused)
	}
	if _, err := hex.DecodeString(fp); err != nil {
		return "", fmt.Errorf("%w: malformed join token", ErrJoinRefused)
	}
	return fp, nil
}

// TokenHash is the stored form of a secret token (SHA-256, hex).
func TokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// TokenMatches compares a presented token with a stored hash in constant
// time.
func TokenMatches(tok, hash string) bool {
	h := TokenHash(tok)
	return subtle.ConstantTimeCompare([]byte(h), []byte(hash)) == 1
}

// FetchCredentials performs the join handshake with the node at addr: it
// authenticates the cluster by the CA fingerprint in the token, presents the
// token, and receives a node certificate for a fresh key.
func FetchCredentials(ctx context.Context, addr, token, nodeID, region string) (*Credentials, error) {
	fp, err := ParseJoinToken(token)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	tlsConf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // verified below against the pinned CA
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPinned(raw, fp)
		},
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: tlsConf}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raftstore: join %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte{chanJoin}); err != nil {
		return nil, fmt.Errorf("raftstore: join %s: %w", addr, err)
	}
	c := rpc.NewClient(conn)
	defer c.Close()
	var reply JoinReply
	if err := c.Call("Join.Join", &JoinArgs{Token: token, NodeID: nodeID, Region: region, PublicKey: pubDER}, &reply); err != nil {
		return nil, fmt.Errorf("raftstore: join %s: %w", addr, err)
	}
	if err := reply.Err.err(); err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Credentials{
		CACert: reply.CACert, CAKey: reply.CAKey, NodeCert: reply.NodeCert,
		NodeKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func verifyPinned(raw [][]byte, fp string) error {
	if len(raw) < 2 {
		return errors.New("cluster did not present its CA")
	}
	var ca *x509.Certificate
	for _, der := range raw[1:] {
		sum := sha256.Sum256(der)
		if hex.EncodeToString(sum[:]) == fp {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return err
			}
			ca = c
		}
	}
	if ca == nil {
		return errors.New("cluster CA does not match the join token's fingerprint")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: serverName})
	return err
}
