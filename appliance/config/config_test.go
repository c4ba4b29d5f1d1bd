package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/validation"
	"github.com/spf13/pflag"
)

// prodEnv is the least environment a non-dev node loads with.
var prodEnv = []string{
	"CUSTOS_NODE_ID=node-1",
	"CUSTOS_REGION=ap-south-1",
	"CUSTOS_DATA_DIR=/var/lib/custos",
}

// flags returns a FlagSet from RegisterServerFlags, parsed from args.
func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("custos", pflag.ContinueOnError)
	RegisterServerFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// fieldKeys returns the keys of the validation.FieldErrors in err.
func fieldKeys(err error) []string {
	var keys []string
	var walk func(error)
	walk = func(err error) {
		var fe *validation.FieldError
		if errors.As(err, &fe) && fe == err {
			keys = append(keys, fe.Field)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return keys
}

func TestPrecedence(t *testing.T) {
	file := writeTemp(t, []byte(`
node_id = "node-1"
region = "ap-south-1"
data_dir = "/var/lib/custos"
[api]
listen_address = "127.0.0.1:1001"
[log]
level = "warn"
`))
	tests := []struct {
		name string
		opts Options
		want string // api.listen_address
	}{
		{"defaults", Options{Environ: prodEnv}, "127.0.0.1:8200"},
		{"file over defaults", Options{File: file}, "127.0.0.1:1001"},
		{"env over file", Options{File: file, Environ: []string{"CUSTOS_API__LISTEN_ADDRESS=127.0.0.1:1002"}}, "127.0.0.1:1002"},
		{"flags over env", Options{
			File:    file,
			Environ: []string{"CUSTOS_API__LISTEN_ADDRESS=127.0.0.1:1002"},
			Flags:   flags(t, "--listen-address=127.0.0.1:1003"),
		}, "127.0.0.1:1003"},
		{"unset flags do not override", Options{
			File:    file,
			Environ: []string{"CUSTOS_API__LISTEN_ADDRESS=127.0.0.1:1002"},
			Flags:   flags(t, "--log-level=error"),
		}, "127.0.0.1:1002"},
		{"unset flags do not override the file", Options{File: file, Flags: flags(t)}, "127.0.0.1:1001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.API.ListenAddress; got != tt.want {
				t.Errorf("api.listen_address = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		arg  string
		got  func(*Config) any
		want any
	}{
		{"--data-dir=/d", func(c *Config) any { return c.DataDir }, "/d"},
		{"--node-id=n-2", func(c *Config) any { return c.NodeID }, "n-2"},
		{"--region=us-east-1", func(c *Config) any { return c.Region }, "us-east-1"},
		{"--listen-address=:9000", func(c *Config) any { return c.API.ListenAddress }, ":9000"},
		{"--dev-listen-address=:9001", func(c *Config) any { return c.API.ListenAddress }, ":9001"},
		{"--cluster-listen-address=10.0.0.1:9002", func(c *Config) any { return c.Cluster.ListenAddress }, "10.0.0.1:9002"},
		{"--cluster-listen-address=10.0.0.1:9002", func(c *Config) any { return c.Cluster.AdvertiseAddress }, "10.0.0.1:9002"},
		{"--cluster-advertise-address=10.0.0.9:9003", func(c *Config) any { return c.Cluster.AdvertiseAddress }, "10.0.0.9:9003"},
		{"--log-level=debug", func(c *Config) any { return c.Log.Level }, "debug"},
		{"--log-format=json", func(c *Config) any { return c.Log.Format }, "json"},
		{"--dev", func(c *Config) any { return c.Dev }, true},
		{"--config=/nonexistent.toml", func(c *Config) any { return c.DataDir }, "/var/lib/custos"},
		{"--config-dump", func(c *Config) any { return c.DataDir }, "/var/lib/custos"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			c, err := Load(Options{Environ: prodEnv, Flags: flags(t, tt.arg)})
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.got(c); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("--dev-token", func(t *testing.T) {
		c, err := Load(Options{Flags: flags(t, "--dev", "--dev-token=tok")})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.DevToken.Reveal(); got != "tok" {
			t.Errorf("dev_token = %q, want tok", got)
		}
	})
}

// Every flag except --config and --config-dump sets a known key.
func TestFlagKeys(t *testing.T) {
	known := flatten(&Config{}, false)
	fs := pflag.NewFlagSet("custos", pflag.ContinueOnError)
	RegisterServerFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		key := flagKey(f.Name)
		if f.Name == "config" || f.Name == "config-dump" {
			if key != "" {
				t.Errorf("--%s maps to %q, want no key", f.Name, key)
			}
			return
		}
		if _, ok := known[key]; !ok {
			t.Errorf("--%s maps to %q, not a known key", f.Name, key)
		}
	})
}

// flatten must list exactly the keys of Config's koanf tags, as it defines
// the defaults, the known environment variables and Dump.
func TestFlattenCoversConfig(t *testing.T) {
	var want []string
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, prefix string) {
		for f := range typ.Fields() {
			key := prefix + f.Tag.Get("koanf")
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, key+".")
				continue
			}
			want = append(want, key)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	var got []string
	for k := range flatten(&Config{}, false) {
		got = append(got, k)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("flatten keys\n%v\nwant (from koanf tags)\n%v", got, want)
	}
}

func TestEnvironment(t *testing.T) {
	env := append([]string{
		"CUSTOS_CLUSTER__JOIN= 10.0.0.1:8201 ,10.0.0.2:8201,,",
		"CUSTOS_CLUSTER__JOIN_TOKEN=jt",
		"CUSTOS_API__BODY_LIMIT=2048",
		"CUSTOS_API__TLS_SAN=custos.example.com, 10.0.0.3",
		"CUSTOS_CLUSTER__SNAPSHOT_INTERVAL=1m",
		"CUSTOS_LOG__LEVEL=warn",
		"CUSTOS_LOG__LEVEL=error", // the first of duplicates wins, as with os.Getenv
		// The CLI's variables, unknown names and tables are ignored.
		"CUSTOS_ADDR=http://127.0.0.1:8200",
		"CUSTOS_TOKEN=tok",
		"CUSTOS_FORMAT=json",
		"CUSTOS_CACERT=/etc/custos/ca.crt",
		"CUSTOS_NO_SUCH_KEY=1",
		"CUSTOS_API=x",
		"CUSTOS_=x",
		"CUSTOS_DEVX",
		// Without the prefix nothing is read.
		"DATA_DIR=/elsewhere",
		"custos_data_dir=/elsewhere",
	}, prodEnv...)
	c, err := Load(Options{Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.1:8201", "10.0.0.2:8201"}; !slices.Equal(c.Cluster.Join, want) {
		t.Errorf("cluster.join = %q, want %q", c.Cluster.Join, want)
	}
	if want := []string{"custos.example.com", "10.0.0.3"}; !slices.Equal(c.API.TLSSAN, want) {
		t.Errorf("api.tls_san = %q, want %q", c.API.TLSSAN, want)
	}
	if c.Cluster.JoinToken.Reveal() != "jt" || c.API.BodyLimit != 2048 ||
		c.Cluster.SnapshotInterval != time.Minute || c.Log.Level != "warn" || c.DataDir != "/var/lib/custos" {
		t.Errorf("environment not applied: %+v", c)
	}
}

func TestUnknownFileKey(t *testing.T) {
	tests := []struct{ name, content, key string }{
		{"top level", "node_idd = \"x\"\n", "node_idd"},
		{"nested", "[cluster]\nheartbeat_timout = \"2s\"\n", "heartbeat_timout"},
		{"unknown table", "[metrics]\nlisten = \":9090\"\n", "metrics"},
		{"wrong case", "NODE_ID = \"x\"\n", "NODE_ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, []byte(tt.content))
			_, err := Load(Options{File: path, Environ: prodEnv})
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); !strings.Contains(msg, tt.key) || !strings.Contains(msg, path) {
				t.Errorf("error %q does not name key %q and file %s", msg, tt.key, path)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(Options{File: "testdata/does-not-exist.toml", Environ: prodEnv})
	if err == nil || !strings.Contains(err.Error(), "testdata/does-not-exist.toml") {
		t.Errorf("got %v, want an error naming the file", err)
	}
}

// Values that do not decode are reported with their key and source.
func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		key    string
		source string
	}{
		{"env int", Options{Environ: []string{"CUSTOS_API__BODY_LIMIT=big"}}, "api.body_limit", "environment"},
		{"env duration without unit", Options{Environ: []string{"CUSTOS_CLUSTER__APPLY_TIMEOUT=5"}}, "cluster.apply_timeout", "environment"},
		{"env bool", Options{Environ: []string{"CUSTOS_DEV=maybe"}}, "dev", "environment"},
		{"env negative uint", Options{Environ: []string{"CUSTOS_CLUSTER__SNAPSHOT_THRESHOLD=-1"}}, "cluster.snapshot_threshold", "environment"},
		{"file duration as number", Options{File: writeTemp(t, []byte("[cluster]\nheartbeat_timeout = 1000\n"))}, "cluster.heartbeat_timeout", "custos.toml"},
		{"file table as value", Options{File: writeTemp(t, []byte("api = 3\n"))}, "api", "custos.toml"},
		{"file value as table", Options{File: writeTemp(t, []byte("[node_id]\nx = 1\n"))}, "node_id", "custos.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); !strings.Contains(msg, "'"+tt.key+"'") || !strings.Contains(msg, tt.source) {
				t.Errorf("error %q does not name key %q and source %q", msg, tt.key, tt.source)
			}
		})
	}
}

// Values that decode but are not valid are reported as FieldErrors, all
// of them at once.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		keys []string
	}{
		{"production needs identity", nil, []string{"node_id", "region", "data_dir"}},
		{"slug", []string{"CUSTOS_NODE_ID=-x", "CUSTOS_REGION=EU"}, []string{"node_id", "region"}},
		{"long slug", []string{"CUSTOS_NODE_ID=" + strings.Repeat("a", 64)}, []string{"node_id"}},
		{"dev token outside dev", []string{"CUSTOS_DEV_TOKEN=t"}, []string{"dev_token"}},
		{"addresses", []string{
			"CUSTOS_API__LISTEN_ADDRESS=8200",
			"CUSTOS_CLUSTER__LISTEN_ADDRESS=127.0.0.1:http",
			"CUSTOS_CLUSTER__ADVERTISE_ADDRESS=:8201",
			"CUSTOS_CLUSTER__JOIN=a:1,b,[::]:8201",
		}, []string{"api.listen_address", "cluster.listen_address", "cluster.advertise_address", "cluster.join[1]", "cluster.join[2]"}},
		{"unspecified listen needs an advertise address", []string{"CUSTOS_CLUSTER__LISTEN_ADDRESS=0.0.0.0:8201"}, []string{"cluster.advertise_address"}},
		{"port 0 outside dev", []string{"CUSTOS_CLUSTER__LISTEN_ADDRESS=127.0.0.1:0"}, []string{"cluster.advertise_address"}},
		{"body limit low", []string{"CUSTOS_API__BODY_LIMIT=1023"}, []string{"api.body_limit"}},
		{"body limit high", []string{"CUSTOS_API__BODY_LIMIT=67108865"}, []string{"api.body_limit"}},
		{"timeouts", []string{
			"CUSTOS_API__REQUEST_TIMEOUT=0s",
			"CUSTOS_CLUSTER__SNAPSHOT_INTERVAL=-1s",
			"CUSTOS_CLUSTER__APPLY_TIMEOUT=0s",
		}, []string{"api.request_timeout", "cluster.snapshot_interval", "cluster.apply_timeout"}},
		{"lease above heartbeat", []string{"CUSTOS_CLUSTER__LEADER_LEASE_TIMEOUT=2s"}, []string{"cluster.leader_lease_timeout"}},
		{"election below heartbeat", []string{"CUSTOS_CLUSTER__ELECTION_TIMEOUT=600ms"}, []string{"cluster.election_timeout"}},
		{"raft minimum", []string{"CUSTOS_CLUSTER__LEADER_LEASE_TIMEOUT=1ms"}, []string{"cluster.leader_lease_timeout"}},
		{"snapshot threshold", []string{"CUSTOS_CLUSTER__SNAPSHOT_THRESHOLD=0"}, []string{"cluster.snapshot_threshold"}},
		{"log", []string{"CUSTOS_LOG__LEVEL=INFO", "CUSTOS_LOG__FORMAT=logfmt"}, []string{"log.level", "log.format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if tt.name != "production needs identity" {
				env = append(slices.Clone(tt.env), prodEnv...)
			}
			_, err := Load(Options{Environ: env})
			if got := fieldKeys(err); !slices.Equal(got, tt.keys) {
				t.Errorf("invalid keys %q, want %q; error:\n%v", got, tt.keys, err)
			}
			for _, key := range tt.keys {
				if !strings.Contains(err.Error(), key+": ") {
					t.Errorf("message does not name %s: %v", key, err)
				}
			}
		})
	}
}

