package config

import (
	"errors"
	"fmt"
	"maps"
	"mime"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/appliance/apitls"
	"github.com/custos/custos/internal/validation"
)

const (
	slugPattern = "[a-z0-9][a-z0-9-]{0,62}"
	minBody     = 1 << 10
	maxBody     = 64 << 20
	// minRaftTimeout is the smallest timeout hashicorp/raft accepts.
	minRaftTimeout = 5 * time.Millisecond
)

// Validate reports every problem in c, each as a *validation.FieldError
// whose Field is the dotted key (such as "api.listen_address"), joined with
// errors.Join; nil means c is usable. The Raft timeouts are held to
// hashicorp/raft's own rules (at least 5ms, lease <= heartbeat <= election)
// so that a bad value fails here rather than when Raft starts, and a
// dev_token outside dev mode is refused, as a fixed operator token must
// never reach production. Dev mode relaxes two rules: data_dir may be empty
// (the caller makes a temporary directory) and the cluster port may be 0
// (the caller advertises the port it was given).
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, validation.Field(key, fmt.Sprintf(format, args...)))
	}

	for _, f := range []struct{ key, val string }{{"node_id", c.NodeID}, {"region", c.Region}} {
		switch {
		case f.val == "":
			bad(f.key, "required")
		case !isSlug(f.val):
			bad(f.key, "must match %s", slugPattern)
		}
	}
	if c.DataDir == "" && !c.Dev {
		bad("data_dir", "required")
	}
	if c.DevToken != "" && !c.Dev {
		bad("dev_token", "only allowed when dev is true")
	}

	if c.Keyring.CacheTTL < time.Second || c.Keyring.CacheTTL > 24*time.Hour {
		bad("keyring.cache_ttl", "must be between 1s and 24h")
	}
	if c.Keyring.CacheSize < 16 || c.Keyring.CacheSize > 10_000_000 {
		bad("keyring.cache_size", "must be between 16 and 10000000")
	}
	if c.Keyring.VaultTimeout < 100*time.Millisecond || c.Keyring.VaultTimeout > time.Minute {
		bad("keyring.vault_timeout", "must be between 100ms and 1m")
	}
	if c.Keyring.CompactWindow < 100*time.Millisecond || c.Keyring.CompactWindow > 7*24*time.Hour {
		bad("keyring.compact_window", "must be between 100ms and 168h")
	}
	if c.Audit.Retention < 24*time.Hour {
		bad("audit.retention", "must be at least 24h")
	}
	if c.Audit.CheckpointInterval < time.Second || c.Audit.CheckpointInterval > time.Hour {
		bad("audit.checkpoint_interval", "must be between 1s and 1h")
	}
	if c.Backup.Interval < time.Minute || c.Backup.Interval > 720*time.Hour {
		bad("backup.interval", "must be between 1m and 720h")
	}
	if c.Backup.Keep < 1 || c.Backup.Keep > 10_000 {
		bad("backup.keep", "must be between 1 and 10000")
	}
	if c.Backup.ArchiveInterval < time.Second || c.Backup.ArchiveInterval > time.Hour {
		bad("backup.archive_interval", "must be between 1s and 1h")
	}
	if c.Backup.ArchiveLog && c.Backup.Dir == "" {
		bad("backup.archive_log", "needs backup.dir (the archive is written to <dir>/log)")
	}
	if c.Audit.CheckpointEntries < 1 || c.Audit.CheckpointEntries > 1_000_000 {
		bad("audit.checkpoint_entries", "must be between 1 and 1000000")
	}
	if c.Blobs.MaxSize < 1<<10 || c.Blobs.MaxSize > 1<<40 {
		bad("blobs.max_size", "must be between 1024 and 1099511627776 bytes")
	}
	if len(c.Blobs.ContentTypes) == 0 || len(c.Blobs.ContentTypes) > 100 {
		bad("blobs.content_types", "must name 1 to 100 media types")
	}
	for _, t := range c.Blobs.ContentTypes {
		if _, _, err := mime.ParseMediaType(t); err != nil && !strings.HasSuffix(t, "/*") {
			bad("blobs.content_types", "%q is not a media type (or a family such as audio/*)", t)
		}
	}
	if c.Blobs.StaleAfter < time.Minute || c.Blobs.StaleAfter > 7*24*time.Hour {
		bad("blobs.stale_after", "must be between 1m and 168h")
	}
	if c.Retention.Interval < time.Minute || c.Retention.Interval > 24*time.Hour {
		bad("retention.interval", "must be between 1m and 24h")
	}
	if c.Retention.BatchSize < 1 || c.Retention.BatchSize > 256 {
		bad("retention.batch_size", "must be between 1 and 256")
	}
	if c.Retention.Pause < 0 || c.Retention.Pause > 10*time.Second {
		bad("retention.pause", "must be between 0s and 10s")
	}
	if c.Privacy.ExportTTL < time.Minute || c.Privacy.ExportTTL > 720*time.Hour {
		bad("privacy.export_ttl", "must be between 1m and 720h")
	}
	if c.Audit.SelfCheckInterval < time.Second || c.Audit.SelfCheckInterval > 7*24*time.Hour {
		bad("audit.selfcheck_interval", "must be between 1s and 168h")
	}
	if c.Keyring.TrimAfter < 0 {
		bad("keyring.trim_after", "must not be negative")
	}
	c.RateLimit.validate(bad)
	if msg := addrProblem(c.API.ListenAddress, false, true); msg != "" {
		bad("api.listen_address", "%s", msg)
	}
	if c.API.BodyLimit < minBody || c.API.BodyLimit > maxBody {
		bad("api.body_limit", "must be between %d (1 KiB) and %d (64 MiB) bytes", minBody, maxBody)
	}
	c.API.validateTLS(bad)

	cl := c.Cluster
	if msg := addrProblem(cl.ListenAddress, false, true); msg != "" {
		bad("cluster.listen_address", "%s", msg)
	}
	if msg := addrProblem(cl.AdvertiseAddress, true, c.Dev); msg != "" {
		bad("cluster.advertise_address", "%s", msg)
	}
	for i, addr := range cl.Join {
		if msg := addrProblem(addr, true, false); msg != "" {
			bad(fmt.Sprintf("cluster.join[%d]", i), "%s", msg)
		}
	}

	for _, t := range []struct {
		key string
		d   time.Duration
		min time.Duration
	}{
		{"api.request_timeout", c.API.RequestTimeout, 1},
		{"cluster.heartbeat_timeout", cl.HeartbeatTimeout, minRaftTimeout},
		{"cluster.election_timeout", cl.ElectionTimeout, minRaftTimeout},
		{"cluster.leader_lease_timeout", cl.LeaderLeaseTimeout, minRaftTimeout},
		{"cluster.snapshot_interval", cl.SnapshotInterval, 1},
		{"cluster.apply_timeout", cl.ApplyTimeout, 1},
	} {
		switch {
		case t.d <= 0:
			bad(t.key, "must be > 0")
		case t.d < t.min:
			bad(t.key, "must be at least %s", t.min)
		}
	}
	if cl.LeaderLeaseTimeout > cl.HeartbeatTimeout {
		bad("cluster.leader_lease_timeout", "must not exceed cluster.heartbeat_timeout (%s)", cl.HeartbeatTimeout)
	}
	if cl.ElectionTimeout < cl.HeartbeatTimeout {
		bad("cluster.election_timeout", "must be at least cluster.heartbeat_timeout (%s)", cl.HeartbeatTimeout)
	}
	if cl.SnapshotThreshold == 0 {
		bad("cluster.snapshot_threshold", "must be > 0")
	}

	if levels := []string{"debug", "info", "warn", "error"}; !slices.Contains(levels, c.Log.Level) {
		bad("log.level", "must be one of %s", strings.Join(levels, ", "))
	}
	if formats := []string{"text", "json"}; !slices.Contains(formats, c.Log.Format) {
		bad("log.format", "must be one of %s", strings.Join(formats, ", "))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Log.Levels)) {
		key := "log.levels." + name
		switch lv := c.Log.Levels[name]; {
		case !slices.Contains(LogSubsystems, name):
			bad(key, "no such subsystem: must be one of %s", strings.Join(LogSubsystems, ", "))
		case !slices.Contains([]string{"debug", "info", "warn", "error"}, lv):
			bad(key, "must be one of debug, info, warn, error")
		}
	}
	if a := c.Metrics.ListenAddress; a != "" {
		if msg := addrProblem(a, false, true); msg != "" {
			bad("metrics.listen_address", "%s", msg)
		} else if !loopback(a) {
			bad("metrics.listen_address", "must be a loopback address (127.0.0.1, ::1 or localhost): the listener has no authentication; scrape from elsewhere through /v1/sys/metrics with a token")
		}
	}
	if c.Metrics.PollInterval < time.Second || c.Metrics.PollInterval > time.Hour {
		bad("metrics.poll_interval", "must be between 1s and 1h")
	}
	return errors.Join(errs...)
}

