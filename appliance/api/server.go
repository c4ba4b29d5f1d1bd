package api

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/appliance/identity/signing"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/raftstore"
)

// Cluster is the part of the raft node the API reads and manages;
// *raftstore.Store implements it.
type Cluster interface {
	Status() raftstore.Status
	Peers(ctx context.Context) ([]raftstore.Peer, error)
	RemovePeer(ctx context.Context, id string) error
	TransferLeadership(ctx context.Context, id string) error
	IsLeader() bool
}

// Tenants is the tenant registry; *tenants.Service implements it.
type Tenants interface {
	Create(ctx context.Context, who audit.Principal, in tenants.CreateInput) (tenants.Tenant, error)
	Get(ctx context.Context, c raftstore.Consistency, id string) (tenants.Tenant, error)
	List(ctx context.Context, c raftstore.Consistency, after string, limit int) ([]tenants.Tenant, string, error)
	Update(ctx context.Context, who audit.Principal, id string, p tenants.Patch) (tenants.Tenant, error)
	Suspend(ctx context.Context, who audit.Principal, id string) (tenants.Tenant, error)
	Resume(ctx context.Context, who audit.Principal, id string) (tenants.Tenant, error)
	Delete(ctx context.Context, who audit.Principal, id string) error
}

// Auth checks operator credentials; *cluster.Service implements it.
type Auth interface {
	// CheckOperatorToken returns nil when token is a valid operator token.
	// An error that wraps a raftstore availability error (ErrNoLeader,
	// ErrTimeout, ...) is answered 503; any other error 401.
	CheckOperatorToken(ctx context.Context, token string) error
}

// Owners tells whether a tenant has an Owner user: while it has none, the
// tenant is bootstrapping and the operator may create its first
// principals (see server.bootstrapping). The tenant users' service
// implements it.
type Owners interface {
	HasOwnerUser(ctx context.Context, tenant string) (bool, error)
}

// Compile-time checks that the real implementations fit.
var (
	_ Cluster = (*raftstore.Store)(nil)
	_ Tenants = (*tenants.Service)(nil)
	_ Auth    = (*cluster.Service)(nil)
)

// Deps are the services the API adapts.
type Deps struct {
	Cluster Cluster
	Tenants Tenants
	Keys    Keys
	Audit   Audit
	// SelfCheck reports the node's audit self-check.
	SelfCheck   SelfCheck
	APIKeys     APIKeys
	Collections Collections
	Records     Records
	Blobs       Blobs
	// Exports are data-subject and tenant exports.
	Exports Exports
	Auth    Auth
	// Signing is the cluster's access-token keys: the login and session
	// routes issue and verify access tokens with it.
	Signing *signing.Keys
	// RootToken revokes and regenerates the root operator token.
	RootToken RootToken
	// Backup takes backups, BackupRecipients sets whom they are
	// encrypted to (nil: the backup routes answer 500).
	Backup           Backup
	BackupRecipients BackupRecipients
	// BreakGlass keeps the operators' break-glass grants to tenants' data.
	BreakGlass BreakGlass
	// Owners reports whether a tenant has an Owner user (nil: the
	// appliance has no tenant users, so every tenant is bootstrapping).
	Owners Owners
	// SSO is single sign-on through the tenants' identity providers.
	SSO SSO
	// Accounts are the tenants' users, roles and sessions, and resolve
	// the access tokens of users' sessions.
	Accounts Accounts
	// Requests are the tenants' data-subject requests.
	Requests Requests
	// Consent keeps the tenants' purposes, blob kinds and subjects'
	// consent ledgers.
	Consent Consent
	// Erasure carries out erasure requests and keeps the erasure ledger.
	Erasure Erasure
	// Metrics are the node's metrics, served by /v1/sys/metrics (nil:
	// an empty registry).
	Metrics prometheus.Gatherer
	// Observer receives the API's rate-limit refusals (nil: none).
	Observer Observer
	// Version is reported by /v1/sys/status.
	Version string
	// Logger receives request logs and the causes of internal errors
	// (default: discard).
	Logger *slog.Logger
}

// Options tune the HTTP layer.
type Options struct {
	// BodyLimit is the largest accepted request body in bytes (default
	// 1 MiB). Larger bodies are refused with 413 before any handler runs.
	BodyLimit int
	// RequestTimeout bounds each call into a service (default 10s). fiber
	// does not cancel a request when the client goes away, so every call
	// gets its own deadline.
	RequestTimeout time.Duration
	// RateLimit bounds request rates per source address and per
	// principal; nil: no limits.
	RateLimit *RateLimit
	// Now is the rate limits' clock (nil: time.Now); tests give a fake
	// one.
	Now func() time.Time
}

