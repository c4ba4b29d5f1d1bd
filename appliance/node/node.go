// Package node runs one Custos node: it turns a validated configuration into
// a running raftstore node and HTTP API, and stops them gracefully.
//
// # Start-up
//
// A node's identity lives in its data directory: tls/ (cluster CA, node
// certificate), state.db (the replicated state) and raft/ (log and
// snapshots). At start:
//
//   - no identity and dev mode: Init runs in place (a one-node cluster);
//   - no identity and cluster.join + cluster.join_token set: the node fetches
//     its certificate from a listed node (FetchJoinCredentials);
//   - bootstrap.json present (left by `custos operator init`): the node
//     bootstraps a new cluster with itself as the only voter, then writes the
//     cluster record — region and the hashes of the operator and join tokens
//     — into the replicated state and removes the file;
//   - cluster.join set: once running, the node asks to be added as a voter
//     (idempotent; a no-op when it already is one).
//
// Secrets are printed once and stored only as SHA-256 hashes in the
// replicated state, so every node can check them.
//
// # Keys
//
// The seal identity (keyring.seal_identity, default <data_dir>/seal.age)
// is loaded at start. `operator init` creates it and records its
// recipient in the cluster (or records the operator's own recipients); the
// operator copies it to every node. A node without it runs sealed: it
// serves, but /v1/sys/health answers 503 "sealed" and key operations answer
// 503 key-unavailable. Each node runs a keyring janitor (cache purges,
// compaction after shreds; on the leader, rewraps and Vault trims).
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/config"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Replicated system records.
var (
	bucketSys        = raftstore.Path("sys")
	keyCluster       = []byte("cluster")
	keyOperatorToken = []byte("operator_token_sha256")
	keyJoinToken     = []byte("join_token_sha256")
)

// ErrNotInitialized: the data directory holds no node identity.
var ErrNotInitialized = errors.New("node not initialized: run `custos operator init` (first node) or `custos operator join`, or set cluster.join and cluster.join_token")

// Node is a running node.
type Node struct {
	cfg      *config.Config
	logger   *slog.Logger
	store    *raftstore.Store
	ln       net.Listener
	apiDone  chan error
	shutdown func(context.Context) error
	tempDir  string

	stopJanitor func() // stops the background work (keyring janitor, audit)
	// Token is the operator token when this start created it (dev mode).
	Token string
}

// Options are the parts of a start that are not configuration.
type Options struct {
	Logger  *slog.Logger
	Version string
	// RaftLog receives hashicorp/raft's own log lines.
	RaftLog io.Writer
}