// validate holds the rate limits to values that can be meant: a rate of at
// least one request per 100 seconds and at most a million per second, a
// burst of at least one request, a table of at least 1000 keys; login
// backoff that allows at least one free failure and waits at most a day. They are
// checked even when disabled, so that enabling them cannot fail later.
func (r RateLimit) validate(bad func(key, format string, args ...any)) {
	for _, f := range []struct {
		key  string
		rate float64
	}{{"ratelimit.per_source_rate", r.PerSourceRate}, {"ratelimit.per_principal_rate", r.PerPrincipalRate}} {
		if !(f.rate >= 0.01 && f.rate <= 1_000_000) {
			bad(f.key, "must be between 0.01 and 1000000 requests per second")
		}
	}
	for _, f := range []struct {
		key string
		n   int
		min int
	}{{"ratelimit.per_source_burst", r.PerSourceBurst, 1}, {"ratelimit.per_principal_burst", r.PerPrincipalBurst, 1}, {"ratelimit.max_tracked", r.MaxTracked, 1000}} {
		if f.n < f.min || f.n > 10_000_000 {
			bad(f.key, "must be between %d and 10000000", f.min)
		}
	}
	for _, f := range []struct {
		key string
		n   int
	}{{"ratelimit.login_account_free", r.LoginAccountFree}, {"ratelimit.login_source_free", r.LoginSourceFree}} {
		if f.n < 1 || f.n > 1000 {
			bad(f.key, "must be between 1 and 1000")
		}
	}
	if r.LoginBaseDelay < 10*time.Millisecond || r.LoginBaseDelay > time.Minute {
		bad("ratelimit.login_base_delay", "must be between 10ms and 1m")
	}
	for _, f := range []struct {
		key string
		d   time.Duration
	}{{"ratelimit.login_account_max_delay", r.LoginAccountMaxDelay}, {"ratelimit.login_source_max_delay", r.LoginSourceMaxDelay}} {
		if f.d < r.LoginBaseDelay || f.d > 24*time.Hour {
			bad(f.key, "must be between ratelimit.login_base_delay and 24h")
		}
	}
	if r.LoginDecay < time.Second || r.LoginDecay > 24*time.Hour {
		bad("ratelimit.login_decay", "must be between 1s and 24h")
	}
}

