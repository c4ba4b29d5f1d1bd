package metrics

import (
	"context"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Raft is the node's raft store; *raftstore.Store implements it.
type Raft interface {
	Status() raftstore.Status
	LastContact() time.Time
	DBStats() raftstore.DBStats
}

// Keys is the node's keyring; *keyring.Hierarchy implements it.
type Keys interface {
	Stats() keyring.Stats
	Sealed() bool
}

// Audit is the node's background audit work; *audit.Runner implements
// it.
type Audit interface {
	LastCheck() *audit.CheckReport
	CheckpointAge(ctx context.Context) (time.Duration, error)
}

// Blobs is the blob service; *blobs.Service implements it.
type Blobs interface {
	Stats() blobs.Stats
}

// Compile-time checks that the real parts fit.
var (
	_ Raft  = (*raftstore.Store)(nil)
	_ Keys  = (*keyring.Hierarchy)(nil)
	_ Audit = (*audit.Runner)(nil)
	_ Blobs = (*blobs.Service)(nil)
)

// Sources are the parts a node's metrics read. The node sets every one
// of them; a nil source leaves its metrics out (tests of one part).
type Sources struct {
	Raft  Raft
	Keys  Keys
	Audit Audit
	Blobs Blobs
	// LastBackup reports when the last successful backup was taken
	// (false: none known); nil until the backup service is wired, which
	// reads as no backup (custos_backup_age_seconds +Inf).
	LastBackup func() (time.Time, bool)
	// Requests tallies a tenant's data-subject requests and Tenants lists
	// the tenants, for the poll (RunPoll).
	Requests Requests
	Tenants  func(ctx context.Context) ([]string, error)
	// Version is reported by custos_build_info.
	Version string
}

// Options tune a node's metrics.
type Options struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// ScrapeTimeout bounds what one scrape reads from the store (the
	// audit checkpoint lag; default 2s).
	ScrapeTimeout time.Duration
}

// Metrics are one node's metrics: its registry and the observers its
// parts call.
type Metrics struct {
	reg  *prometheus.Registry
	src  Sources
	opts Options

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	rateLimited  *prometheus.CounterVec
	applyLatency prometheus.Histogram
	appendAudit  prometheus.Histogram

	mu   sync.Mutex
	dsr  map[string]tally // by tenant, from the latest poll
	poll time.Time        // when it ended
}

