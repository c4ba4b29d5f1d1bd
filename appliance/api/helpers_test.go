package api_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/backup"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/appliance/identity/breakglass"
	"github.com/custos/custos/appliance/identity/password"
	"github.com/custos/custos/appliance/identity/roles"
	"github.com/custos/custos/appliance/identity/signing"
	"github.com/custos/custos/appliance/identity/sso"
	"github.com/custos/custos/appliance/identity/visibility"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/appliance/privacy/erasure"
	"github.com/custos/custos/appliance/privacy/export"
	"github.com/custos/custos/appliance/privacy/requests"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/apispec"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/tenancy/tenancytest"
	"github.com/custos/custos/internal/testkit"
	"github.com/custos/custos/internal/testkit/sealtest"
	"github.com/custos/custos/internal/testkit/storetest"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

const goodToken = "operator-secret-token"

// staticAuth accepts one operator token: the smallest real Auth.
type staticAuth struct{ token string }

func (a staticAuth) CheckOperatorToken(_ context.Context, token string) error {
	if subtle.ConstantTimeCompare([]byte(token), []byte(a.token)) != 1 {
		return errors.New("unknown operator token")
	}
	return nil
}

// env is an API in front of a real single-node store.
type env struct {
	t       testing.TB
	store   *raftstore.Store
	svc     *tenants.Service
	keys    *keyring.Hierarchy
	audit   *audit.Service
	runner  *audit.Runner
	apikeys *apikeys.Service
	// accounts are the tenants' users and sessions (its signing keys
	// opened with the env's seal identity).
	accounts *accounts.Service
	// signer issues the accounts' access tokens (withBackoff rebuilds
	// the accounts over it).
	signer  *signing.Keys
	colls   *collections.Service
	vkey    string
	blobCfg blobs.Config // set before the first deps() call
	app     *fiber.App
	logBuf  *syncBuffer
	// owners are the tenants' bootstrap Owner keys, by tenant (see
	// ownerKey).
	owners map[string]string
	// breakGlass keeps the operators' grants on the env's clock: the
	// wall clock plus skew (advance moves it).
	breakGlass *breakglass.Service
	skew       atomic.Int64
	// frozen, when not zero, is the wall-clock reading (Unix nanoseconds)
	// the env's clock stands at (see freeze).
	frozen atomic.Int64
	// root is the cluster service that revokes and regenerates the root
	// token (the env's operator token is staticAuth's, not in the store).
	root *cluster.Service
	// seal is the cluster's seal identity (what operators keep offline).
	seal *age.X25519Identity
}

// backupRecipients are the cluster's, or the seal's recipient until
// some are set (so that the env's system chain starts as a genesis
// leaves it).
func (e *env) backupRecipients(ctx context.Context) ([]string, error) {
	rs, err := e.root.BackupRecipients(ctx)
	if errors.Is(err, cluster.ErrNoBackupRecipients) {
		return []string{e.seal.Recipient().String()}, nil
	}
	return rs, err
}

// rootNonce starts a regeneration of the root token and opens its
// challenge with the seal identity, as `custos operator root-token
// generate` does.
func (e *env) rootNonce() string {
	e.t.Helper()
	var ch struct {
		Sealed string `json:"sealed_nonce"`
	}
	r := e.do("POST", "/v1/sys/root-token/generate/attempt", "", withoutHeader("Authorization"))
	if r.status != http.StatusCreated {
		e.t.Fatalf("root token attempt: %d %s", r.status, r.body)
	}
	r.json(e.t, &ch)
	ct, err := base64.StdEncoding.DecodeString(ch.Sealed)
	if err != nil {
		e.t.Fatal(err)
	}
	nonce, err := keyring.DecryptWithIdentities([]age.Identity{e.seal}, ct)
	if err != nil {
		e.t.Fatalf("open the root token challenge: %v", err)
	}
	return string(nonce)
}

// now is the env's clock for break-glass grants.
func (e *env) now() time.Time {
	wall := time.Now()
	if f := e.frozen.Load(); f != 0 {
		wall = time.Unix(0, f)
	}
	return wall.Add(time.Duration(e.skew.Load()))
}

// freeze stops the env's clock where it stands: from then on only
// advance moves it, so a test of short delays does not depend on how
// fast a loaded machine runs it.
func (e *env) freeze() { e.frozen.Store(time.Now().UnixNano()) }

