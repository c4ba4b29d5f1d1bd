package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Config configures a Store.
type Config struct {
	NodeID  string
	Region  string
	DataDir string

	// ListenAddress is the cluster (node-to-node) address to bind;
	// AdvertiseAddress is what peers dial (defaults to the bound address).
	ListenAddress    string
	AdvertiseAddress string

	// Credentials is the node's cluster TLS identity.
	Credentials *Credentials

	// Bootstrap makes this node the first member of a new cluster when it
	// has no raft state yet. Ignored once state exists.
	Bootstrap bool

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	// TrailingLogs is how many applied entries stay in the log after a
	// snapshot, for followers that lag a little (default 10240).
	TrailingLogs uint64
	// ApplyTimeout bounds internal waits (forwarding, leadership checks).
	ApplyTimeout time.Duration

	// BeforeJoin, when set, is called after a join token was accepted and
	// before the node's certificate is issued, and BeforeAddVoter before a
	// new voter is added (not for one that already is): the node writes
	// their audit entries there. An error refuses the join or the addition.
	BeforeJoin     func(ctx context.Context, nodeID string) error
	BeforeAddVoter func(ctx context.Context, nodeID, address string) error
	// AuthorizeJoin decides whether a join token is valid. Nil refuses all
	// joins.
	AuthorizeJoin func(ctx context.Context, token string) error

	Logger *slog.Logger
	// RaftLogOutput and RaftLogLevel configure hashicorp/raft's own logger
	// (default: stderr at warn).
	RaftLogOutput io.Writer
	RaftLogLevel  string
	// RaftLogger, when set, receives hashicorp/raft's log instead (and
	// RaftLogOutput and RaftLogLevel are ignored): the node passes an
	// adapter onto its structured logger, so that one format reaches the
	// log (package appliance/logging).
	RaftLogger hclog.Logger
	// ObserveApply, when set, is told how long each Apply took, from the
	// call to its result (a write acknowledged or refused), for the apply
	// latency metric. It must be cheap and safe for concurrent use.
	ObserveApply func(time.Duration)
	// Fatal is called when the node must stop: an I/O error on the log or
	// the state, or an undecodable entry. It must not return control to
	// normal operation; the default logs and exits the process with status
	// 70. Tests install one that records and blocks.
	Fatal func(error)

	// ChainFault is for tests; leave it nil. When set, the state machine
	// asks it before every chain append, and an error refuses the whole
	// transaction with ErrChainUnwritable (Result.Err), nothing of it
	// applied — how tests check that writes fail closed when their audit
	// record cannot be written. Apply must be deterministic: set the same
	// function on every node, and let it decide from its arguments (say,
	// fail records that start with "poison"). A switch flipped at run time
	// is not enough: followers apply later than the leader answers, so
	// flip it back only once every node has applied the entries it must
	// fail (a linearizable read on each), or the nodes diverge.
	ChainFault func(chain, data []byte) error

	// ChainTally, when set, is asked for every chain append and returns a
	// key (1 to 128 bytes; nil: none) under which the state machine counts
	// the entry, in the same transaction: ReadTx.ChainTally reads the
	// counts by key range. It lets a reader aggregate a chain of millions
	// of entries (events per day and kind) in a handful of reads instead
	// of a scan. It must be a pure function of its arguments, the same on
	// every node (the counts are replicated state), and fast: it runs in
	// the apply path. Counts are of entries appended, pruned ones
	// included, since the function was set.
	ChainTally func(chain, data []byte) []byte

	// wrapLog lets tests inject faults under the fail-stop wrapper.
	wrapLog func(raft.LogStore) raft.LogStore
}

// Consistency selects how fresh a read must be.
type Consistency int

// Read consistencies.
const (
	// Linearizable reads reflect every write acknowledged before the read
	// began, on any node.
	Linearizable Consistency = iota
	// Stale reads return the local state, which may lag the leader.
	Stale
)