// Latency buckets, in seconds: from a cached read to a write that waited
// out an election.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New makes a node's registry with its collectors, the Go runtime's and
// the process's. The node wires the sources (Wire) once it has built
// them, before anything is served; the observers work from the start.
func New(opts Options) *Metrics {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ScrapeTimeout <= 0 {
		opts.ScrapeTimeout = 2 * time.Second
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(), opts: opts, dsr: map[string]tally{},
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_http_requests_total",
			Help: "HTTP requests answered, by method, route template and status code.",
		}, []string{"method", "route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "custos_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method and route template.",
			Buckets: latencyBuckets,
		}, []string{"method", "route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "custos_ratelimit_rejections_total",
			Help: "Requests refused 429 by a rate limit, by limit (source or principal).",
		}, []string{"limit"}),
		applyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_raft_apply_duration_seconds",
			Help:    "Time from a transaction's proposal on this node to its result (replicated and applied, or refused).",
			Buckets: latencyBuckets,
		}),
		appendAudit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "custos_audit_append_duration_seconds",
			Help:    "Time to commit a read-audit entry (group commit), from its append to its commit.",
			Buckets: latencyBuckets,
		}),
	}
	// Both limits are known in advance: present at 0 before any refusal.
	m.rateLimited.WithLabelValues("source")
	m.rateLimited.WithLabelValues("principal")
	m.reg.MustRegister(m.httpRequests, m.httpDuration, m.rateLimited, m.applyLatency, m.appendAudit,
		&collector{m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Wire sets the sources the collectors read. Call it once, before the
// registry is served and before RunPoll.
func (m *Metrics) Wire(src Sources) { m.src = src }

// Registry is the node's registry: what /v1/sys/metrics and the metrics
// listener expose.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest records one answered HTTP request; route is the
// matched route's template ("unmatched" when none matched).
func (m *Metrics) ObserveRequest(method, route string, status int, d time.Duration) {
	m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// ObserveRateLimited records a request refused by limit ("source" or
// "principal").
func (m *Metrics) ObserveRateLimited(limit string) { m.rateLimited.WithLabelValues(limit).Inc() }

// ObserveApply records the latency of one raft Apply (the store's
// ObserveApply hook).
func (m *Metrics) ObserveApply(d time.Duration) { m.applyLatency.Observe(d.Seconds()) }

// ObserveAuditAppend records the latency of one read-audit append (the
// batcher's Observe hook).
func (m *Metrics) ObserveAuditAppend(d time.Duration) { m.appendAudit.Observe(d.Seconds()) }

// desc declares one metric the collector makes at scrape time.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The collector's metrics, declared once.
var (
	dBuild = desc("custos_build_info", "Always 1; the version of the running binary.", "version")

	dRaftState       = desc("custos_raft_state", "1 for the raft state this node is in (follower, candidate, leader, shutdown), 0 for the others.", "state")
	dRaftTerm        = desc("custos_raft_term", "The current raft term.")
	dRaftCommit      = desc("custos_raft_commit_index", "The highest log index known to be committed.")
	dRaftApplied     = desc("custos_raft_applied_index", "The highest log index in the committed state file.")
	dRaftLast        = desc("custos_raft_last_log_index", "The last index in this node's raft log.")
	dRaftContact     = desc("custos_raft_last_contact_seconds", "Seconds since this node last heard from the leader (0 on the leader).")
	dRaftPeers       = desc("custos_raft_voters", "Voting members in this node's raft configuration.")
	dRaftLeader      = desc("custos_raft_has_leader", "1 when this node knows a leader.")
	dRaftProposals   = desc("custos_raft_proposals_total", "Transactions proposed (or forwarded) by this node.")
	dRaftLogEntries  = desc("custos_raft_log_entries_total", "Raft entries written to this node's log.")
	dRaftLogBatches  = desc("custos_raft_log_batches_total", "Fsync'd writes of this node's raft log.")
	dRaftSnapRestore = desc("custos_raft_snapshots_restored_total", "Snapshots installed into this node's state.")

	dDBSize     = desc("custos_bbolt_size_bytes", "Size of the state file on disk.")
	dDBFree     = desc("custos_bbolt_free_pages", "Pages on the state file's freelist.")
	dDBPending  = desc("custos_bbolt_pending_pages", "Pages freed but still held by open read transactions.")
	dDBFreeB    = desc("custos_bbolt_free_bytes", "Bytes in free and pending pages of the state file.")
	dDBReads    = desc("custos_bbolt_read_transactions_total", "Read transactions started on the state file since it was opened.")
	dDBOpenRead = desc("custos_bbolt_open_read_transactions", "Read transactions open on the state file now.")
	dDBWrites   = desc("custos_bbolt_commits_total", "Commits of the state file (each a batch of applied entries).")
	dDBAllocs   = desc("custos_bbolt_page_allocations_total", "Pages allocated by write transactions since the file was opened.")
	dDBPageW    = desc("custos_bbolt_page_writes_total", "Pages written to disk by commits since the file was opened.")
	dDBWriteT   = desc("custos_bbolt_write_seconds_total", "Time spent writing pages to disk since the file was opened.")

	dKeyHits   = desc("custos_keyring_cache_hits_total", "Key lookups answered from the cache of unwrapped keys.")
	dKeyMisses = desc("custos_keyring_cache_misses_total", "Key lookups the cache could not answer (a load, or a wait for one).")
	dKeyCached = desc("custos_keyring_cached_keys", "Unwrapped keys held in memory.")
	dKeyRoot   = desc("custos_keyring_root_calls_total", "Calls to tenants' roots (age or Vault): KEK unwraps and wraps.")
	dKeyUnav   = desc("custos_keyring_unavailable_total", "Key operations that failed closed (key unavailable).")
	dKeyUnavT  = desc("custos_keyring_unavailable_tenants", "Tenants whose latest key operation failed closed.")
	dKeySealed = desc("custos_keyring_sealed", "1 when this node has no seal identity and cannot open tenant keys.")

	dAuditOK    = desc("custos_audit_selfcheck_ok", "1 when the latest audit self-check passed, 0 when it failed or has not run.")
	dAuditCheck = desc("custos_audit_selfcheck_timestamp_seconds", "When the latest audit self-check ran (Unix time; 0: not yet).")
	dAuditAge   = desc("custos_audit_checkpoint_age_seconds", "Age of the oldest latest checkpoint among chains with entries no checkpoint covers (0: all covered).")

	dBlobUp     = desc("custos_blob_uploads_total", "Blob uploads stored.")
	dBlobUpB    = desc("custos_blob_upload_bytes_total", "Plaintext bytes of the blob uploads stored.")
	dBlobFailed = desc("custos_blob_upload_failures_total", "Blob uploads that failed after they started.")
	dBlobRead   = desc("custos_blob_reads_total", "Blob downloads started.")
	dBlobReadB  = desc("custos_blob_read_bytes_total", "Bytes the blob downloads asked for.")
	dBlobSwept  = desc("custos_blob_swept_total", "Abandoned blob uploads deleted by the sweeper.")

	dBackupAge = desc("custos_backup_age_seconds", "Seconds since the last successful backup (+Inf: none known).")

	dDSROpen    = desc("custos_dsr_open_requests", "Open data-subject requests of a tenant, at the latest poll.", "tenant")
	dDSRSoon    = desc("custos_dsr_due_soon_requests", "Open data-subject requests of a tenant due soon, at the latest poll.", "tenant")
	dDSROverdue = desc("custos_dsr_overdue_requests", "Open data-subject requests of a tenant past their deadline, at the latest poll.", "tenant")
	dDSRPoll    = desc("custos_dsr_poll_timestamp_seconds", "When the latest poll of data-subject requests ended (Unix time; 0: not yet).")
)

// raftStates are the values of custos_raft_state's label.
var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

// collector reads the sources at scrape time.
type collector struct{ m *Metrics }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dBuild,
		dRaftState, dRaftTerm, dRaftCommit, dRaftApplied, dRaftLast, dRaftContact, dRaftPeers, dRaftLeader,
		dRaftProposals, dRaftLogEntries, dRaftLogBatches, dRaftSnapRestore,
		dDBSize, dDBFree, dDBPending, dDBFreeB, dDBReads, dDBOpenRead, dDBWrites, dDBAllocs, dDBPageW, dDBWriteT,
		dKeyHits, dKeyMisses, dKeyCached, dKeyRoot, dKeyUnav, dKeyUnavT, dKeySealed,
		dAuditOK, dAuditCheck, dAuditAge,
		dBlobUp, dBlobUpB, dBlobFailed, dBlobRead, dBlobReadB, dBlobSwept,
		dBackupAge, dDSROpen, dDSRSoon, dDSROverdue, dDSRPoll,
	} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(dBuild, 1, m.src.Version)
	now := m.opts.Now()
	if r := m.src.Raft; r != nil {
		st := r.Status()
		for _, s := range raftStates {
			gauge(dRaftState, b2f(st.State == s), strings.ToLower(s))
		}
		gauge(dRaftTerm, float64(st.Term))
		gauge(dRaftCommit, float64(st.CommitIndex))
		gauge(dRaftApplied, float64(st.AppliedIndex))
		gauge(dRaftLast, float64(st.LastIndex))
		contact := 0.0
		if lc := r.LastContact(); st.State != "Leader" && !lc.IsZero() {
			contact = now.Sub(lc).Seconds()
		} else if st.State != "Leader" {
			contact = math.Inf(1)
		}
		gauge(dRaftContact, contact)
		voters := 0
		for _, p := range st.Peers {
			if p.Voter {
				voters++
			}
		}
		gauge(dRaftPeers, float64(voters))
		gauge(dRaftLeader, b2f(st.LeaderID != ""))
		counter(dRaftProposals, float64(st.Stats.Proposals))
		counter(dRaftLogEntries, float64(st.Stats.LogEntries))
		counter(dRaftLogBatches, float64(st.Stats.LogBatches))
		counter(dRaftSnapRestore, float64(st.Stats.SnapshotsRestored))

		db := r.DBStats()
		gauge(dDBSize, float64(db.SizeBytes))
		gauge(dDBFree, float64(db.FreePages))
		gauge(dDBPending, float64(db.PendingPages))
		gauge(dDBFreeB, float64(db.FreeBytes))
		counter(dDBReads, float64(db.ReadTxns))
		gauge(dDBOpenRead, float64(db.OpenReadTxns))
		counter(dDBWrites, float64(db.WriteTxns))
		counter(dDBAllocs, float64(db.PageAllocs))
		counter(dDBPageW, float64(db.Writes))
		counter(dDBWriteT, db.WriteTime.Seconds())
	}
	if k := m.src.Keys; k != nil {
		st := k.Stats()
		counter(dKeyHits, float64(st.Cache.Hits))
		counter(dKeyMisses, float64(st.Cache.Misses))
		gauge(dKeyCached, float64(st.Cache.Len))
		counter(dKeyRoot, float64(st.RootCalls))
		counter(dKeyUnav, float64(st.Unavailable))
		gauge(dKeyUnavT, float64(st.UnavailableTenants))
		gauge(dKeySealed, b2f(k.Sealed()))
	}
	if a := m.src.Audit; a != nil {
		ok, at := 0.0, 0.0
		if rep := a.LastCheck(); rep != nil {
			ok, at = b2f(rep.OK), unix(rep.Time)
		}
		gauge(dAuditOK, ok)
		gauge(dAuditCheck, at)
		ctx, cancel := context.WithTimeout(context.Background(), m.opts.ScrapeTimeout)
		if age, err := a.CheckpointAge(ctx); err == nil {
			gauge(dAuditAge, age.Seconds())
		} else {
			ch <- prometheus.NewInvalidMetric(dAuditAge, err)
		}
		cancel()
	}
	if b := m.src.Blobs; b != nil {
		st := b.Stats()
		counter(dBlobUp, float64(st.Uploads))
		counter(dBlobUpB, float64(st.UploadBytes))
		counter(dBlobFailed, float64(st.Failed))
		counter(dBlobRead, float64(st.Reads))
		counter(dBlobReadB, float64(st.ReadBytes))
		counter(dBlobSwept, float64(st.Swept))
	}
	age := math.Inf(1)
	if f := m.src.LastBackup; f != nil {
		if t, ok := f(); ok {
			age = max(0, now.Sub(t).Seconds())
		}
	}
	gauge(dBackupAge, age)
	m.mu.Lock()
	for tenant, t := range m.dsr {
		gauge(dDSROpen, float64(t.open), tenant)
		gauge(dDSRSoon, float64(t.dueSoon), tenant)
		gauge(dDSROverdue, float64(t.overdue), tenant)
	}
	gauge(dDSRPoll, unix(m.poll))
	m.mu.Unlock()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unix is t in Unix seconds; 0 for the zero time.
func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
