// Package config loads a node's configuration once, at start-up, into one
// typed and validated [Config] that is then passed explicitly to whatever
// needs it. There is no package-level state: [Load] reads only what its
// [Options] hand it.
//
// # Sources
//
// Four sources are layered with koanf, each overriding the one before:
//
//  1. built-in defaults (see [Load] for the defaults of dev mode);
//  2. a TOML file, only if [Options.File] names one (the packaged service
//     passes [DefaultFile]);
//  3. environment variables: CUSTOS_ followed by the key in upper case, with
//     a double underscore between a table and its key, so CUSTOS_DATA_DIR
//     sets data_dir and CUSTOS_API__LISTEN_ADDRESS sets api.listen_address.
//     CUSTOS_CLUSTER__JOIN and CUSTOS_API__TLS_SAN are comma-separated
//     lists. Variables that name no key are ignored, because the CLI
//     client shares the prefix (CUSTOS_ADDR, CUSTOS_TOKEN, CUSTOS_FORMAT,
//     CUSTOS_CACERT);
//  4. command-line flags registered by [RegisterServerFlags], but only those
//     explicitly set: a flag's default never overrides the file or the
//     environment.
//
// Unknown keys in the file are an error rather than being ignored: a typo
// such as "heartbeat_timout" would otherwise silently leave the default in
// place. Key names are matched exactly (TOML keys are case-sensitive).
//
// Durations are strings with a unit ("500ms", "10s"). A bare number is
// rejected instead of being read as nanoseconds.
//
// # Choices
//
// The environment is read from [Options.Environ], not from the process, so
// tests need no t.Setenv and can run in parallel; this is also why the koanf
// env provider (which calls os.Environ) is not used. Every layer is decoded
// on its own before the layers are merged, so an error says which source
// holds the bad value. Load also validates, so a *Config that Load returns
// is always usable; [Config.Validate] is exported for configurations built
// in code, such as those of in-process test clusters.
//
// [Dump] prints the effective configuration as TOML with secrets redacted;
// the output is itself a valid configuration file, which the golden tests
// check.
package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/toml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// DefaultFile is where the packaged service keeps its configuration file.
// Load reads it only if the caller passes it in [Options.File].
const DefaultFile = "/etc/custos/custos.toml"

// EnvPrefix starts the name of every environment variable Load reads.
const EnvPrefix = "CUSTOS_"

// Config is the configuration of one node.
type Config struct {
	Dev       bool      `koanf:"dev"`
	DevToken  Secret    `koanf:"dev_token"` // fixed operator token for dev mode
	NodeID    string    `koanf:"node_id"`   // slug [a-z0-9][a-z0-9-]{0,62}
	Region    string    `koanf:"region"`    // slug, e.g. ap-south-1; "local" in dev
	DataDir   string    `koanf:"data_dir"`  // "" in dev: the caller makes a temporary directory
	API       API       `koanf:"api"`
	Cluster   Cluster   `koanf:"cluster"`
	Keyring   Keyring   `koanf:"keyring"`
	Audit     Audit     `koanf:"audit"`
	Backup    Backup    `koanf:"backup"`
	Blobs     Blobs     `koanf:"blobs"`
	Retention Retention `koanf:"retention"`
	Privacy   Privacy   `koanf:"privacy"`
	RateLimit RateLimit `koanf:"ratelimit"`
	Log       Log       `koanf:"log"`
	Metrics   Metrics   `koanf:"metrics"`
}

// Metrics configures the node's Prometheus metrics (package
// appliance/metrics). GET /v1/sys/metrics serves them to a caller with
// the cluster:read permission (an operator token, say); ListenAddress
// adds a listener without authentication that serves them at /metrics,
// for a Prometheus on the same host: it must be a loopback address
// (127.0.0.0/8, ::1 or localhost), because the figures say much about a
// deployment (tenants' ids among them). PollInterval is how often the
// node tallies every tenant's data-subject requests for the deadline
// gauges (a tally reads every request, so it is polled, not read at
// each scrape).
type Metrics struct {
	ListenAddress string        `koanf:"listen_address"` // loopback host:port; "": no listener
	PollInterval  time.Duration `koanf:"poll_interval"`  // 1s..1h
}