// Stats are counters for benchmarks and metrics.
type Stats struct {
	LogBatches  uint64 `json:"log_batches"`  // StoreLogs calls: one fsync'd bbolt commit each
	LogEntries  uint64 `json:"log_entries"`  // raft entries written to the log
	LogNanos    uint64 `json:"log_nanos"`    // time spent in StoreLogs
	FSMNanos    uint64 `json:"fsm_nanos"`    // time spent committing state batches
	FSMBatches  uint64 `json:"fsm_batches"`  // bbolt commits of the state
	Proposals   uint64 `json:"proposals"`    // transactions proposed on this node
	EntriesSent uint64 `json:"entries_sent"` // raft entries proposed (or forwarded) by this node
	// SnapshotsRestored counts snapshots installed into the state (from
	// the leader, or at start): see Compact.
	SnapshotsRestored uint64 `json:"snapshots_restored"`
}

// Peer is one member of the raft configuration.
type Peer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
	// Heartbeat and LastContact are the leader's view of a follower, set
	// on the leader only (see heartbeats): HeartbeatOK while its
	// heartbeats succeed, HeartbeatFailing after one failed, with when
	// it last answered (zero: never).
	Heartbeat   string    `json:"heartbeat,omitempty"`
	LastContact time.Time `json:"last_contact,omitzero"`
}

