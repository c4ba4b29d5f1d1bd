// Package api is the node's HTTP API (fiber v2). It is a thin adapter: it
// authenticates, validates and decodes the request, calls one service
// method with its own deadline, and encodes the result or the error. It
// depends only on small interfaces it defines ([Cluster], [Tenants], [Keys],
// [Auth], ...), so the services know nothing of HTTP and *fiber.Ctx never
// travels below a handler. A request either fully succeeds or changes
// nothing, because each service call builds exactly one transaction.
//
// [NewApp] makes the HTTP app (fiber's configuration, the request frame,
// panic recovery, problem responses) and [Register] adds the /v1 routes to
// a router it is given, so that other packages (a UI) register their own
// routes on the same app; [New] is both. [NewAppWith] adds an [Observer]
// told of every request by its route's template (the node's metrics), and
// the request log names the template and the tenant, never the path,
// which names records and subjects. GET /v1/sys/metrics serves the
// Prometheus registry in Deps.Metrics (text format 0.0.4). Each route is declared
// once in the route table (routes.go): its method and path, who may call
// it, its path, query and header parameters with their types, and its
// body type. One wrapper (server.serve) authenticates the request, bounds
// its body, validates every parameter against the declaration and
// decodes the body before the handler runs; handlers receive the parsed
// values. A test compares the declarations with openapi.json.
//
// Authentication is one step (authn): the operator token or a tenant's API
// key becomes the request's audit.Principal — its kind, id, tenant and
// role (or an old key's permissions), and the request's id and source —
// built once, kept on the request, checked by the route's access and
// handed whole to every service the request calls, which records it in
// its audit entries.
//
// Authorization is one step (authorize), on the permission table of
// appliance/identity/roles, the same for every principal: each route
// declares, once, the permission it needs (resource and action;
// [Operations] lists them), and a principal is admitted iff its role
// holds it. An API key's role is the built-in tenant role it was created
// with, or, for a key created with the old permissions (read, write,
// delete, export, admin), the role roles.FromAPIKey maps them onto; the
// root operator token's (and operator users') is Operator — computed
// once, when the credential is authenticated. Routes under /tenants/:id
// admit a tenant's principals of that tenant only (another tenant's get
// the 404 of a missing tenant); the others act on the cluster and admit
// no tenant principal. The Operator role holds no read of records, blobs
// or subjects: operators read a tenant's data only under an active
// break-glass grant the tenant approved (appliance/identity/breakglass),
// and create a tenant's first principals only while it has no Owner user
// (bootstrap).
//
// # Suspended tenants
//
// Suspending a tenant keeps its data and its keys but stops its
// principals (its API keys; later its users): authorize answers them 403
// tenant-suspended on every route they could otherwise reach, before
// anything of the request is read or done. Every such route is a route of
// the tenant's data — collections, records, subjects, blobs, and the
// tenant's own audit chain: the chain records what was done with the
// tenant's data (pseudonymous subjects, record ids, its keys' activity),
// and suspension stops the tenant's principals wholesale, so reading it is
// a data route too; an auditor who needs the chain meanwhile reads and
// exports it through the operator, whose routes all keep working (the
// tenant, its key status and rotation, its API keys, its chain). The rule
// is one check in authorize, not in handlers, so a route added later that
// admits tenant principals is covered without saying so; a route a
// suspended tenant's principal must still reach (a user's logout) would
// have to be declared as such in its access. The state comes from the
// read that authenticated the key (the key lives in the tenant's bucket,
// and the tenant's registry entry is read in the same linearizable
// snapshot): no second read, and a suspension or resumption applies to
// the next request on every node. A suite (suspend_test.go) walks every
// operation of openapi.json.
//
// # Attribute scopes
//
// A principal may carry attribute scopes (audit.Principal.Scopes: an API
// key created with scopes; a user's role binding): property → villa-a. Its
// requests see, find, list, count and download only the records and blobs
// whose attributes match (every scoped name present, with one of its
// values; an item lacking the attribute is outside). That is not decided
// here: the records and blobs services read and write through the tenant's
// store handle restricted to the principal's scopes (internal/tenancy),
// so every route — get, find by index or attribute, list, the subject
// view, blob content, metadata and listings — answers for an item outside
// the scope exactly as for a missing one (the same 404 problem), and a
// write that would create an item outside the scope, or move one out of
// it, is 403 forbidden. A tenant's audit chain is refused to a scoped
// principal (403 forbidden, in chainOf, the one resolver of the audit
// routes' chain): its checkpoints, proofs and exports cover the whole
// chain, and many entries (searches, subject lookups, key and API-key
// events) name no item a scope could admit, so no filtered view of it
// would be both verifiable and confined; an unscoped principal of the
// same role reads it.
//
// # Routes
//
//	GET    /v1/sys/health                     no token; 200, or 503 when no leader is known or the
//	                                          node is sealed ({"status":"sealed","sealed":true})
//	GET    /v1/sys/status                     node, raft, version and keyring (sealed, cached_keys)
//	GET    /v1/sys/metrics                    Prometheus metrics of this node (cluster:read)
//	GET    /v1/operator/raft/peers            {"peers":[...]}
//	DELETE /v1/operator/raft/peers/{id}       204; idempotent; 409 for the last voter
//	POST   /v1/operator/raft/transfer-leader  {"id":"n2"} (id optional); 202
//	POST   /v1/tenants                        201 with Location
//	GET    /v1/tenants?limit=&after=&stale=   {"tenants":[...],"next":"..."}
//	GET    /v1/tenants/{id}?stale=
//	PATCH  /v1/tenants/{id}                   {"display_name":"..."}
//	POST   /v1/tenants/{id}/suspend           200; idempotent
//	POST   /v1/tenants/{id}/resume            200; idempotent
//	DELETE /v1/tenants/{id}                   204
//	GET    /v1/tenants/{id}/keys              key status: provider, KEKs, rewrap progress
//	POST   /v1/tenants/{id}/keys/rotate       202: new KEK; data keys rewrapped in the background
//	POST   /v1/tenants/{id}/keys/purge-cache  200 {"purged":n}: every node drops the tenant's keys
//	PUT    /v1/tenants/{id}/keys/provider     {"key_provider":"vault","vault":{...}}: move the root
//	GET    /v1/sys/audit-key                  no token; the checkpoint verifier key (text)
//	POST   /v1/sys/root-token/revoke          the root operator token authenticates nothing more
//	POST   /v1/sys/operators                  an operator user {username, password}: role Operator, MFA mandatory
//	GET    /v1/sys/operators[/{uid}]          operator users (usernames opened; 503 on a sealed node)
//	POST   /v1/sys/operators/{uid}/disable|enable|reset-mfa|unlock   in the system chain
//	POST   /v1/sys/root-token/generate/attempt  no token; a nonce sealed to the seal recipients
//	POST   /v1/sys/root-token/generate        no token; {"nonce"} opened by the seal identity: a new root token
//	POST   /v1/tenants/{id}/breakglass        an operator's request {reason, duration_seconds}
//	GET    /v1/tenants/{id}/breakglass        the tenant's grants and their state
//	POST   /v1/tenants/{id}/breakglass/{gid}/approve|revoke   the tenant's Owner
//	GET|PUT /v1/tenants/{id}/breakglass-policy  auto-approval and the longest grant
//	GET    /v1/sys/audit/selfcheck            this node's latest audit self-check
//	GET    {chain}?after=&limit=&from=&to=&actor=&action=&target=   {"entries":[{seq,entry,raw}],"next":N}
//	GET    {chain}/checkpoint                 the latest signed checkpoint (text)
//	GET    {chain}/proof/inclusion?index=&size=     {index,size,root,entry,proof,checkpoint}
//	GET    {chain}/proof/consistency?old=&new=      {old,size,root,proof,checkpoint}
//	GET    {chain}/export?from=&to=           a verifiable bundle (application/gzip)
//	GET    /v1/openapi.json                   no token; the OpenAPI 3.0.3 description of every route
//
// where {chain} is /v1/sys/audit (the system chain) or
// /v1/tenants/{id}/audit (a tenant's; it outlives the tenant). A size of 0
// or none means the latest checkpoint's, so proofs verify against a signed
// tree head. Every mutating route writes an audit entry in the transaction
// of its change (membership changes: before the change); a test walks the
// route table to keep it so.
//
// Tenant data (operator token, or an API key of that tenant whose role
// holds the route's permission; the old permission that admits an old
// key is named; see openapi.json for bodies): API keys (operator only),
// collections (PUT: admin; GET: read), records and subjects
// (/v1/tenants/{id}/collections/{c}/records[/{rid}], /subjects/{s}), and
// blobs:
//
//	POST   /v1/tenants/{id}/blobs?subject=&collection=&record=   write; raw body with
//	                                          Content-Length (411 without) and the blob's
//	                                          Content-Type; optional Custos-Content-SHA256; 201
//	GET    /v1/tenants/{id}/blobs?subject=&after=&limit=         read; {"blobs":[...],"next":"..."}
//	GET    /v1/tenants/{id}/blobs/{bid}       read; the content (one Range: 206, or 416); audited
//	HEAD   /v1/tenants/{id}/blobs/{bid}       read; the headers only; not audited
//	GET    /v1/tenants/{id}/blobs/{bid}/metadata   read; the blob's metadata
//	DELETE /v1/tenants/{id}/blobs/{bid}       delete; 204
//
// Single sign-on (sso.go; appliance/identity/sso): a tenant's settings
// (settings:update, the Owner's; the operator's), and the sign-in, public:
//
//	PUT    /v1/tenants/{id}/sso               OpenID Connect settings; the client secret sealed, never shown
//	GET    /v1/tenants/{id}/sso               the settings (client_secret_set, not the secret)
//	DELETE /v1/tenants/{id}/sso               204
//	POST   /v1/tenants/{id}/sso/test          discovery afresh, and whether the secret opens
//	GET    /v1/auth/oidc/start?tenant=&redirect_uri=&redirect=   the authorization URL and
//	                                          binding (JSON), or 302 with the binding in a cookie
//	GET    /v1/auth/oidc/callback?state=&code=   the provider's redirect (binding: the cookie);
//	                                          the session, as a login answers it
//	POST   /v1/auth/oidc/callback             {"state","code","binding"}: relayed by the CLI
//
// Data-subject requests (requests.go; appliance/privacy/requests):
// recorded with requests:create (whoever hears one), handled with
// requests:read and requests:update (Compliance, the Owner):
//
//	POST   /v1/tenants/{id}/requests          {kind, subject, received?, attributes?, rectification?}; 201;
//	                                          409 duplicate-request
//	GET    /v1/tenants/{id}/requests?status=&kind=&after=&limit=   {"requests":[...],"next":"..."};
//	                                          status open, overdue, due-soon or a status
//	GET    /v1/tenants/{id}/requests-summary  counts by status; open on track, due soon, overdue
//	GET    /v1/tenants/{id}/requests/{rid}    the request, its private part opened
//	POST   /v1/tenants/{id}/requests/{rid}/transition   {to, reason?, extension?, evidence?, note?};
//	                                          409 invalid-transition
//	POST   /v1/tenants/{id}/requests/{rid}/rectify      applies the patch, completes the request
//
// The upload is the one route whose body is streamed to its handler (the
// server runs with StreamRequestBody); every other route's body is read up
// to Options.BodyLimit by boundBody, once the token is accepted, and
// refused beyond it.
//
// POST /v1/tenants takes "key_provider" ("age", the default, or "vault")
// and, for Vault, "vault": {address, mount, key, auth_method (token or
// approle), auth_mount, ca_cert_pem, token, role_id, secret_id}. The
// credentials are stored only encrypted and never returned or logged.
//
// Every route but the health check requires "Authorization: Bearer
// <operator token>". Reads are linearizable unless stale=true is given.
// Every response carries X-Request-Id: the client's, when it is 1 to 128
// characters of [A-Za-z0-9._~:+/=-], otherwise a generated one.
//
// # Errors
//
// Every error is an RFC 9457 application/problem+json body with type
// https://custos.dev/problems/<slug>, title, status, detail, instance (the
// request path) and request_id; problems about fields add
// "errors":[{"field","reason"}]. Details are written by this package and
// never carry internal error text; the cause of a 500 is logged with the
// request id instead. The slugs are stable:
//
//	slug                    status  when
//	bad-request             400     malformed JSON, a body that is not one JSON object, trailing data,
//	                                a wrong JSON type, a duplicate (at any depth) or null field,
//	                                invalid UTF-8, a bad escape or lone surrogate (named by JSON path),
//	                                a missing required body, a malformed If-Match; other 4xx protocol
//	                                errors of the HTTP server
//	unknown-field           400     a body field the endpoint does not accept (names match exactly)
//	validation              400     an invalid query parameter (unknown, repeated, empty, or a value its
//	                                type refuses: limit outside 1..500, a boolean other than true or
//	                                false, a malformed id), the same on every route
//	validation              422     a well-formed body with an invalid value (bad id slug, display
//	                                name too long or with control characters, unknown peer)
//	unsupported-media-type  415     a body not declared application/json (charset utf-8), or compressed
//	payload-too-large       413     a body over Options.BodyLimit, or a blob over its limit
//	length-required         411     a blob upload without Content-Length (chunked)
//	range-not-satisfiable   416     a Range outside the blob (with Content-Range: bytes */size)
//	integrity-error         500     a stored value or blob chunk fails its authentication (altered
//	                                or moved): never served
//	unauthorized            401     a missing or invalid bearer token (with WWW-Authenticate: Bearer);
//	                                a failed login (unknown user, wrong password: one answer), a
//	                                wrong or used second-factor code, a refresh token not valid
//	mfa-required            401     a login of a user with a second factor, without a code
//	mfa-enrolment-required  403     a session whose role requires MFA, before its user enrols
//	forbidden               403     an API key on an operator route, or without the route's permission;
//	                                a write of an item outside the principal's attribute scope
//	withheld                403     the principal's role does not read what was asked: a blob's content
//	                                (roles.BlobClass not in clear), a find by a field whose
//	                                classification it does not read in clear
//	tenant-suspended        403     a principal of a suspended tenant, on any route of its tenant's data
//	consent-required        403     a write (or read) of a subject's record or blob whose collection or
//	                                blob kind requires a purpose the subject's consent does not allow:
//	                                the detail names the purpose and why (appliance/privacy/consent)
//	not-found               404     no such route, no such tenant, or a path id that is not well formed
//	method-not-allowed      405     a known path with another method (with Allow)
//	conflict                409     the tenant exists, a concurrent change won, no leadership target,
//	                                or removing the cluster's last voter
//	duplicate-request       409     the subject has an open data-subject request of the same kind
//	                                (the detail names it)
//	invalid-transition      409     a data-subject request's state does not allow the step (nothing
//	                                changed): the detail names from, to and why
//	precondition-failed     412     a record or collection is not at the version If-Match names
//	region-mismatch         422     a tenant requested in another region than the cluster's
//	rate-limited            429     over the node's request rate for the source address (checked on
//	                                every route, before authentication; IPv6 by its /64) or for the
//	                                principal (an API key or the operator, across its addresses),
//	                                or failed logins of the account or the source (login backoff);
//	                                Retry-After gives the whole seconds (at least 1) until a request
//	                                would be admitted
//	sso-refused             401     a single sign-on callback refused: the detail names the reason
//	                                (sso.Reason*: bad-state, bad-nonce, bad-id-token, no-role, ...)
//	sso-provider-unavailable 502    the tenant's identity provider could not be reached or answered
//	                                what is not OpenID Connect (discovery, keys, tokens)
//	unavailable             503     no leader, leadership lost, timeout, shutdown (with Retry-After: 1)
//	audit-unavailable       503     the change's audit entry could not be written (nothing was
//	                                changed), or this node cannot sign checkpoints (sealed)
//	key-unavailable         503     the tenant's root key cannot be used: the node is sealed, or the
//	                                tenant's Vault refused, is sealed or unreachable (Retry-After: 5);
//	                                the detail names the tenant, never the provider's own message
//	internal                500     anything else; detail is "internal error"
//
// The rule for 400 versus 422: a request whose syntax is wrong — its JSON,
// its media type, or its URL, query parameters included — is 400; a
// syntactically correct body that asks for something invalid is 422.
// Malformed path ids are 404 rather than 400: an id that cannot be valid
// names nothing, exactly like a well-formed id that does not exist, so the
// answer does not depend on how wrong the id is.
//
// Checks run in this order: route and method, token, body size, path id,
// query, body, then the service. Unknown routes and wrong methods are
// therefore answered without a token; the route table is public. Nothing
// of a body is read before the token is accepted (the HTTP server parses
// no multipart form on its own either: such a body is bytes like any
// other), and a connection whose request body was left unread is closed
// after the answer. One request fiber answers itself, in plain text: a
// method name that is not an HTTP method at all (400).
//
// # fiber
//
// fiber reuses request memory, so the app runs with Immutable. fiber does
// not cancel a request when its client disconnects, so every service call
// gets a context.WithTimeout of Options.RequestTimeout. fiber's default
// error handler would send err.Error() to clients; ours maps errors with
// one function (problemFor) and the recover middleware turns panics into
// 500 problems. Bodies are read raw: fiber's c.Body() would decompress a
// Content-Encoding without limit.
package api