// RateLimit bounds API request rates on each node: a token bucket per
// source address (checked before authentication, so a flood of bad tokens
// is limited too; an IPv6 address counts by its /64) and one per
// principal (an API key, the operator) across all its sources. Limits are
// per node, not cluster-wide (see package ratelimit for why). The defaults
// stop one client from starving a node yet sit well above what one
// application server needs, and above what the end-to-end tests send from
// 127.0.0.1; deployments behind a proxy see every client as the proxy's
// address and may want a higher per-source rate. The bench scenarios turn
// the limits off, as they measure capacity.
//
// The login_* keys are the progressive backoff on failed logins and
// second-factor codes, per account and per source (package ratelimit's
// Backoff): after the free failures the wait starts at login_base_delay
// and doubles with every further failure up to the maximum, and one
// failure is forgotten per login_decay without one. They apply whether or
// not the request limits are enabled: they are a defence of passwords,
// not of capacity. The defaults let a person mistype a few times without
// waiting, slow an attacker spread over many addresses to one guess per
// 15 minutes per account on each node, and never lock anybody out for
// longer than that.
type RateLimit struct {
	Enabled           bool    `koanf:"enabled"`
	PerSourceRate     float64 `koanf:"per_source_rate"`     // requests per second, 0.01..1000000
	PerSourceBurst    int     `koanf:"per_source_burst"`    // 1..10000000
	PerPrincipalRate  float64 `koanf:"per_principal_rate"`  // requests per second, 0.01..1000000
	PerPrincipalBurst int     `koanf:"per_principal_burst"` // 1..10000000
	MaxTracked        int     `koanf:"max_tracked"`         // keys tracked per table, 1000..10000000

	LoginAccountFree     int           `koanf:"login_account_free"`      // failures per account before any wait, 1..1000
	LoginAccountMaxDelay time.Duration `koanf:"login_account_max_delay"` // the longest wait of an account, base..24h
	LoginSourceFree      int           `koanf:"login_source_free"`       // failures per source before any wait, 1..1000
	LoginSourceMaxDelay  time.Duration `koanf:"login_source_max_delay"`  // the longest wait of a source, base..24h
	LoginBaseDelay       time.Duration `koanf:"login_base_delay"`        // the first wait, 10ms..1m
	LoginDecay           time.Duration `koanf:"login_decay"`             // one failure forgotten per this long, 1s..24h
}

// Blobs configures blob uploads (recordings, documents).
type Blobs struct {
	MaxSize      int64         `koanf:"max_size"`      // bytes, 1 KiB..1 TiB
	ContentTypes []string      `koanf:"content_types"` // accepted media types; "audio/*" accepts a family
	StaleAfter   time.Duration `koanf:"stale_after"`   // unfinished uploads untouched this long are deleted
}

// Retention paces the leader's retention sweeper (package
// appliance/privacy/retention): how often it looks for expired records,
// how many one transaction erases, and the least pause between two such
// transactions (the sweeper also waits as long as each took, so it never
// holds more than half of the leader's time). How long records are kept
// is the tenants' and collections' to say, not the node's.
type Retention struct {
	Interval  time.Duration `koanf:"interval"`   // between sweeps, 1m..24h
	BatchSize int           `koanf:"batch_size"` // records per transaction, 1..256
	Pause     time.Duration `koanf:"pause"`      // least pause between transactions, 0..10s
}

// Privacy configures data-subject exports (package
// appliance/privacy/export).
type Privacy struct {
	// ExportTTL is how long an export can be downloaded before the
	// leader's sweeper shreds it: "temporary files automatically expire
	// within 24 hours". 1m..720h.
	ExportTTL time.Duration `koanf:"export_ttl"`
}

// Audit configures the audit log.
type Audit struct {
	Retention          time.Duration `koanf:"retention"`           // default for every chain; a tenant may set its own
	CheckpointInterval time.Duration `koanf:"checkpoint_interval"` // a chain that grew is signed at least this often
	CheckpointEntries  int           `koanf:"checkpoint_entries"`  // ... or after this many entries
	SelfCheckInterval  time.Duration `koanf:"selfcheck_interval"`  // how often each node re-verifies its chains
}

