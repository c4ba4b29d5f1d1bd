package api

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/identity/breakglass"
	"github.com/custos/custos/appliance/identity/roles"
)

// access is who may call a route. Each route declares here, once, the
// permission of appliance/identity/roles it needs ([Operations] shows
// them, and the roles package's tests check them against its table);
// authorize asks every principal's role for it, the operator's included.
type access struct {
	public bool // anyone, without a token
	// need is the permission a principal's role must hold (zero when
	// public).
	need roles.Permission
	// key is the old API-key permission (apikeys.Perm*) that admitted a
	// key before roles; "": none did. A key created with that permission
	// holds need (roles.FromAPIKey), so authorization asks only need; key
	// names the permission an old key lacks in a refusal, and documents
	// the mapping for the tests of roles.FromAPIKey.
	key string
	// tenant: the route acts in the tenant its path names (/tenants/:id
	// and below), where a tenant's principals may act; otherwise it acts
	// on the cluster, which only cluster-wide principals reach. Set from
	// the path by routes(), never by hand.
	tenant bool
	// session: the route acts on the caller's own login session (who am
	// I, logout, MFA enrolment): any user's session may call it — one
	// that may only enrol included — and no other principal; need is
	// zero.
	session bool
}

var public = access{public: true}

// needs admits a principal whose role holds p: in the path's tenant, a
// principal of that tenant or a cluster operator; elsewhere, an operator.
func needs(p roles.Permission) access { return access{need: p} }

// ownSession admits a user's session on its own behalf (see
// access.session).
var ownSession = access{session: true}

// tenantKey is needs(p) for a route an old API key holding key reached.
func tenantKey(key string, p roles.Permission) access { return access{need: p, key: key} }

// tenantRoute reports whether a route's path is in a tenant.
func tenantRoute(path string) bool {
	return path == "/tenants/:id" || strings.HasPrefix(path, "/tenants/:id/")
}

// Operation is one route as authorization sees it: its method and path
// (below /v1), and who may call it (see access).
type Operation struct {
	Method, Path string
	Public       bool
	Need         roles.Permission
	// Cluster: the route acts on the cluster, not in a tenant: no
	// tenant's principal reaches it, whatever its role holds.
	Cluster bool
	// Key is the old API-key permission that admitted a key; "": no key
	// reached the route before roles.
	Key string
	// Session: the route acts on the caller's own session (any user's
	// session may call it; no permission applies).
	Session bool
}

// Operations returns every route of the API with the permission it
// needs, in the order of the route table: the one mapping of routes onto
// the permission table, for the tests of both.
func Operations() []Operation {
	var s server
	var out []Operation
	for _, rt := range s.routes() {
		a := rt.access
		out = append(out, Operation{Method: rt.method, Path: rt.path, Public: a.public, Need: a.need, Cluster: !a.public && !a.tenant && !a.session, Key: a.key, Session: a.session})
	}
	return out
}

// bodyKind is what a route does with a request body.
type bodyKind int

const (
	// bodyNone: no body, or an empty JSON object — the same strict
	// rules as any body, so that a misplaced field is refused, not
	// ignored.
	bodyNone bodyKind = iota
	// bodyJSON: one JSON object decoded strictly into the route's type.
	bodyJSON
	// bodyStream: the handler reads the body itself, unbounded by the
	// body limit (the blob upload).
	bodyStream
)

// bodySpec declares a route's body.
type bodySpec struct {
	kind     bodyKind
	required bool                   // bodyJSON: an empty body is refused
	typ      reflect.Type           // bodyJSON: the struct it decodes into (compared with openapi.json by the tests)
	new      func() any             // bodyJSON: a new *typ
	check    func(*fiber.Ctx) error // bodyStream: what can be checked before reading it
}

var (
	noBody = bodySpec{kind: bodyNone, typ: reflect.TypeFor[emptyObject](), new: func() any { return &emptyObject{} }}
)

// streamBody declares a body the handler reads itself; check runs where a
// JSON body would be decoded (after the parameters, before the tenant
// lookup).
func streamBody(check func(c *fiber.Ctx) error) bodySpec {
	return bodySpec{kind: bodyStream, check: check}
}