// Start starts a node and returns once the API is listening and the cluster
// has a leader (or ctx ends).
func Start(ctx context.Context, cfg *config.Config, opts Options) (*Node, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, logger: logger, apiDone: make(chan error, 1)}
	ok := false
	defer func() {
		if !ok {
			n.closeStore()
		}
	}()
	dataDir := cfg.DataDir
	if dataDir == "" && cfg.Dev {
		d, err := os.MkdirTemp("", "custos-dev-*")
		if err != nil {
			return nil, fmt.Errorf("node: dev data dir: %w", err)
		}
		dataDir, n.tempDir = d, d
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	has, err := hasCredentials(dataDir)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if !has {
		switch {
		case cfg.Dev:
			sec, err := Init(dataDir, cfg.NodeID, InitOptions{OperatorToken: cfg.DevToken.Reveal(), SealIdentity: cfg.Keyring.SealIdentity, Region: cfg.Region})
			if err != nil {
				return nil, fmt.Errorf("node: %w", err)
			}
			n.Token = sec.OperatorToken
		case len(cfg.Cluster.Join) > 0 && cfg.Cluster.JoinToken != "":
			if err := n.fetchCredentials(ctx, dataDir); err != nil {
				return nil, err
			}
		default:
			return nil, ErrNotInitialized
		}
	}
	boot, err := readBootstrap(dataDir)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	creds, err := raftstore.LoadCredentials(filepath.Join(dataDir, dirTLS))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	raftLog := opts.RaftLog
	if raftLog == nil {
		raftLog = os.Stderr
	}
	n.store, err = raftstore.Open(ctx, raftstore.Config{
		NodeID: cfg.NodeID, Region: cfg.Region, DataDir: dataDir,
		ListenAddress: cfg.Cluster.ListenAddress, AdvertiseAddress: cfg.Cluster.AdvertiseAddress,
		Credentials: creds, Bootstrap: boot != nil,
		HeartbeatTimeout: cfg.Cluster.HeartbeatTimeout, ElectionTimeout: cfg.Cluster.ElectionTimeout,
		LeaderLeaseTimeout: cfg.Cluster.LeaderLeaseTimeout, SnapshotThreshold: cfg.Cluster.SnapshotThreshold,
		SnapshotInterval: cfg.Cluster.SnapshotInterval, ApplyTimeout: cfg.Cluster.ApplyTimeout,
		AuthorizeJoin: n.authorizeJoin, BeforeJoin: n.auditJoin, BeforeAddVoter: n.auditAddVoter, Logger: logger,
		RaftLogOutput: raftLog, RaftLogLevel: raftLevel(cfg.Log.Level),
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if boot != nil {
		if err := n.finishBootstrap(ctx, dataDir, boot); err != nil {
			return nil, err
		}
	}
	if len(cfg.Cluster.Join) > 0 {
		go func() {
			jctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := n.store.Join(jctx, cfg.Cluster.Join); err != nil {
				logger.Error("join failed", "error", err)
			}
		}()
	}

	// The tenancy boundary: the only way into tenant storage.
	b := tenancy.New(n.store)
	keys, ids, err := n.startKeyring(b, dataDir)
	if err != nil {
		return nil, err
	}
	ten := tenants.New(b, cfg.Region, tenants.WithKeys(keys))
	// Domain services reach tenant storage only through the boundary's
	// tenant-scoped handles.
	colls := collections.New(b, nil)
	aud, runner := n.startAudit(dataDir, ids, ten)
	// The node's group commit of read-audit entries; closed (what is
	// queued committed first) when the node stops, after the API.
	readAudit := audit.NewBatcher(b, audit.BatchOptions{})
	n.background(func(ctx context.Context) { <-ctx.Done(); readAudit.Close() })
	recs := records.New(b, keys, colls, nil, records.WithReadAudit(readAudit))
	bl := blobs.New(b, keys, recs, blobs.Config{MaxSize: cfg.Blobs.MaxSize, ContentTypes: cfg.Blobs.ContentTypes, StaleAfter: cfg.Blobs.StaleAfter}, nil)
	n.background(func(ctx context.Context) {
		bl.RunSweeper(ctx, blobs.SweepConfig{IsLeader: n.store.IsLeader, Tenants: ten.IDs, Logger: n.logger.With("component", "blobs")})
	})
	app := api.New(api.Deps{
		Cluster: n.store, Tenants: ten, Keys: keys, Audit: aud, SelfCheck: runner, APIKeys: apikeys.New(b, nil),
		Collections: colls, Records: recs, Blobs: bl,
		Auth: n, Version: opts.Version, Logger: logger,
	}, api.Options{BodyLimit: cfg.API.BodyLimit, RequestTimeout: cfg.API.RequestTimeout})
	n.ln, err = net.Listen("tcp", cfg.API.ListenAddress)
	if err != nil {
		return nil, fmt.Errorf("node: api listen %s: %w", cfg.API.ListenAddress, err)
	}
	go func() { n.apiDone <- app.Listener(n.ln) }()
	n.shutdown = app.ShutdownWithContext
	ok = true
	logger.Info("api listening", "address", n.ln.Addr().String())
	return n, nil
}

func raftLevel(l string) string {
	if l == "debug" {
		return "info"
	}
	return "warn"
}

func (n *Node) fetchCredentials(ctx context.Context, dataDir string) error {
	var errs []error
	for _, addr := range n.cfg.Cluster.Join {
		err := FetchJoinCredentials(ctx, dataDir, addr, n.cfg.Cluster.JoinToken.Reveal(), n.cfg.NodeID, n.cfg.Region)
		if err == nil {
			return nil
		}
		if errors.Is(err, raftstore.ErrRegionMismatch) || errors.Is(err, raftstore.ErrJoinRefused) {
			return fmt.Errorf("node: %w", err)
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("node: fetch credentials: %w", errors.Join(errs...))
}

// finishBootstrap writes the cluster record once this node leads, then
// removes bootstrap.json. It is idempotent across restarts.
func (n *Node) finishBootstrap(ctx context.Context, dataDir string, boot *bootstrapFile) error {
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.store.WaitLeader(wctx); err != nil {
		return fmt.Errorf("node: bootstrap: %w", err)
	}
	rec, _ := json.Marshal(map[string]string{"region": n.cfg.Region, "initialized_at": time.Now().UTC().Format(time.RFC3339Nano), "first_node": n.cfg.NodeID})
	sealOps, err := keyring.BootstrapOps(boot.SealRecipients)
	if err != nil {
		return fmt.Errorf("node: bootstrap: %w", err)
	}
	if boot.AuditVerifierKey == "" {
		return fmt.Errorf("node: bootstrap: %s has no audit key (made by an older custos?)", fileBootstrap)
	}
	sealOps = append(sealOps, audit.BootstrapOps(boot.AuditVerifierKey, boot.AuditSigningKey)...)
	initEntry, err := audit.Record(tenancy.SystemChain, audit.Entry{
		Time: time.Now().UTC(), Actor: audit.Actor{Type: audit.ActorOperator, ID: "operator"},
		Action: "cluster.init", Target: "node:" + n.cfg.NodeID, Outcome: audit.OutcomeSuccess,
		Details: map[string]string{"region": n.cfg.Region},
	})
	if err != nil {
		return fmt.Errorf("node: bootstrap: %w", err)
	}
	res, err := n.store.Apply(wctx, &raftstore.Txn{
		Conds: []raftstore.Cond{{Kind: raftstore.CondAbsent, Bucket: bucketSys, Key: keyCluster}},
		Ops: append([]raftstore.Op{
			{Kind: raftstore.OpPut, Bucket: bucketSys, Key: keyCluster, Value: rec},
			{Kind: raftstore.OpPut, Bucket: bucketSys, Key: keyOperatorToken, Value: []byte(boot.OperatorTokenHash)},
			{Kind: raftstore.OpPut, Bucket: bucketSys, Key: keyJoinToken, Value: []byte(boot.JoinTokenHash)},
		}, sealOps...),
		Appends: []raftstore.Append{initEntry},
	})
	if err != nil {
		return fmt.Errorf("node: bootstrap: write cluster record: %w", err)
	}
	if !res.Applied {
		n.logger.Info("cluster record already present")
	}
	if err := os.Remove(filepath.Join(dataDir, fileBootstrap)); err != nil {
		return fmt.Errorf("node: bootstrap: %w", err)
	}
	return nil
}

// startKeyring loads the seal identity (none: the node runs sealed and
// says so in /v1/sys/health) and starts the key janitor.
func (n *Node) startKeyring(b *tenancy.Boundary, dataDir string) (*keyring.Hierarchy, []age.Identity, error) {
	kc := n.cfg.Keyring
	path := SealIdentityPath(kc.SealIdentity, dataDir)
	ids, err := keyring.LoadSealIdentities(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		n.logger.Warn("no seal identity: this node is sealed and cannot use tenant keys; copy the cluster's seal identity to this path and restart", "path", path)
		ids = nil
	case err != nil:
		return nil, nil, fmt.Errorf("node: %w", err)
	}
	h := keyring.NewHierarchy(b, keyring.HierarchyOptions{
		Identities:   ids,
		Cache:        keyring.NewCache(kc.CacheTTL, kc.CacheSize, nil),
		VaultTimeout: kc.VaultTimeout,
		System:       audit.System(),
		Pseudonym:    audit.Pseudonym,
	})
	j := keyring.NewJanitor(h, keyring.JanitorConfig{
		CompactWindow: kc.CompactWindow,
		Compact: func(ctx context.Context) error {
			_, err := n.store.Compact(ctx)
			return err
		},
		StateFile:         filepath.Join(dataDir, "keyring-compacted"),
		SnapshotsRestored: func() uint64 { return n.store.Status().Stats.SnapshotsRestored },
		IsLeader:          n.store.IsLeader,
		TrimAfter:         kc.TrimAfter,
		Logger:            n.logger.With("component", "keyring"),
	})
	n.background(j.Run)
	return h, ids, nil
}

// startAudit starts the audit service: checkpoints on the leader, the
// self-check on every node (its witness file sits next to the state).
func (n *Node) startAudit(dataDir string, ids []age.Identity, ten *tenants.Service) (*audit.Service, *audit.Runner) {
	ac := n.cfg.Audit
	s := audit.New(n.store, ids, nil)
	r := audit.NewRunner(s, audit.RunConfig{
		IsLeader:       n.store.IsLeader,
		MaxAge:         ac.CheckpointInterval,
		MaxEntries:     uint64(ac.CheckpointEntries),
		SelfCheckEvery: ac.SelfCheckInterval,
		Witness:        audit.NewWitness(filepath.Join(dataDir, "audit-witness.json")),
		Retention: func(ctx context.Context, chain string) (time.Duration, error) {
			id, ok := tenancy.TenantOfChain(chain)
			if !ok {
				return ac.Retention, nil
			}
			t, err := ten.Get(ctx, raftstore.Stale, id)
			switch {
			case errors.Is(err, tenants.ErrNotFound):
				return ac.Retention, nil // a deleted tenant's log is kept as long as any
			case err != nil:
				return 0, err
			case t.AuditRetentionDays > 0:
				return time.Duration(t.AuditRetentionDays) * 24 * time.Hour, nil
			}
			return ac.Retention, nil
		},
		Logger: n.logger.With("component", "audit"),
	})
	n.background(r.Run)
	return s, r
}

// background runs fn until the node closes.
func (n *Node) background(fn func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	prev := n.stopJanitor
	n.stopJanitor = func() {
		cancel()
		<-done
		if prev != nil {
			prev()
		}
	}
	go func() {
		defer close(done)
		fn(ctx)
	}()
}

// auditJoin records, in the system chain, that a node presented a valid
// join token and is given a certificate (before it is: fail closed).
func (n *Node) auditJoin(ctx context.Context, nodeID string) error {
	return n.auditMembership(ctx, "cluster.join", nodeID, nil)
}

// auditAddVoter records that a node is made a voter (before it is).
func (n *Node) auditAddVoter(ctx context.Context, nodeID, addr string) error {
	return n.auditMembership(ctx, "cluster.add_voter", nodeID, map[string]string{"address": addr})
}

func (n *Node) auditMembership(ctx context.Context, action, nodeID string, details map[string]string) error {
	e := audit.System().Entry(time.Now().UTC(), action, "node:"+nodeID, audit.OutcomeRequested, details)
	return audit.Append(ctx, n.store, tenancy.SystemChain, e)
}

// CheckOperatorToken accepts the operator token. It reads the local state:
// the token hash changes only at init.
func (n *Node) CheckOperatorToken(ctx context.Context, token string) error {
	return n.checkHash(ctx, keyOperatorToken, token)
}

func (n *Node) authorizeJoin(ctx context.Context, token string) error {
	return n.checkHash(ctx, keyJoinToken, token)
}

var errBadToken = errors.New("invalid token")

func (n *Node) checkHash(ctx context.Context, key []byte, token string) error {
	var hash []byte
	err := n.store.View(ctx, raftstore.Stale, func(r *raftstore.ReadTx) error {
		hash, _, _ = r.Get(bucketSys, key)
		return nil
	})
	if err != nil {
		return err
	}
	if len(hash) == 0 || token == "" || !raftstore.TokenMatches(token, string(hash)) {
		return errBadToken
	}
	return nil
}

// APIAddress is the address the API listens on.
func (n *Node) APIAddress() string { return n.ln.Addr().String() }

// Store is the node's replicated store.
func (n *Node) Store() *raftstore.Store { return n.store }

// WaitReady waits until the cluster has a leader. (On the first node Start
// has already written the cluster record.)
func (n *Node) WaitReady(ctx context.Context) error { return n.store.WaitLeader(ctx) }

// Done delivers the API server's error if it stops on its own.
func (n *Node) Done() <-chan error { return n.apiDone }

// Close stops the API (letting requests in flight finish) and the store.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	if n.shutdown != nil {
		errs = append(errs, n.shutdown(ctx))
	}
	errs = append(errs, n.closeStore())
	if n.tempDir != "" {
		errs = append(errs, os.RemoveAll(n.tempDir))
	}
	return errors.Join(errs...)
}

func (n *Node) closeStore() error {
	if n.stopJanitor != nil {
		n.stopJanitor()
		n.stopJanitor = nil
	}
	if n.store == nil {
		return nil
	}
	return n.store.Close()
}