// Backup configures the leader's scheduled backups (appliance/backup):
// with Dir set, the leader writes a backup into it every Interval
// (1m..720h, default 24h) and keeps the newest Keep (1..10000, default
// 7). With ArchiveLog the leader also archives the committed raft log
// into Dir/log every ArchiveInterval (1s..1h, default 10s), encrypted
// and signed like the backups, for point-in-time restores (`operator
// restore --to-index/--to-time`). Backups are encrypted to the cluster's backup recipients (set at
// init or with `custos operator backup recipients`). Dir "" (the
// default): no scheduled backups; `custos operator backup` still works.
type Backup struct {
	Dir      string        `koanf:"dir"`
	Interval time.Duration `koanf:"interval"`
	Keep     int           `koanf:"keep"`

	ArchiveLog      bool          `koanf:"archive_log"`
	ArchiveInterval time.Duration `koanf:"archive_interval"`
}

// Keyring configures tenant keys.
type Keyring struct {
	// SealIdentity is the age identity file that unseals tenant roots;
	// "" means <data_dir>/seal.age. `operator init` creates it there (mode
	// 0600) unless the operator brings their own recipients. Copy it to
	// every node: a node without it runs sealed.
	SealIdentity  string        `koanf:"seal_identity"`
	CacheTTL      time.Duration `koanf:"cache_ttl"`      // how long unwrapped keys stay in memory
	CacheSize     int           `koanf:"cache_size"`     // at most this many unwrapped keys
	VaultTimeout  time.Duration `koanf:"vault_timeout"`  // per Vault call
	CompactWindow time.Duration `koanf:"compact_window"` // after a shred, files hold no trace of the key after this
	TrimAfter     time.Duration `koanf:"trim_after"`     // backup retention: trim superseded transit versions after it; 0 never
}

// API configures the HTTP API listener.
//
// The API speaks TLS (package appliance/apitls) unless dev is true or
// insecure_http is set: plain HTTP carries bearer tokens and personal data
// in the clear, so a node started with insecure_http logs a warning at
// every start. In dev mode the API is plain HTTP on its loopback address
// unless tls_cert_file is set. The certificate is either
//
//   - the operator's own: tls_cert_file and tls_key_file (PEM, both or
//     neither; the certificate file may carry the chain). The node re-reads
//     them when either file changes (checked at each new TLS handshake:
//     modification time, size and identity of the file) and on SIGHUP;
//     connections already open keep the certificate they were set up
//     with, and a pair that does not load (a half-written replacement)
//     leaves the one in service in place;
//   - or one issued by the cluster CA (the CA of the Raft transport) at
//     `operator init` and `operator join`, and again at start when it is
//     missing or its names no longer match: <data_dir>/tls/api.crt and
//     api.key, for the host's name, localhost, the loopback addresses, the
//     listen address's host (every interface address when it listens on
//     all of them), the cluster advertise address's host and tls_san.
//     Clients trust the cluster CA: <data_dir>/tls/ca.crt, which `operator
//     init` prints (the CLI's --ca-cert, or CUSTOS_CACERT).
//
// tls_min_version is "1.3" (the default) or "1.2", which is only ever
// accepted when set explicitly.
//
// tls_client_ca_file (PEM; TLS only) turns on client certificates as a
// second factor for machine clients: the node asks every client for a
// certificate and verifies one against these CAs when given (a client
// without one still connects: people and operators need none), and an
// API key created with client_cert_cn authenticates only over a
// connection whose verified certificate has that subject common name.
// The file is read at start.
type API struct {
	ListenAddress  string        `koanf:"listen_address"`  // host:port
	BodyLimit      int           `koanf:"body_limit"`      // bytes, 1 KiB..64 MiB
	RequestTimeout time.Duration `koanf:"request_timeout"` // per request

	TLSCertFile   string   `koanf:"tls_cert_file"`   // PEM certificate (and chain); "" = issued by the cluster CA
	TLSKeyFile    string   `koanf:"tls_key_file"`    // PEM private key of tls_cert_file
	TLSMinVersion string   `koanf:"tls_min_version"` // "1.3" or "1.2"
	TLSSAN        []string `koanf:"tls_san"`         // extra DNS names or IP addresses of the issued certificate; CUSTOS_API__TLS_SAN is comma-separated
	InsecureHTTP  bool     `koanf:"insecure_http"`   // plain HTTP outside dev mode (logged loudly)

	TLSClientCAFile string `koanf:"tls_client_ca_file"` // PEM CAs of machine clients' certificates; "" = none asked for
}

// PlainHTTP reports whether the API serves plain HTTP rather than TLS:
// insecure_http, or dev mode without a certificate of the operator's.
func (a API) PlainHTTP(dev bool) bool {
	return a.InsecureHTTP || (dev && a.TLSCertFile == "")
}

