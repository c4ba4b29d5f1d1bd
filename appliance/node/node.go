// Package node runs one Custos node. It is wiring only: it loads the
// node's identity from its data directory, constructs the store and the
// services in dependency order, connects them to the HTTP API, starts
// their background work and stops everything gracefully. What the cluster
// stores about itself and how tokens are checked belong to
// appliance/cluster; the audit retention policy to appliance/audit.
//
// # Start-up
//
// A node's identity lives in its data directory: tls/ (cluster CA, node
// certificate, the API certificate issued from the CA), state.db (the replicated state) and raft/ (log and
// snapshots). At start:
//
//   - no identity and dev mode: Init runs in place (a one-node cluster);
//   - no identity and cluster.join + cluster.join_token set: the node fetches
//     its certificate from a listed node (FetchJoinCredentials);
//   - bootstrap.json present (left by `custos operator init`): the node
//     bootstraps a new cluster with itself as the only voter, then writes
//     the cluster's genesis (cluster.Service.Bootstrap) and removes the
//     file;
//   - cluster.join set: once running, the node asks to be added as a voter
//     (idempotent; a no-op when it already is one), retrying for up to five
//     minutes in the background.
//
// Secrets are printed once and stored only as SHA-256 hashes in the
// replicated state, so every node can check them.
//
// # TLS
//
// The API listener serves TLS (apitls.go, package appliance/apitls) with
// the operator's certificate files or one the node issues itself from the
// cluster CA (EnsureAPICertificate, at init, join and start), re-read
// when the files change and on ReloadTLS (SIGHUP); plain HTTP only in dev
// mode or with api.insecure_http, which it logs as a warning.
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
//
// # Lifecycle
//
// All background work — the join, the keyring janitor, audit checkpoints,
// self-checks and pruning, the read-audit batcher, the upload sweeper, the
// retention sweeper and the API server — runs under one context that the
// node cancels on Close, and is tracked, so Close returns only when all of
// it has stopped and then closes the store. Close first drains the API, so requests in flight
// still find the services running.
//
// # Under systemd
//
// With Options.Notifier (the server passes one when NOTIFY_SOCKET is
// set), the node supervises itself for a Type=notify unit: READY=1 once
// its API answers and a leader is known, STATUS= lines with the raft
// state, WATCHDOG=1 while Check passes (the API answers and a
// linearizable read completes), STOPPING=1 when Close begins. What
// "wedged" means, and why losing the quorum counts, is in supervise.go.
package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/apitls"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/backup"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/config"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/appliance/identity/breakglass"
	"github.com/custos/custos/appliance/identity/password"
	"github.com/custos/custos/appliance/identity/signing"
	"github.com/custos/custos/appliance/identity/sso"
	"github.com/custos/custos/appliance/identity/visibility"
	"github.com/custos/custos/appliance/logging"
	"github.com/custos/custos/appliance/metrics"
	"github.com/custos/custos/appliance/notify"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/privacy/erasure"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/privacy/retention"
	"github.com/custos/custos/appliance/ratelimit"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
	"github.com/custos/custos/ui"
)

// joinTimeout bounds the background join (cluster.join).
const joinTimeout = 5 * time.Minute

// Node is a running node.
type Node struct {
	cfg      *config.Config
	logger   *slog.Logger
	store    *raftstore.Store
	ln       net.Listener
	metrics  *metrics.Metrics
	metricLn net.Listener // the metrics listener; nil: none
	apiDone  chan error
	inproc   *fasthttputil.InmemoryListener // the web UI's connections to the API
	shutdown func(context.Context) error
	tempDir  string
	backups  *backup.Scheduler
	certs    *apitls.Reloader // the API's certificate; nil when it serves plain HTTP

	// notifier tells systemd about the node (nil: not under systemd);
	// probe is the client of the API probe; closing is set when Close
	// begins (see "Supervision" in supervise.go).
	notifier *notify.Notifier
	probe    *http.Client
	closing  atomic.Bool

	// life is the node's lifetime: background work runs under it and is
	// tracked by work; Close cancels it (stop) and waits.
	life context.Context
	stop context.CancelFunc
	work sync.WaitGroup

	// Token is the operator token when this start created it (dev mode).
	Token string
}

// Options are the parts of a start that are not configuration.
type Options struct {
	// Logger receives the node's log, hashicorp/raft's included (through
	// an adapter: package appliance/logging); each part logs with its
	// "component" attribute.
	Logger  *slog.Logger
	Version string
	// Hasher hashes and verifies people's passwords; nil: one with the
	// password package's defaults. The server passes the one whose
	// concurrency it added to GOMAXPROCS (see appliance/identity/password,
	// "Bounded hashing").
	Hasher *password.Hasher
	// Notifier receives the node's systemd notifications (readiness,
	// status, watchdog, stopping); nil when not run by systemd.
	Notifier *notify.Notifier
}