// advance moves the env's clock forward by d.
func (e *env) advance(d time.Duration) { e.skew.Add(int64(d)) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(tb testing.TB, opts api.Options) *env {
	tb.Helper()
	return newEnvStore(tb, storetest.Start(tb), opts)
}

// newEnvStore is newEnv over a given store.
func newEnvStore(tb testing.TB, store *raftstore.Store, opts api.Options) *env {
	tb.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		tb.Fatal(err)
	}
	keys := keyring.NewHierarchy(tenancy.New(store), keyring.HierarchyOptions{Seal: []age.Recipient{id.Recipient()}, Identities: []age.Identity{id}, System: audit.System(), Pseudonym: audit.Pseudonym})
	vkey := sealtest.BootstrapWith(tb, store, "custos-audit-test", id).VerifierKey
	// The seal recipients, as a cluster's genesis writes them: the root
	// token's regeneration seals its challenge to them.
	sealOps, err := keyring.BootstrapOps([]string{id.Recipient().String()})
	if err != nil {
		tb.Fatal(err)
	}
	if res, err := store.Apply(context.Background(), &raftstore.Txn{Ops: sealOps}); err != nil || !res.Applied {
		tb.Fatalf("seal recipients: %+v %v", res, err)
	}
	root := cluster.New()
	root.Attach(store)
	aud := audit.New(store, []age.Identity{id}, nil)
	runner := audit.NewRunner(aud, audit.RunConfig{IsLeader: store.IsLeader})
	svc := tenants.New(tenancy.New(store), storetest.Region, tenants.WithKeys(keys))
	e := &env{t: tb, store: store, svc: svc, keys: keys, audit: aud, runner: runner, apikeys: apikeys.New(tenancy.New(store), nil), colls: collections.New(tenancy.New(store), nil, collections.WithPurposes(consent.New(tenancy.New(store), keys, nil))), vkey: vkey, logBuf: &syncBuffer{}, owners: map[string]string{}}
	e.breakGlass = breakglass.New(tenancy.New(store), e.now)
	sign, err := signing.Open(context.Background(), tenancy.New(store), signing.Options{Issuer: "custos-test", Identities: []age.Identity{id}})
	if err != nil {
		tb.Fatal(err)
	}
	e.signer = sign
	if e.accounts, err = accounts.New(tenancy.New(store), accounts.Options{Keys: keys, Hasher: testHasher(tb), Signer: sign}); err != nil {
		tb.Fatal(err)
	}
	e.root, e.seal = root, id
	e.app = e.server(e.deps(), opts)
	return e
}

// testHasher hashes passwords with cheap parameters: the cost of
// argon2id is the password package's concern, and the API tests log in
// often.
func testHasher(tb testing.TB) *password.Hasher {
	h, err := password.NewHasher(password.Options{Params: password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// deps are the env's real services.
func (e *env) deps() api.Deps { return e.depsWith(e.keys) }

// depsWith are the env's real services with keys as the key hierarchy of
// every service that needs one (such as a sealed node's).
func (e *env) depsWith(keys *keyring.Hierarchy) api.Deps {
	b := tenancy.New(e.store)
	reads := audit.NewBatcher(b, audit.BatchOptions{}) // shared, as the node shares one
	// Operators read in clear only under an active break-glass grant, as
	// the node wires it.
	sight := visibility.New(visibility.WithGrants(e.breakGlass))
	subjects := &subjectIndexes{}
	cons := consent.New(b, keys, nil, consent.WithReadAudit(reads), consent.WithVisibility(sight), consent.WithSubjects(subjects))
	recs := records.New(b, keys, e.colls, nil, records.WithReadAudit(reads), records.WithVisibility(sight), records.WithConsent(cons))
	bl := blobs.New(b, keys, recs, e.blobCfg, nil, blobs.WithReadAudit(reads), blobs.WithVisibility(sight), blobs.WithConsent(cons))
	subjects.records, subjects.blobs = recs, bl
	dsr := requests.New(b, keys, requests.WithRectifier(recs), requests.WithClock(e.now), requests.WithFlagger(cons.FlagForRequest))
	exports := export.New(b, keys, export.Sources{Records: recs, Collections: e.colls, Blobs: bl, Consent: cons, Requests: dsr, Audit: e.audit}, export.Config{}, nil)
	era := erasure.New(b, erasure.Deps{Records: recs, Blobs: bl, Consent: cons, Keys: keys, Audit: e.audit, Requests: dsr})
	return api.Deps{Cluster: e.store, Tenants: e.svc, Keys: keys, Audit: e.audit, SelfCheck: e.runner, APIKeys: e.apikeys, Collections: e.colls, Accounts: e.accounts, Owners: e.accounts,
		Records: recs, Blobs: bl, Consent: cons, Erasure: era, Exports: exports,
		Auth: staticAuth{goodToken}, BreakGlass: e.breakGlass, RootToken: e.root,
		Backup: backup.New(e.store, backup.Deps{Recipients: e.backupRecipients, Signer: e.audit.Signer}), BackupRecipients: e.root,
		SSO: sso.New(b, keys, e.accounts, sso.Options{}), Version: "1.2.3-test",
		Requests: dsr}
}

// subjectIndexes tells consent whether a tenant holds a record or a blob
// of a subject, as the node wires it.
type subjectIndexes struct {
	records *records.Service
	blobs   *blobs.Service
}

func (s *subjectIndexes) HasSubject(ctx context.Context, caller audit.Principal, tenant, subject string) (bool, error) {
	if ok, err := s.records.HasSubject(ctx, caller, tenant, subject); ok || err != nil {
		return ok, err
	}
	return s.blobs.HasSubject(ctx, caller, tenant, subject)
}

// server builds an API with the env's log buffer.
func (e *env) server(deps api.Deps, opts api.Options) *fiber.App {
	e.t.Helper()
	deps.Logger = slog.New(slog.NewJSONHandler(e.logBuf, nil))
	return api.New(deps, opts)
}

// response is what a test inspects of one answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("response body is not JSON: %v: %s", err, r.body)
	}
}

type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }
func withoutHeader(k string) reqOpt { return func(r *http.Request) { r.Header.Del(k) } }