const (
	defaultBodyLimit      = 1 << 20
	defaultRequestTimeout = 10 * time.Second
	// Connection timeouts: slow clients must not hold connections open.
	readTimeout  = 30 * time.Second
	writeTimeout = 30 * time.Second
	idleTimeout  = 2 * time.Minute

	headerRequestID = "X-Request-Id"
	headerRole      = "X-Custos-Role"
	operatorActor   = "operator"
)

// Observer is told what the HTTP layer sees, for metrics; the node's
// metrics implement it. Its methods must be cheap and safe for
// concurrent use.
type Observer interface {
	// ObserveRequest: a request answered, by its route's template (the
	// declared path, such as /v1/tenants/:id; "unmatched" when no route
	// matched), never its path, which may name a subject.
	ObserveRequest(method, route string, status int, d time.Duration)
	// ObserveRateLimited: a request refused by limit ("source" or
	// "principal").
	ObserveRateLimited(limit string)
}

// AppOptions tune NewAppWith.
type AppOptions struct {
	// Observer is told of every request the app answers (nil: none).
	Observer Observer
}

// server holds the handlers' dependencies.
type server struct {
	deps  Deps
	opts  Options
	log   *slog.Logger
	limit *limiter // nil: no rate limits
}

// NewApp makes the HTTP app the API, and later the UI and metrics,
// register their routes on: fiber configured for this appliance, and
// around every request the frame (request id, common headers, problem
// responses, access log) and panic recovery. Errors a route returns, and
// the errors fiber and the HTTP server raise themselves (no route, wrong
// method, unreadable request), are answered as problems. Serve it with
// Listener or Listen; never with Prefork, because bbolt holds an
// exclusive lock on the state file. log receives the access log and the
// causes of internal errors (nil: discard).
func NewApp(log *slog.Logger) *fiber.App { return NewAppWith(log, AppOptions{}) }

// NewAppWith is NewApp with options: an observer of every request.
func NewAppWith(log *slog.Logger, o AppOptions) *fiber.App {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &frame{log: log, obs: o.Observer}
	app := fiber.New(fiber.Config{
		AppName:               "custos",
		Immutable:             true, // request strings must outlive fiber's buffer reuse
		CaseSensitive:         true,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           idleTimeout,
		DisableStartupMessage: true,
		ErrorHandler:          f.handleError,
		// Bodies are streamed so that blob uploads need not fit in
		// memory: fasthttp reads at most 8 KiB of a body before the
		// route runs. Each route reads the rest, within its limit, once
		// the request is authenticated (Register's boundBody).
		StreamRequestBody: true,
		// fasthttp would otherwise read and parse a whole
		// multipart/form-data body before routing, authentication and
		// the body limit, writing parts over 16 MiB to temporary files
		// in plaintext. No route takes a form: such a body is bytes
		// like any other, read (or not) by the route.
		DisablePreParseMultipartForm: true,
	})
	app.Use(f.serve)
	app.Use(recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: f.logPanic}))
	return app
}