// jsonBody declares a JSON body decoded into a T; the handler reads it
// with bodyOf[T].
func jsonBody[T any](required bool) bodySpec {
	return bodySpec{kind: bodyJSON, required: required, typ: reflect.TypeFor[T](), new: func() any { return new(T) }}
}

// emptyObject is the body of routes that take none.
type emptyObject struct{}

// handlerFunc serves one route, given its validated input.
type handlerFunc func(c *fiber.Ctx, in *input) error

// route is one operation of the API, declared once: its method and path,
// who may call it, its parameters and body, a rule across its parameters,
// and whether its path names a tenant that must exist.
type route struct {
	method string
	path   string // below /v1, in fiber's syntax (:id)
	access access
	params []param
	body   bodySpec
	// rule checks the parameters together, after each was validated
	// (such as "to not before from"); nil: none.
	rule func(in *input) error
	// existing: the tenant the path names (:id) must exist; the handler
	// finds it in input.tenant. Checked after the body.
	existing bool
	handle   handlerFunc
}

// param is the route's declaration of the parameter name.
func (rt *route) param(name string) (param, bool) {
	for _, p := range rt.params {
		if p.name == name {
			return p, true
		}
	}
	return param{}, false
}

// check panics on a declaration that cannot be right: a path parameter
// of the path that is not declared, or the reverse, or a name declared
// twice. Register runs it, so a bad table never serves a request.
func (rt *route) check() {
	inPathNames := map[string]bool{}
	for _, seg := range strings.Split(rt.path, "/") {
		if name, ok := strings.CutPrefix(seg, ":"); ok {
			inPathNames[name] = true
		}
	}
	seen := map[string]bool{}
	for _, p := range rt.params {
		if seen[p.name] {
			panic(fmt.Sprintf("api: %s %s declares %s twice", rt.method, rt.path, p.name))
		}
		seen[p.name] = true
		if (p.in == inPath) != inPathNames[p.name] {
			panic(fmt.Sprintf("api: %s %s: path parameter %s is declared and in the path, or neither", rt.method, rt.path, p.name))
		}
		delete(inPathNames, p.name)
	}
	if len(inPathNames) > 0 || rt.handle == nil || (rt.body.kind == bodyStream) != (rt.body.check != nil) || (rt.body.kind != bodyStream && rt.body.new == nil) {
		panic(fmt.Sprintf("api: %s %s: undeclared path parameters %v, or no handler or body type", rt.method, rt.path, inPathNames))
	}
	if rt.existing && !seen["id"] {
		panic(fmt.Sprintf("api: %s %s needs an existing tenant but has no :id", rt.method, rt.path))
	}
	if !rt.access.public && !rt.access.session && !slices.Contains(roles.Permissions(), rt.access.need) {
		panic(fmt.Sprintf("api: %s %s declares no permission of the roles table", rt.method, rt.path))
	}
}

// Path parameters, declared once for every route that has them.
var (
	tenantPath     = pathParam("id", tenantIDType)
	collectionPath = pathParam("name", collectionType)
	recordPath     = pathParam("rid", recordIDType)
	blobPath       = pathParam("bid", blobIDType)
	grantPath      = pathParam("gid", grantIDType)
	operatorPath   = pathParam("uid", operatorIDType)
	// erasureRequestPath is a data-subject request's id on the erasure
	// routes.
	erasureRequestPath = pathParam("rid", erasureRequestType)
	stale              = query("stale", boolType)
)

// params is a route's parameter list.
func params(p ...param) []param { return p }

