// Package metrics is a node's Prometheus metrics: one registry per node
// (never the process's default registry: three in-process nodes of a test
// cluster each keep their own), the collectors that read the node's
// parts at scrape time, and the observers the parts call as things
// happen (requests, applies, audit appends).
//
// # What it reads
//
// The parts expose plain counters through small interfaces ([Sources]):
// the raft store its status, last contact, state-file figures and the
// latency of each Apply (raftstore.Config.ObserveApply); the keyring its
// cache and root counters; the audit runner its self-check and
// checkpoint lag, the read-audit batcher its append latency
// (audit.BatchOptions.Observe); the blob service its traffic; the API
// its requests by route template and its rate-limit refusals (through
// [Metrics.ObserveRequest] and [Metrics.ObserveRateLimited], which
// satisfy api.Observer). The counters are read when a scraper asks, so
// a node without a scraper pays only for the atomic adds and the two
// histograms.
//
// Data-subject requests' deadlines are tallied per tenant by a poll
// ([Metrics.RunPoll], under the node's lifetime) rather than at scrape
// time, because a tally reads every request of every tenant.
//
// # Choices
//
// hashicorp/raft reports its own figures through hashicorp/go-metrics,
// whose sink is process-global: with it, the nodes of an in-process test
// cluster would share one set of raft metrics. The raft figures here come
// from the node's own raft instance instead (state, term, indexes, last
// contact), and apply latency from the store's Apply.
//
// Label values never carry a subject id or anything personal: routes are
// the declared templates (/v1/tenants/:id/...), never request paths; the
// one per-tenant label is the tenant id (bounded by the tenants, and not
// personal), on the data-subject request gauges only.
//
// The metric names, types and meanings are documented in
// docs/operations.md ("Metrics and alerts"); a test checks that the
// documented list is exactly what a node exposes.
package metrics