// Register adds the /v1 routes of the API to router (an app made by
// NewApp, or a group of it). Missing dependencies or negative options are
// wiring mistakes (the node configuration is validated before this is
// called), so Register panics on them rather than add routes that fail on
// every request.
func Register(router fiber.Router, deps Deps, opts Options) {
	if deps.Cluster == nil || deps.Tenants == nil || deps.Keys == nil || deps.Audit == nil || deps.SelfCheck == nil || deps.APIKeys == nil || deps.Collections == nil || deps.Records == nil || deps.Blobs == nil || deps.Auth == nil || deps.Accounts == nil || deps.BreakGlass == nil || deps.SSO == nil || deps.RootToken == nil || deps.Consent == nil {
		panic("api: Register needs a cluster, tenants, keys, audit, self-check, API keys, collections, records, blobs, auth, break-glass, sso, accounts, consent and the root token")
	}
	if opts.BodyLimit < 0 || opts.RequestTimeout < 0 {
		panic(fmt.Sprintf("api: negative body limit (%d) or request timeout (%s)", opts.BodyLimit, opts.RequestTimeout))
	}
	if opts.BodyLimit == 0 {
		opts.BodyLimit = defaultBodyLimit
	}
	if deps.Metrics == nil {
		deps.Metrics = prometheus.NewRegistry()
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = defaultRequestTimeout
	}
	s := &server{deps: deps, opts: opts, log: deps.Logger, limit: newLimiter(opts.RateLimit, opts.Now, deps.Observer)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	v1 := router.Group("/v1")
	for _, rt := range s.routes() {
		rt.check()
		if rt.method == fiber.MethodGet {
			v1.Get(rt.path, s.serve(&rt)) // and HEAD, as fiber does for every GET
			continue
		}
		v1.Add(rt.method, rt.path, s.serve(&rt))
	}
}

// New is NewApp with the API registered on it: the node's whole HTTP
// surface today.
func New(deps Deps, opts Options) *fiber.App {
	app := NewApp(deps.Logger)
	Register(app, deps, opts)
	return app
}

type localKey int

const (
	requestIDKey localKey = iota // string: the request id
	principalKey                 // caller: who authenticated
	bodyReadKey                  // bool: a handler read the streamed body to its end
)

// frame is what NewApp runs around every request.
type frame struct {
	log *slog.Logger
	obs Observer // nil: none
}

// serve runs around every routed request: it assigns the request id, sets
// the headers every response carries, turns a returned error into a
// problem response (so the access log sees the final status), closes a
// connection whose request body was left unread, and logs the request.
func (s *frame) serve(c *fiber.Ctx) error {
	start := time.Now()
	rid := requestID(c)
	setCommonHeaders(c)
	if err := c.Next(); err != nil {
		if herr := s.handleError(c, err); herr != nil {
			s.log.Error("write error response", "request_id", rid, "error", herr)
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	if bodyUnread(c) {
		// The rest of the body is still on the connection: read as the
		// next request, it would be a request the client never sent.
		c.Context().SetConnectionClose()
	}
	route, status, took := routeOf(c), c.Response().StatusCode(), time.Since(start)
	if s.obs != nil {
		s.obs.ObserveRequest(c.Method(), route, status, took)
	}
	level := slog.LevelInfo
	if (route == "/v1/sys/health" || route == "/v1/sys/metrics") && status == fiber.StatusOK {
		level = slog.LevelDebug // load balancers and scrapers poll them every few seconds
	}
	// The route's template, never the path: paths name subjects (a
	// record's id, a subject's), which are personal data and have no
	// place in a log. The tenant is named: it is the operator's
	// customer, not a person.
	attrs := []slog.Attr{slog.String("request_id", rid), slog.String("method", c.Method()), slog.String("route", route)}
	if t := tenantOf(c, route); t != "" {
		attrs = append(attrs, slog.String("tenant", t))
	}
	attrs = append(attrs, slog.Int("status", status), slog.Duration("duration", took))
	s.log.LogAttrs(context.Background(), level, "http request", attrs...)
	return nil
}

// unmatchedRoute is the route of a request no route matched.
const unmatchedRoute = "unmatched"

// routeOf is the template of the route that answered c (fiber's
// declared path, such as /v1/tenants/:id/records/:rid, or a web UI
// page's, /ui/t/:tenant/subjects/:sid), or
// unmatchedRoute: a request no route matched only reached the frame,
// whose own path is "/".
func routeOf(c *fiber.Ctx) string {
	r := c.Route()
	if r == nil || r.Method == "USE" || !(strings.HasPrefix(r.Path, "/v1/") || strings.HasPrefix(r.Path, "/ui/") || r.Path == "/") {
		return unmatchedRoute
	}
	return r.Path
}

// tenantOf is the tenant a routed request names (the :id of /v1/tenants/:id
// and the routes below it), or "" — only when it is a plausible id, so
// that a log line never carries whatever a client put there.
func tenantOf(c *fiber.Ctx, route string) string {
	if route != "/v1/tenants/:id" && !strings.HasPrefix(route, "/v1/tenants/:id/") {
		return ""
	}
	if id := c.Params("id"); validTenantLog(id) {
		return id
	}
	return ""
}

// validTenantLog accepts what a tenant id may be (a slug of at most 63
// characters).
func validTenantLog(id string) bool {
	if id == "" || len(id) > 63 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if ch := id[i]; (ch < 'a' || ch > 'z') && (ch < '0' || ch > '9') && ch != '-' {
			return false
		}
	}
	return true
}

func setCommonHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderCacheControl, "no-store")
}

// requestID returns the request's id, assigning it on first use: the
// client's X-Request-Id when it is a plausible id, else a fresh random one.
// The id is echoed in the response header.
func requestID(c *fiber.Ctx) string {
	if rid, ok := c.Locals(requestIDKey).(string); ok {
		return rid
	}
	rid := c.Get(headerRequestID)
	if !validRequestID(rid) {
		rid = rand.Text()
	}
	c.Locals(requestIDKey, rid)
	c.Set(headerRequestID, rid)
	return rid
}

// validRequestID accepts 1 to 128 characters of [A-Za-z0-9._~:+/=-]: enough
// for UUIDs, ULIDs and base64 ids, and nothing that could forge a log line
// or a header.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case ch == '.', ch == '_', ch == '~', ch == ':', ch == '+', ch == '/', ch == '=', ch == '-':
		default:
			return false
		}
	}
	return true
}

func (s *frame) logPanic(c *fiber.Ctx, v any) {
	s.log.Error("panic in handler", "request_id", requestID(c), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
}

// callContext is the context of one call into a service.
func (s *server) callContext(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.opts.RequestTimeout)
}