func TestDevDefaults(t *testing.T) {
	want := Config{
		Dev:     true,
		NodeID:  "dev",
		Region:  "local",
		DataDir: "",
		API: API{
			ListenAddress:  "127.0.0.1:8200",
			BodyLimit:      1 << 20,
			RequestTimeout: 10 * time.Second,
			TLSMinVersion:  "1.3",
			TLSSAN:         []string{},
		},
		Cluster: Cluster{
			ListenAddress:      "127.0.0.1:0",
			AdvertiseAddress:   "127.0.0.1:0",
			Join:               []string{},
			HeartbeatTimeout:   50 * time.Millisecond,
			ElectionTimeout:    50 * time.Millisecond,
			LeaderLeaseTimeout: 25 * time.Millisecond,
			SnapshotThreshold:  8192,
			SnapshotInterval:   30 * time.Second,
			ApplyTimeout:       5 * time.Second,
		},
		Keyring: Keyring{
			CacheTTL: 5 * time.Minute, CacheSize: 10000, VaultTimeout: 5 * time.Second,
			CompactWindow: 10 * time.Minute, TrimAfter: 720 * time.Hour,
		},
		Audit:  Audit{Retention: 43800 * time.Hour, CheckpointInterval: time.Minute, CheckpointEntries: 1000, SelfCheckInterval: 10 * time.Minute},
		Backup: Backup{Interval: 24 * time.Hour, Keep: 7, ArchiveInterval: 10 * time.Second},
		Blobs: Blobs{MaxSize: 2 << 30, StaleAfter: 15 * time.Minute,
			ContentTypes: []string{"audio/*", "video/*", "image/*", "application/pdf", "application/octet-stream", "text/plain"}},
		Retention: Retention{Interval: time.Hour, BatchSize: 256, Pause: 20 * time.Millisecond},
		Privacy:   Privacy{ExportTTL: 24 * time.Hour},
		RateLimit: RateLimit{Enabled: true, PerSourceRate: 2000, PerSourceBurst: 4000, PerPrincipalRate: 1000, PerPrincipalBurst: 2000, MaxTracked: 100_000,
			LoginAccountFree: 5, LoginAccountMaxDelay: 15 * time.Minute, LoginSourceFree: 20, LoginSourceMaxDelay: time.Hour, LoginBaseDelay: time.Second, LoginDecay: 10 * time.Minute},
		Log:     Log{Level: "info", Format: "text", Levels: map[string]string{"raft": "warn"}},
		Metrics: Metrics{PollInterval: time.Minute},
	}
	// Dev mode from any source gets the dev defaults.
	for name, opts := range map[string]Options{
		"env":  {Environ: []string{"CUSTOS_DEV=true"}},
		"flag": {Flags: flags(t, "--dev")},
		"file": {File: writeTemp(t, []byte("dev = true\n"))},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*c, want) {
				t.Errorf("got  %+v\nwant %+v", *c, want)
			}
		})
	}

	t.Run("sources override dev defaults", func(t *testing.T) {
		c, err := Load(Options{
			File:    writeTemp(t, []byte("dev = true\nnode_id = \"mine\"\n[cluster]\nheartbeat_timeout = \"100ms\"\nelection_timeout = \"100ms\"\n")),
			Environ: []string{"CUSTOS_REGION=eu-west-1"},
			Flags:   flags(t, "--dev-listen-address=127.0.0.1:18200"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.NodeID != "mine" || c.Region != "eu-west-1" || c.API.ListenAddress != "127.0.0.1:18200" ||
			c.Cluster.HeartbeatTimeout != 100*time.Millisecond || c.Cluster.LeaderLeaseTimeout != 25*time.Millisecond {
			t.Errorf("got %+v", c)
		}
	})

	t.Run("flag turns dev off", func(t *testing.T) {
		c, err := Load(Options{Environ: append([]string{"CUSTOS_DEV=1"}, prodEnv...), Flags: flags(t, "--dev=false")})
		if err != nil {
			t.Fatal(err)
		}
		if c.Dev || c.Cluster.HeartbeatTimeout != time.Second {
			t.Errorf("got dev=%v heartbeat=%v, want production defaults", c.Dev, c.Cluster.HeartbeatTimeout)
		}
	})
}

func TestLoadIsolated(t *testing.T) {
	// Load reads only its Options: with none, it reports the missing
	// identity whatever the process environment says.
	t.Setenv("CUSTOS_NODE_ID", "from-process")
	_, err := Load(Options{})
	if !slices.Contains(fieldKeys(err), "node_id") {
		t.Errorf("Load read the process environment: %v", err)
	}
}

func TestPlainHTTP(t *testing.T) {
	for _, tt := range []struct {
		name string
		api  API
		dev  bool
		want bool
	}{
		{"cluster node", API{}, false, false},
		{"cluster node with insecure_http", API{InsecureHTTP: true}, false, true},
		{"dev node", API{}, true, true},
		{"dev node with a certificate", API{TLSCertFile: "c", TLSKeyFile: "k"}, true, false},
	} {
		if got := tt.api.PlainHTTP(tt.dev); got != tt.want {
			t.Errorf("%s: PlainHTTP = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The configuration file the package installs as /etc/custos/custos.toml
// is one Load accepts as it stands, for a node that is not in dev mode and
// serves TLS.
func TestPackagedConfig(t *testing.T) {
	c, err := Load(Options{File: filepath.Join("..", "..", "packaging", "custos.toml")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Dev || c.API.PlainHTTP(c.Dev) || c.DataDir != "/var/lib/custos" || c.NodeID == "" || c.Region == "" {
		t.Fatalf("packaged configuration: dev %v, plain HTTP %v, data_dir %q, node_id %q, region %q", c.Dev, c.API.PlainHTTP(c.Dev), c.DataDir, c.NodeID, c.Region)
	}
}