// validateTLS holds the API's TLS keys to a configuration that can be
// meant: a certificate file with its key, a version the server offers,
// names a certificate can carry, and no certificate beside insecure_http.
func (a API) validateTLS(bad func(key, format string, args ...any)) {
	if (a.TLSCertFile == "") != (a.TLSKeyFile == "") {
		bad("api.tls_key_file", "api.tls_cert_file and api.tls_key_file go together: set both or neither")
	}
	if a.InsecureHTTP && a.TLSClientCAFile != "" {
		bad("api.tls_client_ca_file", "needs TLS: plain HTTP (api.insecure_http) carries no client certificate")
	}
	if a.InsecureHTTP && a.TLSCertFile != "" {
		bad("api.insecure_http", "contradicts api.tls_cert_file: plain HTTP serves no certificate")
	}
	if _, err := apitls.ParseMinVersion(a.TLSMinVersion); err != nil {
		bad("api.tls_min_version", "must be \"1.3\" or \"1.2\"")
	}
	if len(a.TLSSAN) > 100 {
		bad("api.tls_san", "must name at most 100 names")
	}
	for i, s := range a.TLSSAN {
		if _, _, err := apitls.ParseSAN(s); err != nil {
			bad(fmt.Sprintf("api.tls_san[%d]", i), "%q is neither an IP address nor a DNS name", s)
		}
	}
}

// LogSubsystems are the components log.levels may name (the same list
// as appliance/logging.Subsystems, which config sits beside and does not
// import; a test checks they agree).
var LogSubsystems = []string{"api", "api-tls", "audit", "backup", "blobs", "export", "keyring", "metrics", "raft", "retention", "signing"}

// loopback reports whether a host:port names a loopback host.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// isSlug reports whether s matches slugPattern.
func isSlug(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// addrProblem returns what is wrong with a host:port address, or "". An
// address that other nodes dial (dial set) needs a host that is not an
// unspecified IP such as 0.0.0.0; an empty host (":8200", every interface)
// is fine to listen on. Port 0 is allowed only if zeroPort is set.
func addrProblem(addr string, dial, zeroPort bool) string {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("must be host:port, got %q", addr)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	switch {
	case err != nil:
		return fmt.Sprintf("port must be a number from 0 to 65535, got %q", portStr)
	case port == 0 && !zeroPort:
		return fmt.Sprintf("port must not be 0, got %q", addr)
	}
	if dial {
		if host == "" {
			return fmt.Sprintf("needs a host, got %q", addr)
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
			return fmt.Sprintf("must be an address other nodes can dial, got %q", addr)
		}
	}
	return ""
}