// routes is the route table: every operation of the API, in the order of
// the package documentation.
func (s *server) routes() []route {
	get, post, put, patch, del := fiber.MethodGet, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete
	p := roles.P
	read := func(r roles.Resource) access { return tenantKey(apikeys.PermRead, p(r, roles.Read)) }
	write := func(r roles.Resource, a roles.Action) access { return tenantKey(apikeys.PermWrite, p(r, a)) }
	remove := func(r roles.Resource) access { return tenantKey(apikeys.PermDelete, p(r, roles.Delete)) }
	rs := []route{
		{method: get, path: "/openapi.json", access: public, body: noBody, handle: s.openapi},
		{method: get, path: "/sys/health", access: public, body: noBody, handle: s.health},
		{method: get, path: "/sys/status", access: needs(p(roles.Cluster, roles.Read)), body: noBody, handle: s.status},
		{method: get, path: "/sys/metrics", access: needs(p(roles.Cluster, roles.Read)), body: noBody, handle: s.metrics},
		{method: get, path: "/sys/audit-key", access: public, body: noBody, handle: s.auditKey},
		// The root credential: revoked by an operator; regenerated by
		// whoever opens a nonce sealed to the cluster's seal identity
		// (no token: the old one may be revoked or lost).
		{method: post, path: "/sys/root-token/generate", access: public, body: jsonBody[generateRootRequest](true), handle: s.generateRootToken},
		{method: post, path: "/sys/root-token/generate/attempt", access: public, body: noBody, handle: s.startRootGeneration},
		{method: post, path: "/sys/root-token/revoke", access: needs(p(roles.Cluster, roles.Update)), body: noBody, handle: s.revokeRootToken},
		// Backups: the whole state, encrypted to the backup recipients
		// (appliance/backup); the recipients themselves.
		{method: post, path: "/sys/backup", access: needs(p(roles.Cluster, roles.Update)), body: noBody, handle: s.takeBackup},
		{method: put, path: "/sys/backup/recipients", access: needs(p(roles.Cluster, roles.Update)), body: jsonBody[client.BackupRecipients](true), handle: s.setBackupRecipients},
		// Operator users (operators.go): managed by operators, with the
		// cluster's permissions.
		{method: post, path: "/sys/operators", access: needs(p(roles.Cluster, roles.Update)), body: jsonBody[client.NewOperator](true), handle: s.createOperator},
		{method: get, path: "/sys/operators", access: needs(p(roles.Cluster, roles.Read)), body: noBody, handle: s.listOperators},
		{method: get, path: "/sys/operators/:uid", access: needs(p(roles.Cluster, roles.Read)), params: params(operatorPath), body: noBody, handle: s.getOperator},
		{method: post, path: "/sys/operators/:uid/disable", access: needs(p(roles.Cluster, roles.Update)), params: params(operatorPath), body: noBody, handle: s.operatorAction(s.disableUser)},
		{method: post, path: "/sys/operators/:uid/enable", access: needs(p(roles.Cluster, roles.Update)), params: params(operatorPath), body: noBody, handle: s.operatorAction(s.enableUser)},
		{method: post, path: "/sys/operators/:uid/reset-mfa", access: needs(p(roles.Cluster, roles.Update)), params: params(operatorPath), body: noBody, handle: s.operatorAction(s.resetMFA)},
		{method: post, path: "/sys/operators/:uid/unlock", access: needs(p(roles.Cluster, roles.Update)), params: params(operatorPath), body: noBody, handle: s.operatorAction(s.unlockUser)},

		{method: post, path: "/auth/login", access: public, body: jsonBody[client.Login](true), handle: s.login},
		{method: post, path: "/auth/refresh", access: public, body: jsonBody[refreshRequest](true), handle: s.refresh},
		{method: post, path: "/auth/logout", access: ownSession, body: jsonBody[logoutRequest](false), handle: s.logout},
		{method: get, path: "/auth/session", access: ownSession, body: noBody, handle: s.whoAmI},
		{method: post, path: "/auth/mfa/enrol", access: ownSession, body: noBody, handle: s.mfaEnrol},
		{method: post, path: "/auth/mfa/confirm", access: ownSession, body: jsonBody[confirmRequest](true), handle: s.mfaConfirm},
	}
	rs = append(rs, s.auditRoutes("/sys/audit", nil, needs(p(roles.Audit, roles.Read)), needs(p(roles.Audit, roles.Export)))...)
	rs = append(rs, []route{
		{method: get, path: "/sys/audit/selfcheck", access: needs(p(roles.Audit, roles.Read)), body: noBody, handle: s.auditSelfCheck},

		{method: get, path: "/operator/raft/peers", access: needs(p(roles.Cluster, roles.Read)), body: noBody, handle: s.listPeers},
		{method: del, path: "/operator/raft/peers/:id", access: needs(p(roles.Cluster, roles.Update)), params: params(pathParam("id", nodeIDType)), body: noBody, handle: s.removePeer},
		{method: post, path: "/operator/raft/transfer-leader", access: needs(p(roles.Cluster, roles.Update)), body: jsonBody[transferRequest](false), handle: s.transferLeader},

		{method: post, path: "/tenants", access: needs(p(roles.Tenants, roles.Create)), body: jsonBody[createTenantRequest](true), handle: s.createTenant},
		{method: get, path: "/tenants", access: needs(p(roles.Tenants, roles.Read)), body: noBody, handle: s.listTenants,
			params: params(query("limit", pageLimit), query("after", tenantIDType), stale)},
		{method: get, path: "/tenants/:id", access: needs(p(roles.Tenants, roles.Read)), params: params(tenantPath, stale), body: noBody, handle: s.getTenant},
		{method: patch, path: "/tenants/:id", access: needs(p(roles.Tenants, roles.Update)), params: params(tenantPath), body: jsonBody[updateTenantRequest](true), handle: s.updateTenant},
		{method: del, path: "/tenants/:id", access: needs(p(roles.Tenants, roles.Delete)), params: params(tenantPath), body: noBody, handle: s.deleteTenant},
		{method: post, path: "/tenants/:id/suspend", access: needs(p(roles.Tenants, roles.Update)), params: params(tenantPath), body: noBody, handle: s.suspendTenant},
		{method: post, path: "/tenants/:id/resume", access: needs(p(roles.Tenants, roles.Update)), params: params(tenantPath), body: noBody, handle: s.resumeTenant},

		{method: get, path: "/tenants/:id/keys", access: needs(p(roles.Keys, roles.Read)), params: params(tenantPath), body: noBody, existing: true, handle: s.getKeys},
		{method: post, path: "/tenants/:id/keys/rotate", access: needs(p(roles.Keys, roles.Update)), params: params(tenantPath), body: noBody, existing: true, handle: s.rotateKeys},
		{method: post, path: "/tenants/:id/keys/purge-cache", access: needs(p(roles.Keys, roles.Update)), params: params(tenantPath), body: noBody, existing: true, handle: s.purgeKeyCache},
		{method: put, path: "/tenants/:id/keys/provider", access: needs(p(roles.Keys, roles.Update)), params: params(tenantPath), body: jsonBody[providerRequest](true), existing: true, handle: s.changeProvider},
	}...)
	user := params(tenantPath, pathParam("uid", userIDType))
	rs = append(rs, []route{
		// Users, their sessions and the tenant's roles: the tenant's
		// people with users:* and roles:* (an API key is no person and
		// manages none), and the operator (who may create only the
		// tenant's first Owner: accounts decides).
		{method: post, path: "/tenants/:id/users", access: needs(p(roles.Users, roles.Create)), params: params(tenantPath), body: jsonBody[client.NewUser](true), existing: true, handle: s.createUser},
		{method: get, path: "/tenants/:id/users", access: needs(p(roles.Users, roles.Read)), params: params(tenantPath), body: noBody, existing: true, handle: s.listUsers},
		{method: get, path: "/tenants/:id/users/:uid", access: needs(p(roles.Users, roles.Read)), params: user, body: noBody, existing: true, handle: s.getUser},
		{method: patch, path: "/tenants/:id/users/:uid", access: needs(p(roles.Users, roles.Update)), params: user, body: jsonBody[client.UserPatch](true), existing: true, handle: s.patchUser},
		{method: post, path: "/tenants/:id/users/:uid/disable", access: needs(p(roles.Users, roles.Update)), params: user, body: noBody, existing: true, handle: s.userAction(s.disableUser)},
		{method: post, path: "/tenants/:id/users/:uid/enable", access: needs(p(roles.Users, roles.Update)), params: user, body: noBody, existing: true, handle: s.userAction(s.enableUser)},
		{method: post, path: "/tenants/:id/users/:uid/reset-mfa", access: needs(p(roles.Users, roles.Update)), params: user, body: noBody, existing: true, handle: s.userAction(s.resetMFA)},
		{method: post, path: "/tenants/:id/users/:uid/unlock", access: needs(p(roles.Users, roles.Update)), params: user, body: noBody, existing: true, handle: s.userAction(s.unlockUser)},
		{method: get, path: "/tenants/:id/users/:uid/sessions", access: needs(p(roles.Users, roles.Read)), params: user, body: noBody, existing: true, handle: s.listSessions},
		{method: del, path: "/tenants/:id/users/:uid/sessions", access: needs(p(roles.Users, roles.Update)), params: user, body: noBody, existing: true, handle: s.revokeSessions},
		{method: del, path: "/tenants/:id/users/:uid/sessions/:session", access: needs(p(roles.Users, roles.Update)), params: append(user, pathParam("session", sessionIDType)), body: noBody, existing: true, handle: s.revokeSession},
		{method: get, path: "/tenants/:id/roles", access: needs(p(roles.Roles, roles.Read)), params: params(tenantPath), body: noBody, existing: true, handle: s.listRoles},
		{method: get, path: "/tenants/:id/roles/:role", access: needs(p(roles.Roles, roles.Read)), params: params(tenantPath, pathParam("role", roleNameType)), body: noBody, existing: true, handle: s.getRole},
		{method: post, path: "/tenants/:id/roles", access: needs(p(roles.Roles, roles.Create)), params: params(tenantPath), body: jsonBody[roles.Custom](true), existing: true, handle: s.createRole},
	}...)
	rs = append(rs, s.auditRoutes("/tenants/:id/audit", []param{tenantPath}, read(roles.Audit), tenantKey(apikeys.PermExport, p(roles.Audit, roles.Export)))...)
	apiKey := params(tenantPath, pathParam("kid", apiKeyIDType))
	coll := params(tenantPath, collectionPath)
	rec := params(tenantPath, collectionPath, recordPath)
	blob := params(tenantPath, blobPath)
	ifMatch := headerParam(fiber.HeaderIfMatch, versionType)
	rs = append(rs, []route{
		{method: post, path: "/tenants/:id/apikeys", access: needs(p(roles.APIKeys, roles.Create)), params: params(tenantPath), body: jsonBody[createAPIKeyRequest](true), existing: true, handle: s.createAPIKey},
		{method: get, path: "/tenants/:id/apikeys", access: needs(p(roles.APIKeys, roles.Read)), params: params(tenantPath), body: noBody, existing: true, handle: s.listAPIKeys},
		{method: get, path: "/tenants/:id/apikeys/:kid", access: needs(p(roles.APIKeys, roles.Read)), params: apiKey, body: noBody, existing: true, handle: s.getAPIKey},
		{method: del, path: "/tenants/:id/apikeys/:kid", access: needs(p(roles.APIKeys, roles.Delete)), params: apiKey, body: noBody, existing: true, handle: s.deleteAPIKey},

		// Break-glass: an operator requests, the tenant's Owner approves
		// (or its policy did in advance) and may revoke; the tenant's
		// principals that read break-glass see every grant.
		{method: post, path: "/tenants/:id/breakglass", access: needs(p(roles.BreakGlass, roles.Create)), params: params(tenantPath), body: jsonBody[breakGlassRequest](true), existing: true, handle: s.requestBreakGlass},
		{method: get, path: "/tenants/:id/breakglass", access: needs(p(roles.BreakGlass, roles.Read)), params: params(tenantPath), body: noBody, existing: true, handle: s.listBreakGlass},
		{method: post, path: "/tenants/:id/breakglass/:gid/approve", access: needs(p(roles.BreakGlass, roles.Update)), params: params(tenantPath, grantPath), body: noBody, existing: true, handle: s.approveBreakGlass},
		{method: post, path: "/tenants/:id/breakglass/:gid/revoke", access: needs(p(roles.BreakGlass, roles.Update)), params: params(tenantPath, grantPath), body: noBody, existing: true, handle: s.revokeBreakGlass},
		// The policy is the tenant's security setting, but settings:update
		// is also the Operator's (the cluster's settings): the policy that
		// lets operators in is changed only by who approves them.
		{method: get, path: "/tenants/:id/breakglass-policy", access: needs(p(roles.BreakGlass, roles.Read)), params: params(tenantPath), body: noBody, existing: true, handle: s.getBreakGlassPolicy},
		{method: put, path: "/tenants/:id/breakglass-policy", access: needs(p(roles.BreakGlass, roles.Update)), params: params(tenantPath), body: jsonBody[breakglass.Policy](true), existing: true, handle: s.putBreakGlassPolicy},

		{method: put, path: "/tenants/:id/collections/:name", access: tenantKey(apikeys.PermAdmin, p(roles.Collections, roles.Update)), params: append(coll, ifMatch),
			body: jsonBody[putCollectionRequest](true), existing: true, handle: s.putCollection},
		{method: get, path: "/tenants/:id/collections", access: read(roles.Collections), params: params(tenantPath, stale), body: noBody, existing: true, handle: s.listCollections},
		{method: get, path: "/tenants/:id/collections/:name", access: read(roles.Collections), params: append(coll, query("version", count1), stale),
			body: noBody, existing: true, handle: s.getCollection},

		{method: post, path: "/tenants/:id/collections/:name/records", access: write(roles.Records, roles.Create), params: coll, body: jsonBody[createRecordRequest](true), existing: true, handle: s.createRecord},
		{method: get, path: "/tenants/:id/collections/:name/records", access: read(roles.Records), body: noBody, existing: true, handle: s.findRecords,
			params: append(coll, query("field", fieldNameType), query("value", nonEmpty), query("attribute", attributeType),
				query("after", recordIDType), query("limit", pageLimit).withDefault(uint64(100))),
			rule: findRecordsRule},
		{method: get, path: "/tenants/:id/collections/:name/records/:rid", access: read(roles.Records), params: append(rec, query("mask", boolType), query("reason", reasonType)), body: noBody, existing: true, handle: s.getRecord},
		{method: put, path: "/tenants/:id/collections/:name/records/:rid", access: write(roles.Records, roles.Update), params: append(rec, ifMatch), body: jsonBody[createRecordRequest](true), existing: true, handle: s.replaceRecord},
		{method: patch, path: "/tenants/:id/collections/:name/records/:rid", access: write(roles.Records, roles.Update), params: append(rec, ifMatch), body: jsonBody[patchRecordRequest](true), existing: true, handle: s.patchRecord},
		{method: del, path: "/tenants/:id/collections/:name/records/:rid", access: remove(roles.Records), params: rec, body: noBody, existing: true, handle: s.deleteRecord},
		{method: get, path: "/tenants/:id/subjects/:sid", access: read(roles.Subjects), params: params(tenantPath, pathParam("sid", subjectType), query("reason", reasonType)), body: noBody, existing: true, handle: s.getSubject},
		// Erasure: a verified erasure request carried out (subjects:delete:
		// the Owner and Compliance), its receipt, the tenant's ledger.
		{method: post, path: "/tenants/:id/requests/:rid/erase", access: needs(p(roles.Subjects, roles.Delete)), params: params(tenantPath, erasureRequestPath), body: noBody, existing: true, handle: s.eraseRequest},
		{method: get, path: "/tenants/:id/requests/:rid/receipt", access: read(roles.Subjects), params: params(tenantPath, erasureRequestPath), body: noBody, existing: true, handle: s.getErasureReceipt},
		{method: get, path: "/tenants/:id/erasures", access: read(roles.Subjects), params: params(tenantPath), body: noBody, existing: true, handle: s.listErasures},

		{method: post, path: "/tenants/:id/blobs", access: write(roles.Blobs, roles.Create), body: streamBody(checkUpload), existing: true, handle: s.uploadBlob, rule: uploadRule,
			params: params(tenantPath, query("subject", subjectType), query("collection", collectionType), query("record", recordIDType),
				repeatedQuery("attribute", attributeType), query("kind", blobKindType))},
		{method: get, path: "/tenants/:id/blobs", access: read(roles.Blobs), body: noBody, existing: true, handle: s.listBlobs,
			params: params(tenantPath, query("subject", subjectType), query("after", blobIDType), query("limit", pageLimit).withDefault(uint64(100)))},
		// The content. Reading it is blobs:read; that the role also
		// reads roles.BlobClass in clear (Role.ReadsBlobContent) is
		// field visibility, not yet enforced for any principal.
		{method: get, path: "/tenants/:id/blobs/:bid", access: read(roles.Blobs), params: blob, body: noBody, existing: true, handle: s.getBlob},
		{method: get, path: "/tenants/:id/blobs/:bid/metadata", access: read(roles.Blobs), params: blob, body: noBody, existing: true, handle: s.blobMetadata},
		{method: del, path: "/tenants/:id/blobs/:bid", access: remove(roles.Blobs), params: blob, body: noBody, existing: true, handle: s.deleteBlob},
	}...)
	rs = append(rs, s.consentRoutes()...)
	rs = append(rs, s.ssoRoutes()...)
	rs = append(rs, s.requestRoutes()...)
	rs = append(rs, s.exportRoutes()...)
	for i := range rs {
		rs[i].access.tenant = !rs[i].access.public && tenantRoute(rs[i].path)
	}
	return rs
}