// do sends a request through app.Test. By default it carries the token
// of the principal that may make it: the operator token, or — on a route
// of a tenant's data, which operators do not reach — the tenant's
// bootstrap Owner key (e.asOwner); and Content-Type application/json
// when there is a body. An Authorization option overrides it.
func (e *env) do(method, target, body string, opts ...reqOpt) response {
	e.t.Helper()
	return doOn(e.t, e.app, method, target, body, append(e.auth(method, target), opts...)...)
}

// auth is the Authorization option e.do sends for method and target
// (none: doOn's operator token), for requests sent to another app of the
// same store.
func (e *env) auth(method, target string) []reqOpt {
	e.t.Helper()
	if tenant, ok := operatorLacks(method, target); ok {
		return []reqOpt{e.asOwner(tenant)}
	}
	return nil
}

// asOwner sends a request with tenant's bootstrap Owner key.
func (e *env) asOwner(tenant string) reqOpt {
	e.t.Helper()
	return withHeader("Authorization", "Bearer "+e.ownerKey(tenant))
}

// ownerKey is the one way tests get a principal that reads and writes a
// tenant's data, now that the operator reads none: an API key bound to
// the Owner role, created by the operator through the bootstrap path
// (while the tenant has no Owner user) on first use and kept. For a
// tenant that does not exist it is another tenant's Owner key, which the
// API answers exactly as it answers a missing tenant (404), as it did the
// operator token there.
func (e *env) ownerKey(tenant string) string {
	e.t.Helper()
	if tok, ok := e.owners[tenant]; ok {
		return tok
	}
	r := doOn(e.t, e.app, "POST", "/v1/tenants/"+url.PathEscape(tenant)+"/apikeys", `{"name":"bootstrap owner","role":"owner"}`)
	if r.status == http.StatusNotFound {
		for _, tok := range e.owners {
			return tok
		}
		e.mustCreate("owner-of-none", "Owner of no tenant under test")
		return e.ownerKey("owner-of-none")
	}
	var k createdKey
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &k) != nil || k.Token == "" {
		e.t.Fatalf("bootstrap Owner key of %s: %d %s", tenant, r.status, r.body)
	}
	// Its first use records last_used, off the request path: use it once
	// and wait, so that the write does not land inside a later request a
	// test compares the store around.
	if r := doOn(e.t, e.app, "GET", "/v1/tenants/"+url.PathEscape(tenant)+"/collections", "", withHeader("Authorization", "Bearer "+k.Token)); r.status != http.StatusOK {
		e.t.Fatalf("first use of the bootstrap Owner key of %s: %d %s", tenant, r.status, r.body)
	}
	testkit.Eventually(e.t, "the Owner key's first use recorded", func() bool {
		var got struct {
			LastUsed *time.Time `json:"last_used"`
		}
		r := doOn(e.t, e.app, "GET", "/v1/tenants/"+url.PathEscape(tenant)+"/apikeys/"+k.ID, "")
		return r.status == http.StatusOK && json.Unmarshal(r.body, &got) == nil && got.LastUsed != nil
	})
	e.owners[tenant] = k.Token
	return k.Token
}