// Cluster configures Raft and the cluster transport.
type Cluster struct {
	ListenAddress      string        `koanf:"listen_address"`       // host:port; port 0 only in dev
	AdvertiseAddress   string        `koanf:"advertise_address"`    // defaults to ListenAddress
	Join               []string      `koanf:"join"`                 // host:port of existing members
	JoinToken          Secret        `koanf:"join_token"`           // presented when joining
	HeartbeatTimeout   time.Duration `koanf:"heartbeat_timeout"`    // raft
	ElectionTimeout    time.Duration `koanf:"election_timeout"`     // raft
	LeaderLeaseTimeout time.Duration `koanf:"leader_lease_timeout"` // raft; <= HeartbeatTimeout
	SnapshotThreshold  uint64        `koanf:"snapshot_threshold"`   // log entries between snapshots
	SnapshotInterval   time.Duration `koanf:"snapshot_interval"`    // how often to check the threshold
	ApplyTimeout       time.Duration `koanf:"apply_timeout"`        // bound on a write or linearizable read
}

// Log configures the structured logger (package appliance/logging):
// one format for every line, the node's and hashicorp/raft's — text
// (key=value) or json (one object a line) — at Level, except the
// subsystems Levels names (api, api-tls, audit, backup, blobs, export, keyring, metrics,
// raft, retention, signing), each at its own level. The default quietens
// raft to warn; `[log.levels] raft = "debug"` follows an election. Set
// Levels in the file: the environment and flags do not reach it.
type Log struct {
	Level  string            `koanf:"level"`  // debug, info, warn or error
	Format string            `koanf:"format"` // text or json
	Levels map[string]string `koanf:"levels"` // subsystem -> level
}

// Options says where Load finds the configuration. The zero value loads the
// built-in defaults only.
type Options struct {
	File    string         // TOML file; "" for none. A named file must exist.
	Flags   *pflag.FlagSet // parsed flags from RegisterServerFlags, or nil
	Environ []string       // "KEY=value" entries, as from os.Environ, or nil
}

// defaults returns the built-in configuration, for dev mode or not.
// Cluster.AdvertiseAddress is left empty: Load derives it from
// Cluster.ListenAddress after all sources are applied.
func defaults(dev bool) Config {
	c := Config{
		API: API{
			ListenAddress:  "127.0.0.1:8200",
			BodyLimit:      1 << 20,
			RequestTimeout: 10 * time.Second,
			TLSMinVersion:  "1.3",
			TLSSAN:         []string{},
		},
		Cluster: Cluster{
			ListenAddress:      "127.0.0.1:8201",
			Join:               []string{},
			HeartbeatTimeout:   time.Second,
			ElectionTimeout:    time.Second,
			LeaderLeaseTimeout: 500 * time.Millisecond,
			SnapshotThreshold:  8192,
			SnapshotInterval:   30 * time.Second,
			ApplyTimeout:       5 * time.Second,
		},
		Keyring: Keyring{
			CacheTTL:      5 * time.Minute,
			CacheSize:     10000,
			VaultTimeout:  5 * time.Second,
			CompactWindow: 10 * time.Minute,
			TrimAfter:     30 * 24 * time.Hour,
		},
		Audit: Audit{
			Retention:          5 * 365 * 24 * time.Hour,
			CheckpointInterval: time.Minute,
			CheckpointEntries:  1000,
			SelfCheckInterval:  10 * time.Minute,
		},
		Backup: Backup{Interval: 24 * time.Hour, Keep: 7, ArchiveInterval: 10 * time.Second},
		Blobs: Blobs{
			MaxSize:      2 << 30,
			ContentTypes: []string{"audio/*", "video/*", "image/*", "application/pdf", "application/octet-stream", "text/plain"},
			StaleAfter:   15 * time.Minute,
		},
		Retention: Retention{Interval: time.Hour, BatchSize: 256, Pause: 20 * time.Millisecond},
		Privacy:   Privacy{ExportTTL: 24 * time.Hour},
		RateLimit: RateLimit{
			Enabled:           true,
			PerSourceRate:     2000,
			PerSourceBurst:    4000,
			PerPrincipalRate:  1000,
			PerPrincipalBurst: 2000,
			MaxTracked:        100_000,

			LoginAccountFree:     5,
			LoginAccountMaxDelay: 15 * time.Minute,
			LoginSourceFree:      20,
			LoginSourceMaxDelay:  time.Hour,
			LoginBaseDelay:       time.Second,
			LoginDecay:           10 * time.Minute,
		},
		Log:     Log{Level: "info", Format: "text", Levels: map[string]string{"raft": "warn"}},
		Metrics: Metrics{PollInterval: time.Minute},
	}
	if dev {
		c.Dev = true
		c.NodeID = "dev"
		c.Region = "local"
		c.DataDir = ""
		c.Cluster.ListenAddress = "127.0.0.1:0"
		c.Cluster.HeartbeatTimeout = 50 * time.Millisecond
		c.Cluster.ElectionTimeout = 50 * time.Millisecond
		c.Cluster.LeaderLeaseTimeout = 25 * time.Millisecond
		c.Cluster.SnapshotThreshold = 8192
	}
	return c
}