// auditRoutes are the same for the system chain (prefix /sys/audit) and a
// tenant's; read and export authorize them.
func (s *server) auditRoutes(prefix string, path []param, read, export access) []route {
	get := fiber.MethodGet
	with := func(p ...param) []param { return append(append([]param(nil), path...), p...) }
	from, to := query("from", timeType), query("to", timeType)
	return []route{
		{method: get, path: prefix, access: read, body: noBody, handle: s.listAudit, rule: auditListRule,
			params: with(query("after", count0), query("newest", boolType), query("before", count1), query("limit", auditLimit).withDefault(uint64(100)), from, to,
				query("actor", filterText), query("action", filterText), query("target", filterText), stale)},
		{method: get, path: prefix + "/checkpoint", access: read, params: with(), body: noBody, handle: s.auditCheckpoint},
		{method: get, path: prefix + "/stats", access: read, params: with(query("days", statsDays).withDefault(uint64(30)), stale),
			body: noBody, handle: s.auditStats},
		{method: get, path: prefix + "/proof/inclusion", access: read, params: with(required("index", count0), query("size", count1)),
			body: noBody, handle: s.auditInclusion},
		{method: get, path: prefix + "/proof/consistency", access: read, params: with(required("old", count1), query("new", count1)),
			body: noBody, handle: s.auditConsistency},
		{method: get, path: prefix + "/export", access: export, params: with(from, to), body: noBody, handle: s.auditExport, rule: auditTimeRule},
	}
}