// Start starts a node and returns once the API is listening (on the
// first start of a new cluster, also once the cluster's genesis is
// written), or ctx ends. Ending ctx after Start returns does not stop the
// node: Close does.
func Start(ctx context.Context, cfg *config.Config, opts Options) (*Node, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	n := &Node{cfg: cfg, logger: logger, apiDone: make(chan error, 1), life: life, stop: stop,
		notifier: opts.Notifier, probe: newProbeClient()}
	ok := false
	defer func() {
		if !ok {
			n.closeStore()
			n.removeTempDir()
		}
	}()

	// Load: the node's identity and, on a new cluster's first start, its
	// genesis.
	dataDir, err := n.loadIdentity(ctx)
	if err != nil {
		return nil, err
	}
	genesis, err := readBootstrap(dataDir)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	restore, err := readRestorePlan(dataDir)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	creds, err := raftstore.LoadCredentials(filepath.Join(dataDir, dirTLS))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}

	// Construct, in dependency order: the cluster service (raftstore calls
	// its hooks), the store, then the services on top of it.
	members := cluster.New()
	n.metrics = metrics.New(metrics.Options{})
	n.store, err = raftstore.Open(ctx, n.storeConfig(dataDir, creds, genesis != nil || restore != nil, members))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	members.Attach(n.store)
	if genesis != nil {
		if err := n.finishBootstrap(ctx, dataDir, members, *genesis); err != nil {
			return nil, err
		}
	}
	if len(cfg.Cluster.Join) > 0 {
		n.background(n.join)
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
	aud, runner := n.startAudit(dataDir, ids, ten)
	sign, err := n.startSigning(ctx, b, ids)
	if err != nil {
		return nil, err
	}
	// The node's group commit of read-audit entries; closed (what is
	// queued committed first) when the node stops, after the API.
	readAudit := audit.NewBatcher(b, audit.BatchOptions{Observe: n.metrics.ObserveAuditAppend})
	n.background(func(ctx context.Context) { <-ctx.Done(); readAudit.Close() })
	// One resolver decides what each principal reads, for records and
	// blobs alike (custom roles and break-glass grants plug in here).
	grants := breakglass.New(b, nil)
	sight := visibility.New(visibility.WithGrants(grants))
	// Consent: purposes, blob kinds and ledgers (below collections,
	// records and blobs, which enforce what it allows). It asks records'
	// and blobs' subject indexes whether a subject exists (filled in
	// below, before anything is served).
	subjects := &subjectIndexes{}
	cons := consent.New(b, keys, nil, consent.WithReadAudit(readAudit), consent.WithVisibility(sight), consent.WithSubjects(subjects))
	colls := collections.New(b, nil, collections.WithPurposes(cons))
	recs := records.New(b, keys, colls, nil, records.WithReadAudit(readAudit), records.WithVisibility(sight), records.WithConsent(cons))
	bl := blobs.New(b, keys, recs, blobs.Config{MaxSize: cfg.Blobs.MaxSize, ContentTypes: cfg.Blobs.ContentTypes, StaleAfter: cfg.Blobs.StaleAfter}, nil,
		blobs.WithReadAudit(readAudit), blobs.WithVisibility(sight), blobs.WithConsent(cons))
	subjects.records, subjects.blobs = recs, bl
	n.background(func(ctx context.Context) {
		bl.RunSweeper(ctx, blobs.SweepConfig{IsLeader: n.store.IsLeader, Tenants: ten.IDs, Logger: n.logger.With("component", "blobs")})
	})
	n.startRetention(b, recs, colls, ten, retention.WithdrawalConfig{Marks: cons, Subjects: recs, Keys: keys})

	// Connect the services to the API and start serving. The app is the
	// node's whole HTTP surface: the API registers its routes on it, as a
	// UI or metrics would beside it.
	// People: users, roles and sessions. The accounts service alone
	// checks the login backoff (before any password is hashed); the
	// access-token signing keys are the cluster's, sealed to its seal
	// recipients.
	people, err := accounts.New(b, accounts.Options{Keys: keys, Backoff: loginBackoff(cfg.RateLimit),
		Signer: sign, Hasher: opts.Hasher})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	// Data-subject requests; completing a restriction or an opt-out sets
	// the subject's consent flag; a rectification's patch goes through the
	// records service.
	dsr := requests.New(b, keys, requests.WithRectifier(recs), requests.WithFlagger(cons.FlagForRequest))
	// Erasure takes up erasure requests and erases with records', blobs'
	// and consent's removal helpers, the keyring's shred and the audit
	// key's signature.
	era := erasure.New(b, erasure.Deps{Records: recs, Blobs: bl, Consent: cons, Keys: keys, Audit: aud, Requests: dsr})
	if restore != nil {
		if err := n.finishRestore(ctx, dataDir, members, era, restore); err != nil {
			return nil, err
		}
	}
	backups := n.startBackups(members, aud)
	exports := n.startExports(b, keys, recs, colls, bl, cons, dsr, aud, ten)
	n.metrics.Wire(metrics.Sources{Raft: n.store, Keys: keys, Audit: runner, Blobs: bl, Requests: dsr, Tenants: ten.IDs, Version: opts.Version, LastBackup: n.lastBackup})
	n.background(func(ctx context.Context) {
		n.metrics.RunPoll(ctx, cfg.Metrics.PollInterval, logger.With("component", "metrics"))
	})
	apiLog := logger.With("component", "api")
	app := api.NewAppWith(apiLog, api.AppOptions{Observer: n.metrics})
	api.Register(app, api.Deps{
		Cluster: n.store, Tenants: ten, Keys: keys, Audit: aud, SelfCheck: runner, APIKeys: apikeys.New(b, nil),
		Collections: colls, Records: recs, Blobs: bl, Erasure: era, Exports: exports, Signing: sign, BreakGlass: grants, RootToken: members,
		Backup: backups, BackupRecipients: members,
		Auth: members, SSO: sso.New(b, keys, people, sso.Options{Logger: logger}), Accounts: people, Owners: people, Requests: dsr, Consent: cons, Version: opts.Version, Logger: apiLog,
		Metrics: n.metrics.Registry(), Observer: n.metrics,
	}, api.Options{BodyLimit: cfg.API.BodyLimit, RequestTimeout: cfg.API.RequestTimeout, RateLimit: rateLimit(cfg.RateLimit)})
	n.inproc = fasthttputil.NewInmemoryListener()
	plain := cfg.API.PlainHTTP(cfg.Dev)
	ui.Register(app, ui.Deps{
		Dial:   func(_ context.Context, remote net.Addr) (net.Conn, error) { return n.inproc.DialWithLocalAddr(remote) },
		Secure: !(plain && cfg.Dev), HSTS: !plain, DevTokenLogin: cfg.Dev,
		Version: opts.Version, Logger: logger.With("component", "ui"),
	})
	if err := n.startMetricsListener(); err != nil {
		return nil, err
	}
	if n.ln, err = n.listenAPI(dataDir); err != nil {
		return nil, err
	}
	// QuietListener: a connection that never sent a request is closed
	// without a spurious 400 when the read timeout passes.
	n.work.Go(func() { n.apiDone <- app.Listener(api.QuietListener(n.ln)) })
	// The web UI calls the API in process, through connections of an
	// in-memory listener the same app serves (ui's package doc says why).
	n.work.Go(func() { _ = app.Listener(n.inproc) })
	n.shutdown = app.ShutdownWithContext
	ok = true
	logger.Info("api listening", "url", n.APIURL())
	if n.notifier != nil {
		n.background(n.supervise)
	}
	return n, nil
}