// operatorLacks reports whether method and target are a route of a
// tenant that the Operator role cannot call (bootstrap aside), and the
// tenant the path names.
func operatorLacks(method, target string) (string, bool) {
	path, _, _ := strings.Cut(target, "?")
	segs := strings.Split(strings.TrimPrefix(path, "/v1"), "/")
	if method == http.MethodHead {
		method = http.MethodGet
	}
	operator, _ := roles.Builtin("operator")
	for _, o := range apiOperations {
		if o.Method != method || o.Public || o.Session || o.Cluster || operator.Allows(o.Need) || o.Need == roles.P(roles.APIKeys, roles.Create) {
			continue
		}
		pat := strings.Split(o.Path, "/")
		if len(pat) != len(segs) {
			continue
		}
		match := true
		for i := range pat {
			if !strings.HasPrefix(pat[i], ":") && pat[i] != segs[i] {
				match = false
				break
			}
		}
		if match {
			tenant, _ := url.PathUnescape(segs[2])
			return tenant, true
		}
	}
	return "", false
}

// apiOperations are api.Operations(), once.
var apiOperations = api.Operations()

func doOn(tb testing.TB, app *fiber.App, method, target, body string, opts ...reqOpt) response {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	res, err := app.Test(req, -1)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	// Every exchange must match openapi.json. Requests the server refused
	// with a 4xx are checked as responses only: the bad-input tests send
	// them on purpose, and some of the rules they break (a repeated or
	// unknown query parameter, a duplicate JSON key) are beyond what the
	// description can express. A request the server accepted must be one
	// the description allows, so a lax handler or a too strict
	// description still fails here.
	spec, err := loadSpec()
	if err != nil {
		tb.Fatal(err)
	}
	spec.Check(tb, req, []byte(body), res, b)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// loadSpec parses openapi.json once per test binary: it is embedded, so it
// cannot change, and parsing it for each of the hundreds of requests (and
// every fuzz input) would dominate the tests' time.
var loadSpec = sync.OnceValues(apispec.Load)

// checkProblem asserts a problem+json answer with the given status and
// slug, and returns it.
func checkProblem(tb testing.TB, r response, status int, slug, path string) api.Problem {
	tb.Helper()
	if r.status != status {
		tb.Errorf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != api.ProblemContentType {
		tb.Errorf("Content-Type %q, want %q", ct, api.ProblemContentType)
	}
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		tb.Fatalf("problem is not JSON: %v: %s", err, r.body)
	}
	if p.Type != api.ProblemTypeBase+slug {
		tb.Errorf("type %q, want slug %q (detail %q)", p.Type, slug, p.Detail)
	}
	if p.Status != r.status || p.Title == "" || p.Detail == "" {
		tb.Errorf("problem %+v is incomplete or disagrees with status %d", p, r.status)
	}
	if p.RequestID == "" || p.RequestID != r.header.Get("X-Request-Id") {
		tb.Errorf("problem request_id %q, header %q", p.RequestID, r.header.Get("X-Request-Id"))
	}
	if path != "" && p.Instance != path {
		tb.Errorf("instance %q, want %q", p.Instance, path)
	}
	return p
}

// state is what a failed request must leave unchanged.
type state struct {
	chainSeq  uint64
	chainHash [32]byte
	registry  int
	revision  uint64
}

func (e *env) state() state {
	e.t.Helper()
	var st state
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.store.View(ctx, raftstore.Linearizable, func(tx *raftstore.ReadTx) error {
		st.chainSeq, st.chainHash = tx.ChainHead([]byte(tenancy.SystemChain))
		st.registry = tx.Count(tenancytest.Registry())
		st.revision = tx.Revision()
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) mustCreate(id, name string) {
	e.t.Helper()
	r := e.do("POST", "/v1/tenants", `{"id":"`+id+`","display_name":"`+name+`"}`)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create %q: %d %s", id, r.status, r.body)
	}
}

// gunzipTar returns the contents of the members of a gzip'd tar.
func gunzipTar(tb testing.TB, b []byte) [][]byte {
	tb.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out [][]byte
	for {
		_, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data)
	}
}

// erasureRequest makes a verified erasure request of subject in tenant
// (as the operator, through the API) and returns its id.
func (e *env) erasureRequest(t *testing.T, tenant, subject string) string {
	t.Helper()
	var req struct{ ID string }
	r := e.do("POST", "/v1/tenants/"+tenant+"/requests", `{"kind":"erasure","subject":"`+subject+`"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("erasure request: %d %s", r.status, r.body)
	}
	r.json(t, &req)
	if r := e.do("POST", "/v1/tenants/"+tenant+"/requests/"+req.ID+"/transition", `{"to":"verified","evidence":{"method":"document","text":"checked"}}`); r.status != http.StatusOK {
		t.Fatalf("verify the erasure request: %d %s", r.status, r.body)
	}
	return req.ID
}