// auditTimeRule: to is not before from.
func auditTimeRule(in *input) error {
	if in.has("from") && in.has("to") && in.time("to").Before(in.time("from")) {
		return invalidParam("to", "must not be before from")
	}
	return nil
}

// auditListRule: the cursor matches the order (after oldest first,
// before newest first), and the time range is one.
func auditListRule(in *input) error {
	newest := in.flag("newest")
	switch {
	case newest && in.has("after"):
		return invalidParam("after", "pages oldest first; with newest=true use before")
	case !newest && in.has("before"):
		return invalidParam("before", "pages newest first: only with newest=true")
	}
	return auditTimeRule(in)
}

// uploadRule: no attribute is named twice.
func uploadRule(in *input) error {
	_, err := attributesOf(in.strs("attribute"))
	return err
}

// findRecordsRule: field and value go together, and attribute is not
// combined with field.
func findRecordsRule(in *input) error {
	if in.has("field") != in.has("value") {
		return invalidParam("field", "and value go together (value is JSON, such as \"jane@example.com\")")
	}
	if in.has("attribute") && in.has("field") {
		return invalidParam("attribute", "must be name:value, and not combined with field")
	}
	return nil
}

// serve is the one handler of every route: it takes a token of the
// request's source address (before anything else, authentication
// included, so that a flood of bad tokens is limited too), authenticates
// the request (nothing of its body is read before) and takes a token of
// its principal, bounds and reads its body,
// validates its parameters and decodes its body as the route declares
// them, checks the path's tenant exists where the route needs it, and
// only then calls the route's handler.
func (s *server) serve(rt *route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := s.limit.source(c); err != nil {
			return err
		}
		who, err := s.authorize(c, rt.access)
		if err != nil {
			return err
		}
		if rt.body.kind != bodyStream {
			if err := s.boundBody(c); err != nil {
				return err
			}
		}
		values, err := rt.parseParams(c)
		if err != nil {
			return err
		}
		in := &input{rt: rt, who: who, values: values}
		if rt.rule != nil {
			if err := rt.rule(in); err != nil {
				return err
			}
		}
		if rt.body.kind == bodyStream {
			if err := rt.body.check(c); err != nil {
				return err
			}
		} else {
			in.body = rt.body.new()
			if err := decodeBody(c, in.body, rt.body.required); err != nil {
				return err
			}
		}
		if rt.existing {
			if in.tenant, err = s.existingTenant(c, who, in.str("id")); err != nil {
				return err
			}
		}
		return rt.handle(c, in)
	}
}