// loadIdentity makes sure the data directory holds a node identity —
// creating one in dev mode, fetching one from the cluster with a join
// token — and returns the directory.
func (n *Node) loadIdentity(ctx context.Context) (string, error) {
	cfg := n.cfg
	dataDir := cfg.DataDir
	if dataDir == "" && cfg.Dev {
		d, err := os.MkdirTemp("", "custos-dev-*")
		if err != nil {
			return "", fmt.Errorf("node: dev data dir: %w", err)
		}
		dataDir, n.tempDir = d, d
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("node: data dir: %w", err)
	}
	has, err := hasCredentials(dataDir)
	if err != nil {
		return "", fmt.Errorf("node: %w", err)
	}
	switch {
	case has:
	case cfg.Dev:
		sec, err := Init(dataDir, cfg.NodeID, InitOptions{OperatorToken: cfg.DevToken.Reveal(), SealIdentity: cfg.Keyring.SealIdentity, Region: cfg.Region})
		if err != nil {
			return "", fmt.Errorf("node: %w", err)
		}
		n.Token = sec.OperatorToken
	case len(cfg.Cluster.Join) > 0 && cfg.Cluster.JoinToken != "":
		if err := n.fetchCredentials(ctx, dataDir); err != nil {
			return "", err
		}
	default:
		return "", ErrNotInitialized
	}
	return dataDir, nil
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

// storeConfig is the raftstore configuration of this node; members
// authorizes joins and audits membership changes.
func (n *Node) storeConfig(dataDir string, creds *raftstore.Credentials, bootstrap bool, members *cluster.Service) raftstore.Config {
	cc := n.cfg.Cluster
	return raftstore.Config{
		NodeID: n.cfg.NodeID, Region: n.cfg.Region, DataDir: dataDir,
		ListenAddress: cc.ListenAddress, AdvertiseAddress: cc.AdvertiseAddress,
		Credentials: creds, Bootstrap: bootstrap,
		HeartbeatTimeout: cc.HeartbeatTimeout, ElectionTimeout: cc.ElectionTimeout,
		LeaderLeaseTimeout: cc.LeaderLeaseTimeout, SnapshotThreshold: cc.SnapshotThreshold,
		SnapshotInterval: cc.SnapshotInterval, ApplyTimeout: cc.ApplyTimeout,
		AuthorizeJoin: members.AuthorizeJoin, BeforeJoin: members.AuditJoin, BeforeAddVoter: members.AuditAddVoter,
		Logger:     n.logger,
		RaftLogger: logging.Hclog(n.logger.With("component", "raft"), "raft"),
		// Apply latency, on every node: a follower's writes are forwarded.
		ObserveApply: n.metrics.ObserveApply,
		// Events per day by action of every audit chain, counted as
		// entries apply (the same function on every node: replicated state).
		ChainTally: audit.TallyKey,
	}
}

// join asks the cluster to make this node a voter (cluster.join), retrying
// until it succeeds, joinTimeout passes or the node closes.
func (n *Node) join(ctx context.Context) {
	jctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	err := n.store.Join(jctx, n.cfg.Cluster.Join)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		n.logger.Info("join stopped: the node is closing", "error", err)
	default:
		n.logger.Error("join failed", "error", err)
	}
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

// startAudit starts the audit service: checkpoints and retention on the
// leader, the self-check on every node (its witness file sits next to the
// state).
func (n *Node) startAudit(dataDir string, ids []age.Identity, ten *tenants.Service) (*audit.Service, *audit.Runner) {
	ac := n.cfg.Audit
	s := audit.New(n.store, ids, nil)
	r := audit.NewRunner(s, audit.RunConfig{
		IsLeader:       n.store.IsLeader,
		MaxAge:         ac.CheckpointInterval,
		MaxEntries:     uint64(ac.CheckpointEntries),
		SelfCheckEvery: ac.SelfCheckInterval,
		Witness:        audit.NewWitness(filepath.Join(dataDir, "audit-witness.json")),
		Retention:      audit.Retention{Default: ac.Retention, Tenants: ten}.For,
		Logger:         n.logger.With("component", "audit"),
	})
	n.background(r.Run)
	return s, r
}

// startRetention starts the retention sweeper: every node runs it, the
// leader alone sweeps (periods, and the withdrawals w carries out).
func (n *Node) startRetention(b *tenancy.Boundary, recs *records.Service, colls *collections.Service, ten *tenants.Service, w retention.WithdrawalConfig) {
	rc := n.cfg.Retention
	pause := rc.Pause
	if pause == 0 {
		pause = -1 // the configuration's 0 is no fixed pause; the sweeper's 0 is its default
	}
	s := retention.New(b, recs, colls, retention.Config{
		Interval: rc.Interval, Batch: rc.BatchSize, Pause: pause,
		IsLeader: n.store.IsLeader, Tenants: ten.IDs, TenantDays: ten.RecordRetentionDays, Withdrawals: w,
		Logger: n.logger.With("component", "retention"),
	})
	n.background(s.Run)
}

// startSigning opens the cluster's access-token signing keys and keeps
// them current in the background: the leader creates them at the
// cluster's first start and rotates them; every node reloads them when
// they change. A sealed node verifies tokens and cannot issue them.
func (n *Node) startSigning(ctx context.Context, b *tenancy.Boundary, ids []age.Identity) (*signing.Keys, error) {
	k, err := signing.Open(ctx, b, signing.Options{
		Issuer:     TokenIssuer(n.cfg.Region),
		Identities: ids,
		IsLeader:   n.store.IsLeader,
		Logger:     n.logger.With("component", "signing"),
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.background(k.Run)
	return k, nil
}

// TokenIssuer is the iss of the access tokens of a cluster in region.
func TokenIssuer(region string) string { return "custos/" + region }

// background runs fn under the node's lifetime: fn returns when its
// context ends, and Close waits for it.
func (n *Node) background(fn func(context.Context)) {
	n.work.Go(func() { fn(n.life) })
}

// lastBackup is the backup-age metric's source: the newest scheduled
// backup in [backup] dir (none: no scheduler, or nothing in it yet).
func (n *Node) lastBackup() (time.Time, bool) {
	if n.backups == nil {
		return time.Time{}, false
	}
	t := n.backups.LastBackup()
	return t, !t.IsZero()
}

// MetricsAddress is the address of the metrics listener ("" when
// [metrics] listen_address is not set).
func (n *Node) MetricsAddress() string {
	if n.metricLn == nil {
		return ""
	}
	return n.metricLn.Addr().String()
}

// Metrics are the node's metrics.
func (n *Node) Metrics() *metrics.Metrics { return n.metrics }

// APIAddress is the address the API listens on.
func (n *Node) APIAddress() string { return n.ln.Addr().String() }

// Store is the node's replicated store.
func (n *Node) Store() *raftstore.Store { return n.store }

// WaitReady waits until the cluster has a leader. (On the first node Start
// has already written the cluster record.)
func (n *Node) WaitReady(ctx context.Context) error { return n.store.WaitLeader(ctx) }

// Done delivers the API server's error if it stops on its own.
func (n *Node) Done() <-chan error { return n.apiDone }

// Close stops the API (letting requests in flight finish), then the
// background work — waiting for all of it — and the store.
func (n *Node) Close(ctx context.Context) error {
	if !n.closing.Swap(true) && n.notifier != nil {
		n.notifyStopping()
	}
	var errs []error
	if n.store != nil {
		// A leader that stops hands over first (a rolling upgrade
		// restarts every node): the requests in flight here are
		// forwarded to the new leader while the API drains, and the
		// cluster does not wait out an election.
		if err := n.store.HandOver(ctx); err != nil {
			n.logger.Warn("leadership not handed over before stopping; the other nodes will elect", "error", err)
		}
	}
	if n.shutdown != nil {
		errs = append(errs, n.shutdown(ctx))
		// fasthttp closes only the listeners its Serve has registered; a
		// node closed right after Start may not have got that far.
		if err := n.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		// The UI's in-memory listener likewise (its Serve would wait on
		// it for ever, and Close on its goroutine).
		if err := n.inproc.Close(); err != nil && !errors.Is(err, fasthttputil.ErrInmemoryListenerClosed) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, n.closeStore(), n.removeTempDir())
	return errors.Join(errs...)
}

// closeStore ends the node's lifetime, waits for the background work and
// closes the store.
func (n *Node) closeStore() error {
	n.stop()
	n.work.Wait()
	if n.store == nil {
		return nil
	}
	return n.store.Close()
}

func (n *Node) removeTempDir() error {
	if n.tempDir == "" {
		return nil
	}
	return os.RemoveAll(n.tempDir)
}

// rateLimit is the API's rate limits from the configuration; nil when
// they are disabled.
func rateLimit(c config.RateLimit) *api.RateLimit {
	if !c.Enabled {
		return nil
	}
	return &api.RateLimit{
		PerSource:    ratelimit.Limits{Rate: c.PerSourceRate, Burst: c.PerSourceBurst},
		PerPrincipal: ratelimit.Limits{Rate: c.PerPrincipalRate, Burst: c.PerPrincipalBurst},
		MaxTracked:   c.MaxTracked,
	}
}

// loginBackoff is the progressive backoff on failed logins and codes from
// the configuration; it is on whether or not the request limits are.
func loginBackoff(c config.RateLimit) *ratelimit.Backoff {
	return ratelimit.NewBackoff(ratelimit.BackoffConfig{
		Account:    ratelimit.BackoffLimits{Free: c.LoginAccountFree, Base: c.LoginBaseDelay, Max: c.LoginAccountMaxDelay, Decay: c.LoginDecay},
		Source:     ratelimit.BackoffLimits{Free: c.LoginSourceFree, Base: c.LoginBaseDelay, Max: c.LoginSourceMaxDelay, Decay: c.LoginDecay},
		MaxTracked: c.MaxTracked,
	})
}

// subjectIndexes tells consent whether a tenant holds a record or a blob
// of a subject (consent imports neither service).
type subjectIndexes struct {
	records *records.Service
	blobs   *blobs.Service
}

// HasSubject asks records, then blobs.
func (s *subjectIndexes) HasSubject(ctx context.Context, caller audit.Principal, tenant, subject string) (bool, error) {
	if ok, err := s.records.HasSubject(ctx, caller, tenant, subject); ok || err != nil {
		return ok, err
	}
	return s.blobs.HasSubject(ctx, caller, tenant, subject)
}