// Load reads the sources named by opts, layers them over the defaults,
// and returns the validated result.
//
// If dev ends up true, from whichever source, the dev defaults sit at the
// bottom instead: node_id "dev", region "local", data_dir "" (the caller
// creates a temporary directory), cluster.listen_address 127.0.0.1:0 and
// Raft timeouts of 50ms/50ms/25ms. Anything the sources set still wins.
func Load(opts Options) (*Config, error) {
	// over holds file < environment < flags, without defaults. Each layer
	// is decoded on its own first, so that an error names its source.
	over := koanf.New(".")
	add := func(source string, k *koanf.Koanf) error {
		if err := decode(k, new(Config)); err != nil {
			return fmt.Errorf("config: %s: %w", source, err)
		}
		if err := over.Merge(k); err != nil {
			return fmt.Errorf("config: %s: %w", source, err)
		}
		return nil
	}

	if opts.File != "" {
		k := koanf.New(".")
		if err := k.Load(file.Provider(opts.File), toml.Parser()); err != nil {
			return nil, fmt.Errorf("config: read %s: %w", opts.File, err)
		}
		if err := add(opts.File, k); err != nil {
			return nil, err
		}
	}
	if err := add("environment", envLayer(opts.Environ)); err != nil {
		return nil, err
	}
	if opts.Flags != nil {
		k := koanf.New(".")
		p := posflag.ProviderWithFlag(opts.Flags, ".", nil, func(f *pflag.Flag) (string, any) {
			return flagKey(f.Name), posflag.FlagVal(opts.Flags, f)
		})
		if err := k.Load(p, nil); err != nil {
			return nil, fmt.Errorf("config: flags: %w", err)
		}
		if err := add("flags", k); err != nil {
			return nil, err
		}
	}

	// Decode once to learn whether this is dev mode, then again with the
	// right defaults underneath.
	c, err := decodeOver(defaults(false), over)
	if err == nil && c.Dev {
		c, err = decodeOver(defaults(true), over)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if c.Cluster.AdvertiseAddress == "" {
		c.Cluster.AdvertiseAddress = c.Cluster.ListenAddress
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// decodeOver decodes the layers in over on top of base.
func decodeOver(base Config, over *koanf.Koanf) (*Config, error) {
	k := fromFlat(flatten(&base, false))
	if err := k.Merge(over); err != nil {
		return nil, err
	}
	var c Config
	if err := decode(k, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// fromFlat returns a koanf instance holding m, whose keys are dotted paths.
func fromFlat(m map[string]any) *koanf.Koanf {
	k := koanf.New(".")
	for key, v := range m {
		_ = k.Set(key, v) // fails only with koanf's StrictMerge, which is off
	}
	return k
}

// decode decodes k strictly into c: every key must name a field, exactly.
// Values may be strings (environment and flags) or typed (file).
func decode(k *koanf.Koanf, c *Config) error {
	return k.UnmarshalWithConf("", c, koanf.UnmarshalConf{
		Tag: "koanf",
		DecoderConfig: &mapstructure.DecoderConfig{
			DecodeHook: mapstructure.ComposeDecodeHookFunc(
				durationHook,
				mapstructure.TextUnmarshallerHookFunc(),
			),
			ErrorUnused:      true,
			WeaklyTypedInput: true,
			MatchName:        func(key, field string) bool { return key == field },
		},
	})
}

var durationType = reflect.TypeFor[time.Duration]()

// durationHook parses duration strings and rejects bare numbers, which
// mapstructure would otherwise take as nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != durationType || from == durationType {
		return data, nil
	}
	s, ok := data.(string)
	if !ok {
		return nil, fmt.Errorf("want a duration with a unit, such as \"10s\", got %v", data)
	}
	return time.ParseDuration(s)
}

// envLayer returns the CUSTOS_ variables of environ that name a known key.
// As with os.Getenv, the first of duplicate entries wins.
func envLayer(environ []string) *koanf.Koanf {
	known := flatten(&Config{}, false)
	m := map[string]any{}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		rest, found := strings.CutPrefix(name, EnvPrefix)
		if !ok || !found {
			continue
		}
		key := strings.ReplaceAll(strings.ToLower(rest), "__", ".")
		if _, ok := known[key]; !ok {
			continue
		}
		if _, dup := m[key]; dup {
			continue
		}
		m[key] = val
		if key == "cluster.join" || key == "api.tls_san" {
			m[key] = splitList(val)
		}
	}
	return fromFlat(m)
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	out := []string{}
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// RegisterServerFlags defines the server's flags on fs. Those that name a
// configuration key are read by Load (when set); --config and --config-dump
// are for the caller: the file to pass as Options.File, and whether to Dump
// the effective configuration and exit.
func RegisterServerFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "TOML configuration file (the service uses "+DefaultFile+")")
	fs.Bool("config-dump", false, "print the effective configuration, secrets redacted, and exit")
	fs.Bool("dev", false, "dev mode: a single local node with dev defaults and short timeouts (env CUSTOS_DEV)")
	fs.String("dev-token", "", "fixed operator token in dev mode (env CUSTOS_DEV_TOKEN)")
	fs.String("dev-listen-address", "", "API listen address in dev mode, same as --listen-address")
	fs.String("data-dir", "", "data directory (env CUSTOS_DATA_DIR)")
	fs.String("node-id", "", "node id, a slug (env CUSTOS_NODE_ID)")
	fs.String("region", "", "region, a slug such as ap-south-1 (env CUSTOS_REGION)")
	fs.String("listen-address", "", "API listen address host:port (env CUSTOS_API__LISTEN_ADDRESS)")
	fs.String("cluster-listen-address", "", "Raft listen address host:port (env CUSTOS_CLUSTER__LISTEN_ADDRESS)")
	fs.String("cluster-advertise-address", "", "Raft address other nodes dial (env CUSTOS_CLUSTER__ADVERTISE_ADDRESS)")
	fs.String("log-level", "", "debug, info, warn or error (env CUSTOS_LOG__LEVEL)")
	fs.String("log-format", "", "text or json (env CUSTOS_LOG__FORMAT)")
}

// flagKey maps a flag name to its configuration key, or "" for flags that
// are not configuration (posflag then skips them). When both
// --dev-listen-address and --listen-address are set, --listen-address wins,
// as flags are visited in lexical order.
func flagKey(name string) string {
	switch name {
	case "dev", "region":
		return name
	case "dev-token", "data-dir", "node-id":
		return strings.ReplaceAll(name, "-", "_")
	case "listen-address", "dev-listen-address":
		return "api.listen_address"
	case "cluster-listen-address":
		return "cluster.listen_address"
	case "cluster-advertise-address":
		return "cluster.advertise_address"
	case "log-level":
		return "log.level"
	case "log-format":
		return "log.format"
	}
	return ""
}

// flatten returns c as flat key/value pairs in the shapes a TOML file
// uses: durations as strings such as "1s". Secrets are redacted if redact is
// set. Every key of Config appears, so its keys are also the known keys.
func flatten(c *Config, redact bool) map[string]any {
	secret := func(s Secret) string {
		if redact {
			return s.String()
		}
		return s.Reveal()
	}
	return map[string]any{
		"dev":                               c.Dev,
		"dev_token":                         secret(c.DevToken),
		"node_id":                           c.NodeID,
		"region":                            c.Region,
		"data_dir":                          c.DataDir,
		"api.listen_address":                c.API.ListenAddress,
		"api.body_limit":                    int64(c.API.BodyLimit),
		"api.request_timeout":               c.API.RequestTimeout.String(),
		"api.tls_cert_file":                 c.API.TLSCertFile,
		"api.tls_key_file":                  c.API.TLSKeyFile,
		"api.tls_min_version":               c.API.TLSMinVersion,
		"api.tls_san":                       append([]string{}, c.API.TLSSAN...),
		"api.insecure_http":                 c.API.InsecureHTTP,
		"api.tls_client_ca_file":            c.API.TLSClientCAFile,
		"cluster.listen_address":            c.Cluster.ListenAddress,
		"cluster.advertise_address":         c.Cluster.AdvertiseAddress,
		"cluster.join":                      append([]string{}, c.Cluster.Join...),
		"cluster.join_token":                secret(c.Cluster.JoinToken),
		"cluster.heartbeat_timeout":         c.Cluster.HeartbeatTimeout.String(),
		"cluster.election_timeout":          c.Cluster.ElectionTimeout.String(),
		"cluster.leader_lease_timeout":      c.Cluster.LeaderLeaseTimeout.String(),
		"cluster.snapshot_threshold":        c.Cluster.SnapshotThreshold,
		"cluster.snapshot_interval":         c.Cluster.SnapshotInterval.String(),
		"cluster.apply_timeout":             c.Cluster.ApplyTimeout.String(),
		"keyring.seal_identity":             c.Keyring.SealIdentity,
		"keyring.cache_ttl":                 c.Keyring.CacheTTL.String(),
		"keyring.cache_size":                int64(c.Keyring.CacheSize),
		"keyring.vault_timeout":             c.Keyring.VaultTimeout.String(),
		"keyring.compact_window":            c.Keyring.CompactWindow.String(),
		"keyring.trim_after":                c.Keyring.TrimAfter.String(),
		"audit.retention":                   c.Audit.Retention.String(),
		"audit.checkpoint_interval":         c.Audit.CheckpointInterval.String(),
		"audit.checkpoint_entries":          int64(c.Audit.CheckpointEntries),
		"audit.selfcheck_interval":          c.Audit.SelfCheckInterval.String(),
		"backup.dir":                        c.Backup.Dir,
		"backup.interval":                   c.Backup.Interval.String(),
		"backup.keep":                       int64(c.Backup.Keep),
		"backup.archive_log":                c.Backup.ArchiveLog,
		"backup.archive_interval":           c.Backup.ArchiveInterval.String(),
		"blobs.max_size":                    c.Blobs.MaxSize,
		"blobs.content_types":               append([]string{}, c.Blobs.ContentTypes...),
		"blobs.stale_after":                 c.Blobs.StaleAfter.String(),
		"retention.interval":                c.Retention.Interval.String(),
		"retention.batch_size":              int64(c.Retention.BatchSize),
		"retention.pause":                   c.Retention.Pause.String(),
		"privacy.export_ttl":                c.Privacy.ExportTTL.String(),
		"ratelimit.enabled":                 c.RateLimit.Enabled,
		"ratelimit.per_source_rate":         c.RateLimit.PerSourceRate,
		"ratelimit.per_source_burst":        int64(c.RateLimit.PerSourceBurst),
		"ratelimit.per_principal_rate":      c.RateLimit.PerPrincipalRate,
		"ratelimit.per_principal_burst":     int64(c.RateLimit.PerPrincipalBurst),
		"ratelimit.max_tracked":             int64(c.RateLimit.MaxTracked),
		"ratelimit.login_account_free":      int64(c.RateLimit.LoginAccountFree),
		"ratelimit.login_account_max_delay": c.RateLimit.LoginAccountMaxDelay.String(),
		"ratelimit.login_source_free":       int64(c.RateLimit.LoginSourceFree),
		"ratelimit.login_source_max_delay":  c.RateLimit.LoginSourceMaxDelay.String(),
		"ratelimit.login_base_delay":        c.RateLimit.LoginBaseDelay.String(),
		"ratelimit.login_decay":             c.RateLimit.LoginDecay.String(),
		"log.level":                         c.Log.Level,
		"log.format":                        c.Log.Format,
		"log.levels":                        levelsMap(c.Log.Levels),
		"metrics.listen_address":            c.Metrics.ListenAddress,
		"metrics.poll_interval":             c.Metrics.PollInterval.String(),
	}
}

// levelsMap is a copy of levels in the shape a TOML table decodes into.
func levelsMap(levels map[string]string) map[string]any {
	out := make(map[string]any, len(levels))
	for k, v := range levels {
		out[k] = v
	}
	return out
}