// consentRoutes are purposes, blob kinds and subjects' consent
// (consent.go). Reading is consent:read (an old read key's); recording a
// subject's choice consent:create (a write key's: the applications that
// talk to subjects record it); defining purposes and blob kinds is
// policy, consent:update (an admin key's, as schemas are).
func (s *server) consentRoutes() []route {
	get, post, put := fiber.MethodGet, fiber.MethodPost, fiber.MethodPut
	p := roles.P
	read := tenantKey(apikeys.PermRead, p(roles.Consent, roles.Read))
	record := tenantKey(apikeys.PermWrite, p(roles.Consent, roles.Create))
	policy := tenantKey(apikeys.PermAdmin, p(roles.Consent, roles.Update))
	purpose := params(tenantPath, pathParam("pid", purposeIDType))
	subject := params(tenantPath, pathParam("sid", subjectType))
	return []route{
		{method: get, path: "/tenants/:id/purposes", access: read, params: params(tenantPath), body: noBody, existing: true, handle: s.listPurposes},
		{method: post, path: "/tenants/:id/purposes", access: policy, params: params(tenantPath), body: jsonBody[purposeRequest](true), existing: true, handle: s.createPurpose},
		{method: get, path: "/tenants/:id/purposes/:pid", access: read, params: purpose, body: noBody, existing: true, handle: s.getPurpose},
		{method: put, path: "/tenants/:id/purposes/:pid", access: policy, params: append(purpose, headerParam(fiber.HeaderIfMatch, versionType)),
			body: jsonBody[purposeRequest](true), existing: true, handle: s.updatePurpose},
		{method: get, path: "/tenants/:id/purposes/:pid/versions", access: read, params: purpose, body: noBody, existing: true, handle: s.purposeVersions},
		{method: get, path: "/tenants/:id/blob-kinds", access: read, params: params(tenantPath), body: noBody, existing: true, handle: s.listBlobKinds},
		{method: put, path: "/tenants/:id/blob-kinds/:kind", access: policy, params: params(tenantPath, pathParam("kind", blobKindType)),
			body: jsonBody[blobKindRequest](true), existing: true, handle: s.putBlobKind},
		{method: get, path: "/tenants/:id/consent-stats", access: read, params: params(tenantPath, query("days", consentStatsDays).withDefault(uint64(30))),
			body: noBody, existing: true, handle: s.consentStats},
		{method: get, path: "/tenants/:id/consent/:sid", access: read, params: append(subject, query("at", timeType)), body: noBody, existing: true, handle: s.consentState},
		{method: get, path: "/tenants/:id/consent/:sid/history", access: read, params: subject, body: noBody, existing: true, handle: s.consentHistory},
		{method: post, path: "/tenants/:id/consent/:sid/grant", access: record, params: subject, body: jsonBody[consentRequest](true), existing: true, handle: s.grantConsent},
		{method: post, path: "/tenants/:id/consent/:sid/withdraw", access: record, params: subject, body: jsonBody[consentRequest](true), existing: true, handle: s.withdrawConsent},
		{method: post, path: "/tenants/:id/consent/:sid/flags", access: record, params: subject, body: jsonBody[flagRequest](true), existing: true, handle: s.setConsentFlag},
	}
}