// Status is a point-in-time view of the node.
type Status struct {
	NodeID       string `json:"node_id"`
	Region       string `json:"region"`
	Address      string `json:"address"`
	State        string `json:"state"`
	LeaderID     string `json:"leader_id"`
	LeaderAddr   string `json:"leader_address"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastIndex    uint64 `json:"last_log_index"`
	Peers        []Peer `json:"peers"`
	Stats        Stats  `json:"stats"`
}

// Store is a replicated transactional store: one raft node with its FSM.
type Store struct {
	cfg    Config
	logger *slog.Logger
	fatal  func(error)

	fsm       *FSM
	raft      *raft.Raft
	logs      *failStopLogs
	snaps     raft.SnapshotStore
	mux       *mux
	pool      *rpcPool
	rpcServer *rpc.Server
	joinRPC   *rpc.Server
	faults    *netFaults
	hb        *heartbeats // the leader's view of its followers

	proposer    proposer // Apply → raft entries (group commit, proposer.go)
	gate        readGate
	barrierTerm atomic.Uint64 // the term whose first no-op the read gate committed
	compactMu   sync.Mutex    // one Compact at a time: it changes TrailingLogs

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// logCacheEntries is how many recent raft entries stay in memory, in front
// of the log store (see Open).
const logCacheEntries = 4

// Open starts a node. It returns once raft is running; use WaitLeader to
// wait for the cluster to elect a leader.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:    cfg,
		logger: cfg.Logger,
		fatal:  cfg.Fatal,
		faults: &netFaults{},
		proposer: proposer{
			queue:    make(chan *proposal, 4096),
			inflight: make(chan struct{}, maxInflight),
		},
		done: make(chan struct{}),
	}
	s.proposer.s = s
	s.gate.s = s
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "raft"), 0o700); err != nil {
		return nil, fmt.Errorf("raftstore: data dir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			s.closeResources()
		}
	}()

	var err error
	if s.fsm, err = OpenFSM(filepath.Join(cfg.DataDir, "state.db"), s.logger, s.fatal); err != nil {
		return nil, err
	}
	s.fsm.chainFault = cfg.ChainFault // before raft starts applying
	s.fsm.chainTally = cfg.ChainTally
	hlog := cfg.RaftLogger
	if hlog == nil {
		hlog = hclog.New(&hclog.LoggerOptions{
			Name:   "raft",
			Level:  hclog.LevelFromString(cfg.RaftLogLevel),
			Output: cfg.RaftLogOutput,
		})
	}
	if s.logs, err = openLogStore(cfg); err != nil {
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.DataDir, "raft"), 2, hlog)
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshot store: %w", err)
	}
	s.snaps = snaps
	if err := s.catchUpFromSnapshot(snaps); err != nil {
		return nil, err
	}

	serverTLS, clientTLS, err := cfg.Credentials.tlsConfigs()
	if err != nil {
		return nil, err
	}
	// Serve the CA with the node certificate so a joining node can pin it.
	if ca, err := tls.X509KeyPair(cfg.Credentials.CACert, cfg.Credentials.CAKey); err == nil {
		serverTLS.Certificates[0].Certificate = append(serverTLS.Certificates[0].Certificate, ca.Certificate[0])
	}
	ln, err := net.Listen("tcp", cfg.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("raftstore: listen %s: %w", cfg.ListenAddress, err)
	}
	adv := cfg.AdvertiseAddress
	if adv == "" || hasZeroPort(adv) {
		adv = ln.Addr().String()
	}
	s.cfg.AdvertiseAddress = adv
	s.mux = &mux{
		ln: ln, serverTLS: serverTLS, clientTLS: clientTLS, advertise: serverAddr(adv),
		logger: s.logger, raftConns: make(chan net.Conn, 16), faults: s.faults, done: make(chan struct{}),
	}
	s.pool = &rpcPool{m: s.mux}
	s.rpcServer = rpc.NewServer()
	if err := s.rpcServer.RegisterName("Cluster", &clusterRPC{s: s}); err != nil {
		return nil, err
	}
	s.joinRPC = rpc.NewServer()
	if err := s.joinRPC.RegisterName("Join", &joinRPC{s: s}); err != nil {
		return nil, err
	}
	s.mux.onCluster = func(c net.Conn) { s.rpcServer.ServeConn(c) }
	s.mux.onJoin = func(c net.Conn) { s.joinRPC.ServeConn(c) }
	go s.mux.serve()

	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: streamLayer{m: s.mux}, MaxPool: 4, Timeout: 10 * time.Second, Logger: hlog,
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.BatchApplyCh = true
	// Entries carry up to maxBytesPerEntry (blob chunks make them large):
	// 64 of them bound what one AppendEntries to a lagging follower holds
	// in memory to 256 MiB, while group commit keeps the entry count low.
	rc.MaxAppendEntries = 64
	rc.NoSnapshotRestoreOnStart = true
	rc.NoLegacyTelemetry = true
	rc.Logger = hlog

	hasState, err := raft.HasExistingState(s.logs, s.logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("raftstore: inspect state: %w", err)
	}
	// Recent entries stay in memory: the leader replicates each entry to
	// every follower and a follower applies what it just stored, and
	// without a cache each of those reads the entry back from the log
	// file and decodes it again (measured: a blob upload's CPU went
	// largely to such copies). A few entries suffice for that, and
	// logCacheEntries of at most maxBytesPerEntry bound what it holds.
	logs, err := raft.NewLogCache(logCacheEntries, s.logs)
	if err != nil {
		return nil, fmt.Errorf("raftstore: log cache: %w", err)
	}
	if s.raft, err = raft.NewRaft(rc, s.fsm, logs, s.logs, snaps, trans); err != nil {
		return nil, fmt.Errorf("raftstore: start raft: %w", err)
	}
	s.hb = newHeartbeats()
	s.raft.RegisterObserver(s.hb.obs)
	if cfg.Bootstrap && !hasState {
		f := s.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(adv),
		}}})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("raftstore: bootstrap: %w", err)
		}
	}
	s.wg.Add(2)
	go s.proposer.run()
	go func() {
		defer s.wg.Done()
		s.hb.run(s.done)
	}()
	ok = true
	s.logger.Info("raft node started", "node_id", cfg.NodeID, "region", cfg.Region, "address", adv, "existing_state", hasState)
	return s, nil
}

func (c *Config) defaults() error {
	if c.NodeID == "" || c.DataDir == "" || c.Region == "" || c.Credentials == nil {
		return errors.New("raftstore: node id, region, data dir and credentials are required")
	}
	if c.ListenAddress == "" {
		c.ListenAddress = "127.0.0.1:0"
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = time.Second
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = time.Second
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = c.HeartbeatTimeout / 2
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = 30 * time.Second
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RaftLogOutput == nil {
		c.RaftLogOutput = os.Stderr
	}
	if c.RaftLogLevel == "" {
		c.RaftLogLevel = "warn"
	}
	if c.Fatal == nil {
		logger := c.Logger
		c.Fatal = func(err error) {
			logger.Error("fatal storage error: stopping the node", "error", err)
			os.Exit(70)
		}
	}
	return nil
}

func hasZeroPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err != nil || port == "0"
}

// catchUpFromSnapshot restores the newest snapshot when it is ahead of the
// state file (the state file was lost or is older than the snapshots). In
// the normal case the state file is current and nothing is read.
func (s *Store) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	if list[0].Index <= s.fsm.AppliedIndex() {
		return nil
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("raftstore: open snapshot: %w", err)
	}
	s.logger.Warn("state file behind newest snapshot: restoring", "state_index", s.fsm.AppliedIndex(), "snapshot_index", list[0].Index)
	return s.fsm.Restore(rc)
}

// Close stops the node gracefully.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		s.wg.Wait()
		if s.hb != nil {
			s.raft.DeregisterObserver(s.hb.obs)
		}
		if s.raft != nil {
			err = s.raft.Shutdown().Error()
		}
		s.closeResources()
	})
	return err
}

func (s *Store) closeResources() {
	if s.mux != nil {
		s.mux.close()
	}
	if s.pool != nil {
		s.pool.closeAll()
	}
	if s.logs != nil {
		s.logs.Close()
	}
	if s.fsm != nil {
		s.fsm.Close()
	}
}

// Address is the advertised cluster address.
func (s *Store) Address() string { return s.cfg.AdvertiseAddress }

// NodeID is this node's id.
func (s *Store) NodeID() string { return s.cfg.NodeID }

// Region is this node's region.
func (s *Store) Region() string { return s.cfg.Region }

// IsLeader reports whether this node is the leader.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// WaitLeader waits until some leader is known.
func (s *Store) WaitLeader(ctx context.Context) error {
	for {
		if addr, _ := s.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftstore: wait for leader: %w", ErrNoLeader)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Status returns a view of the node.
func (s *Store) Status() Status {
	addr, id := s.raft.LeaderWithID()
	st := Status{
		NodeID: s.cfg.NodeID, Region: s.cfg.Region, Address: s.cfg.AdvertiseAddress,
		State: s.raft.State().String(), LeaderID: string(id), LeaderAddr: string(addr),
		Term: s.raft.CurrentTerm(), CommitIndex: s.raft.CommitIndex(),
		AppliedIndex: s.fsm.AppliedIndex(), LastIndex: s.raft.LastIndex(),
		Stats: Stats{
			LogBatches: s.logs.batches.Load(), LogEntries: s.logs.entries.Load(),
			LogNanos: s.logs.nanos.Load(), FSMNanos: s.fsm.nanos.Load(),
			FSMBatches: s.fsm.batches.Load(), Proposals: s.proposer.txns.Load(), EntriesSent: s.proposer.entries.Load(),
			SnapshotsRestored: s.fsm.restores.Load(),
		},
	}
	st.Peers, _ = s.peers()
	return st
}

func (s *Store) peers() ([]Peer, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raftstore: configuration: %w", err)
	}
	_, leader := s.raft.LeaderWithID()
	var out []Peer
	for _, srv := range f.Configuration().Servers {
		out = append(out, Peer{ID: string(srv.ID), Address: string(srv.Address), Voter: srv.Suffrage == raft.Voter, Leader: srv.ID == leader})
	}
	if s.hb != nil && string(leader) == s.cfg.NodeID && s.raft.State() == raft.Leader {
		s.hb.annotate(out, s.cfg.NodeID)
	}
	return out, nil
}

// Peers lists the members of the cluster as this node knows them.
func (s *Store) Peers(ctx context.Context) ([]Peer, error) { return s.peers() }
