package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/custos/custos/appliance/audit"
)

// ---- the node and the cluster ----

// Status is the node's and the cluster's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.Do(ctx, "GET", "/v1/sys/status", nil, &st)
	return st, err
}

// Health answers without a token; a node without a leader or sealed
// answers 503, an *Error.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.Do(ctx, "GET", "/v1/sys/health", nil, &h)
	return h, err
}

// Peers lists the Raft configuration.
func (c *Client) Peers(ctx context.Context) (PeerList, error) {
	var out PeerList
	err := c.Do(ctx, "GET", "/v1/operator/raft/peers", nil, &out)
	return out, err
}

// RemovePeer removes a peer (removing an absent one is no error).
func (c *Client) RemovePeer(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", "/v1/operator/raft/peers/"+pathEscape(id), nil, nil)
}

// TransferLeader hands leadership to the peer id, or to any if id is "".
func (c *Client) TransferLeader(ctx context.Context, id string) error {
	body := map[string]string{}
	if id != "" {
		body["id"] = id
	}
	return c.Do(ctx, "POST", "/v1/operator/raft/transfer-leader", body, nil)
}

// ---- tenants and their keys ----

// CreateTenant registers a tenant and creates its key hierarchy.
func (c *Client) CreateTenant(ctx context.Context, t NewTenant) (Tenant, error) {
	var out Tenant
	err := c.Do(ctx, "POST", "/v1/tenants", t, &out)
	return out, err
}

// Tenants is one page of at most limit tenants after the id after ("" =
// from the first).
func (c *Client) Tenants(ctx context.Context, limit int, after string) (TenantPage, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	var page TenantPage
	err := c.Do(ctx, "GET", "/v1/tenants?"+q.Encode(), nil, &page)
	return page, err
}

// Tenant reads one tenant.
func (c *Client) Tenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	err := c.Do(ctx, "GET", tenantPath(id), nil, &t)
	return t, err
}

// UpdateTenant changes the fields of a tenant that p sets.
func (c *Client) UpdateTenant(ctx context.Context, id string, p TenantPatch) (Tenant, error) {
	var t Tenant
	err := c.Do(ctx, "PATCH", tenantPath(id), p, &t)
	return t, err
}

// DeleteTenant deletes a tenant and all of its data.
func (c *Client) DeleteTenant(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", tenantPath(id), nil, nil)
}

// SuspendTenant suspends a tenant: its data and keys are kept, and its
// principals are refused (403 tenant-suspended) on every route of its
// data until it is resumed.
func (c *Client) SuspendTenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	err := c.Do(ctx, "POST", tenantPath(id)+"/suspend", struct{}{}, &t)
	return t, err
}

// ResumeTenant resumes a suspended tenant: its principals are admitted
// again from the next request on.
func (c *Client) ResumeTenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	err := c.Do(ctx, "POST", tenantPath(id)+"/resume", struct{}{}, &t)
	return t, err
}

// KeyStatus shows a tenant's keys and the progress of a rewrap.
func (c *Client) KeyStatus(ctx context.Context, tenant string) (KeyStatus, error) {
	var st KeyStatus
	err := c.Do(ctx, "GET", tenantPath(tenant)+"/keys", nil, &st)
	return st, err
}

// RotateKeys adds a KEK version and makes it current; data keys are
// rewrapped in the background.
func (c *Client) RotateKeys(ctx context.Context, tenant string) (Rotation, error) {
	var r Rotation
	err := c.Do(ctx, "POST", tenantPath(tenant)+"/keys/rotate", nil, &r)
	return r, err
}

// PurgeKeyCache drops the tenant's unwrapped keys from memory on every
// node and returns how many this node dropped.
func (c *Client) PurgeKeyCache(ctx context.Context, tenant string) (int, error) {
	var out struct {
		Purged int `json:"purged"`
	}
	err := c.Do(ctx, "POST", tenantPath(tenant)+"/keys/purge-cache", nil, &out)
	return out.Purged, err
}

// SetKeyProvider moves a tenant's root to another provider, or gives a
// Vault tenant new credentials.
func (c *Client) SetKeyProvider(ctx context.Context, tenant string, p KeyProvider) (KeyStatus, error) {
	var st KeyStatus
	err := c.Do(ctx, "PUT", tenantPath(tenant)+"/keys/provider", p, &st)
	return st, err
}

// CreateAPIKey creates an API key; the answer alone carries its token.
// Without a role, the permissions are sent even when empty, so that the
// server names what is missing.
func (c *Client) CreateAPIKey(ctx context.Context, tenant string, k NewAPIKey) (APIKey, error) {
	var body any = k
	if k.Role == "" && len(k.Permissions) == 0 {
		body = struct {
			NewAPIKey
			Permissions []string `json:"permissions"`
		}{k, []string{}}
	}
	var out APIKey
	err := c.Do(ctx, "POST", tenantPath(tenant)+"/apikeys", body, &out)
	return out, err
}

// APIKeys lists a tenant's API keys (without secrets).
func (c *Client) APIKeys(ctx context.Context, tenant string) (APIKeyList, error) {
	var out APIKeyList
	err := c.Do(ctx, "GET", tenantPath(tenant)+"/apikeys", nil, &out)
	return out, err
}

// DeleteAPIKey revokes an API key at once.
func (c *Client) DeleteAPIKey(ctx context.Context, tenant, id string) error {
	return c.Do(ctx, "DELETE", tenantPath(tenant)+"/apikeys/"+pathEscape(id), nil, nil)
}

// ---- the audit log ----

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Actor, Action, Target string
	From, To              string // RFC 3339
	Limit                 int    // entries per page, 1..1000
	After                 uint64 // the cursor: entries after this sequence number
	// Newest lists newest first; Before is then the cursor: entries
	// below this sequence number (0: from the last).
	Newest bool
	Before uint64
}

// AuditPage is one page of audit entries; Next is the cursor of the next
// page (0 after the last).
type AuditPage struct {
	Entries []audit.Item `json:"entries"`
	Next    uint64       `json:"next"`
}

// Audit lists entries of the system chain (tenant "") or of a tenant's.
func (c *Client) Audit(ctx context.Context, tenant string, f AuditFilter) (AuditPage, error) {
	q := url.Values{"limit": {strconv.Itoa(f.Limit)}}
	for k, v := range map[string]string{"actor": f.Actor, "action": f.Action, "target": f.Target, "from": f.From, "to": f.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.After > 0 {
		q.Set("after", strconv.FormatUint(f.After, 10))
	}
	if f.Newest {
		q.Set("newest", "true")
		if f.Before > 0 {
			q.Set("before", strconv.FormatUint(f.Before, 10))
		}
	}
	var page AuditPage
	err := c.Do(ctx, "GET", auditPath(tenant)+"?"+q.Encode(), nil, &page)
	return page, err
}

// AuditKey writes the cluster's audit checkpoint key to w.
func (c *Client) AuditKey(ctx context.Context, w io.Writer) error {
	return c.Download(ctx, "/v1/sys/audit-key", w)
}

// AuditCheckpoint writes a chain's latest signed checkpoint to w.
func (c *Client) AuditCheckpoint(ctx context.Context, tenant string, w io.Writer) error {
	return c.Download(ctx, auditPath(tenant)+"/checkpoint", w)
}

// AuditExport writes a chain as a verifiable bundle (tar.gz) to w, from
// the first entry at or after from to the first checkpoint after to
// (RFC 3339; "" = from the start, to the end).
func (c *Client) AuditExport(ctx context.Context, tenant, from, to string, w io.Writer) error {
	q := url.Values{}
	if from != "" {
		q.Set("from", from)
	}
	if to != "" {
		q.Set("to", to)
	}
	path := auditPath(tenant) + "/export"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.Download(ctx, path, w)
}

// AuditSelfCheck is the node's latest audit self-check.
func (c *Client) AuditSelfCheck(ctx context.Context) (audit.CheckReport, error) {
	var rep audit.CheckReport
	err := c.Do(ctx, "GET", "/v1/sys/audit/selfcheck", nil, &rep)
	return rep, err
}

// ---- collections, records and blobs ----

// PutCollection defines a collection, or changes it (a new version);
// schema is its JSON body (fields, retention_days, subject_required).
func (c *Client) PutCollection(ctx context.Context, tenant, name string, schema any) (Collection, error) {
	var out Collection
	err := c.Do(ctx, "PUT", collectionPath(tenant, name), schema, &out)
	return out, err
}

// PutCollectionIf is PutCollection made only if the collection is at
// version ifMatch (0: whatever its version); another version is a 412
// *Error.
func (c *Client) PutCollectionIf(ctx context.Context, tenant, name string, schema any, ifMatch uint64) (Collection, error) {
	var hs []Header
	if ifMatch > 0 {
		hs = append(hs, Header{Name: "If-Match", Value: `"` + strconv.FormatUint(ifMatch, 10) + `"`})
	}
	var out Collection
	err := c.doWith(ctx, "PUT", collectionPath(tenant, name), schema, &out, hs...)
	return out, err
}

// Collection reads a collection's schema.
func (c *Client) Collection(ctx context.Context, tenant, name string) (Collection, error) {
	var out Collection
	err := c.Do(ctx, "GET", collectionPath(tenant, name), nil, &out)
	return out, err
}

// Collections lists a tenant's collections.
func (c *Client) Collections(ctx context.Context, tenant string) (CollectionList, error) {
	var out CollectionList
	err := c.Do(ctx, "GET", tenantPath(tenant)+"/collections", nil, &out)
	return out, err
}

// CreateRecord creates a record ({id?, subject?, attributes?, fields}) and
// returns the answer as JSON values.
func (c *Client) CreateRecord(ctx context.Context, tenant, collection string, record any) (map[string]any, error) {
	var out map[string]any
	err := c.Do(ctx, "POST", recordsPath(tenant, collection), record, &out)
	return out, err
}

// Record reads a record, decrypted; mask masks its personal fields.
func (c *Client) Record(ctx context.Context, tenant, collection, id string, mask bool) (map[string]any, error) {
	path := recordsPath(tenant, collection) + "/" + pathEscape(id)
	if mask {
		path += "?mask=true"
	}
	var out map[string]any
	err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}

// RecordRead says how to read a record: masked, and why (the reason the
// read's audit entry records).
type RecordRead struct {
	// Mask masks its pii and sensitive fields (never unmasks).
	Mask bool
	// Reason is why the person reads (1 to 200 characters, no control
	// characters; "" = none given): recorded in the read's audit entry.
	Reason string
}

// ReadRecord reads a record as o says.
func (c *Client) ReadRecord(ctx context.Context, tenant, collection, id string, o RecordRead) (Record, error) {
	q := url.Values{}
	if o.Mask {
		q.Set("mask", "true")
	}
	if o.Reason != "" {
		q.Set("reason", o.Reason)
	}
	path := recordsPath(tenant, collection) + "/" + pathEscape(id)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out Record
	err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}

// RecordPage is at most limit ids of a collection's records after the id
// after ("" = from the first), in id order; Next continues.
func (c *Client) RecordPage(ctx context.Context, tenant, collection string, limit int, after string) (RecordIDs, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	var out RecordIDs
	err := c.Do(ctx, "GET", recordsPath(tenant, collection)+"?"+q.Encode(), nil, &out)
	return out, err
}

// Subject is what the tenant holds about a subject (its records by
// collection and id, its blobs); reason ("" = none) is recorded in the
// lookup's audit entries. A subject with nothing held is a 404 *Error.
func (c *Client) Subject(ctx context.Context, tenant, subject, reason string) (SubjectHeld, error) {
	path := tenantPath(tenant) + "/subjects/" + pathEscape(subject)
	if reason != "" {
		path += "?" + url.Values{"reason": {reason}}.Encode()
	}
	var out SubjectHeld
	err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}

// DeleteRecord deletes a record.
func (c *Client) DeleteRecord(ctx context.Context, tenant, collection, id string) error {
	return c.Do(ctx, "DELETE", recordsPath(tenant, collection)+"/"+pathEscape(id), nil, nil)
}

// FindRecords lists at most limit ids of records whose blind-indexed field
// equals value (a JSON value).
func (c *Client) FindRecords(ctx context.Context, tenant, collection, field, value string, limit int) (RecordIDs, error) {
	q := url.Values{"field": {field}, "value": {value}, "limit": {strconv.Itoa(limit)}}
	var out RecordIDs
	err := c.Do(ctx, "GET", recordsPath(tenant, collection)+"?"+q.Encode(), nil, &out)
	return out, err
}

// BlobUpload is one blob to upload.
type BlobUpload struct {
	// Body holds exactly Size bytes.
	Body        io.Reader
	Size        int64
	ContentType string
	// SHA256 is the content's digest; the server checks what it received
	// against it.
	SHA256 []byte
	// Subject, and Collection with Record, are what the blob belongs to
	// (all optional).
	Subject, Collection, Record string
	// Kind is the tenant's blob kind (optional): the purposes it requires
	// of the subject are checked (403 consent-required).
	Kind string
	// Attributes label the blob (none: a blob linked to a record
	// inherits the record's).
	Attributes map[string]string
}

// UploadBlob streams a new blob (no timeout but ctx's).
func (c *Client) UploadBlob(ctx context.Context, tenant string, u BlobUpload) (Blob, error) {
	q := url.Values{}
	if u.Subject != "" {
		q.Set("subject", u.Subject)
	}
	if u.Collection != "" || u.Record != "" {
		q.Set("collection", u.Collection)
		q.Set("record", u.Record)
	}
	for _, name := range slices.Sorted(maps.Keys(u.Attributes)) {
		q.Add("attribute", name+":"+u.Attributes[name])
	}
	if u.Kind != "" {
		q.Set("kind", u.Kind)
	}
	path := blobsPath(tenant)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	body := u.Body
	if u.Size == 0 {
		body = http.NoBody // else net/http would send it chunked
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.addr+path, body)
	if err != nil {
		return Blob{}, err
	}
	req.ContentLength = u.Size
	req.Header.Set("Content-Type", u.ContentType)
	req.Header.Set("Custos-Content-SHA256", hex.EncodeToString(u.SHA256))
	req.Header.Set("Accept", "application/json")
	resp, err := c.do(req)
	if err != nil {
		return Blob{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Blob{}, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		return Blob{}, answerError("POST", path, resp.StatusCode, data)
	}
	var b Blob
	if err := json.Unmarshal(data, &b); err != nil {
		return Blob{}, fmt.Errorf("decode answer: %w", err)
	}
	return b, nil
}

// DownloadBlob streams a blob's content into w (audited on the server
// before the first byte).
func (c *Client) DownloadBlob(ctx context.Context, tenant, id string, w io.Writer) error {
	return c.Download(ctx, blobsPath(tenant)+"/"+pathEscape(id), w)
}

// BlobStream is an open answer of GET .../blobs/{bid}: its status (200;
// 206 for a range; 416 for a range outside the blob, its body a problem),
// headers (Content-Type, Content-Length, Content-Range, ETag) and body,
// which the caller closes.
type BlobStream struct {
	Status int
	Header http.Header
	Body   io.ReadCloser
	// Length is the body's length (-1: unknown).
	Length int64
}

// OpenBlob opens a blob's content, or the part of it rangeHeader asks for
// (an HTTP Range value, "" = all; ifRange the If-Range value, "" = none):
// what a media player seeking through a recording asks. The read is
// audited on the server before the first byte. Any answer but 200, 206
// and 416 is an *Error.
func (c *Client) OpenBlob(ctx context.Context, tenant, id, rangeHeader, ifRange string) (*BlobStream, error) {
	var hs []Header
	if rangeHeader != "" {
		hs = append(hs, Header{Name: "Range", Value: rangeHeader})
		if ifRange != "" {
			hs = append(hs, Header{Name: "If-Range", Value: ifRange})
		}
	}
	path := blobsPath(tenant) + "/" + pathEscape(id)
	resp, err := c.send(ctx, "GET", path, nil, "*/*", hs...)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
		return &BlobStream{Status: resp.StatusCode, Header: resp.Header, Body: resp.Body, Length: resp.ContentLength}, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return nil, answerError("GET", path, resp.StatusCode, data)
}

// BlobMetadata reads a blob's metadata (not audited: no content).
func (c *Client) BlobMetadata(ctx context.Context, tenant, id string) (Blob, error) {
	var b Blob
	err := c.Do(ctx, "GET", blobsPath(tenant)+"/"+pathEscape(id)+"/metadata", nil, &b)
	return b, err
}

// Blobs is one page of at most limit blobs after the id after ("" = from
// the first), of subject only if not "".
func (c *Client) Blobs(ctx context.Context, tenant, subject string, limit int, after string) (BlobPage, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if subject != "" {
		q.Set("subject", subject)
	}
	if after != "" {
		q.Set("after", after)
	}
	var page BlobPage
	err := c.Do(ctx, "GET", blobsPath(tenant)+"?"+q.Encode(), nil, &page)
	return page, err
}

// DeleteBlob deletes a blob.
func (c *Client) DeleteBlob(ctx context.Context, tenant, id string) error {
	return c.Do(ctx, "DELETE", blobsPath(tenant)+"/"+pathEscape(id), nil, nil)
}

func tenantPath(id string) string { return "/v1/tenants/" + pathEscape(id) }

func collectionPath(tenant, name string) string {
	return tenantPath(tenant) + "/collections/" + pathEscape(name)
}

func recordsPath(tenant, collection string) string {
	return collectionPath(tenant, collection) + "/records"
}

func blobsPath(tenant string) string { return tenantPath(tenant) + "/blobs" }

// auditPath is the path of a chain's audit routes: the system chain's
// (tenant "") or a tenant's.
func auditPath(tenant string) string {
	if tenant == "" {
		return "/v1/sys/audit"
	}
	return tenantPath(tenant) + "/audit"
}

// ---- break-glass ----

// RequestBreakGlass asks for an operator's access to tenant's data for
// d (0: the default, one hour) once approved.
func (c *Client) RequestBreakGlass(ctx context.Context, tenant, reason string, d time.Duration) (BreakGlassGrant, error) {
	body := map[string]any{"reason": reason}
	if d > 0 {
		body["duration_seconds"] = int64(d / time.Second)
	}
	var out BreakGlassGrant
	err := c.Do(ctx, "POST", tenantPath(tenant)+"/breakglass", body, &out)
	return out, err
}

// BreakGlassGrants lists a tenant's grants.
func (c *Client) BreakGlassGrants(ctx context.Context, tenant string) (BreakGlassGrantList, error) {
	var out BreakGlassGrantList
	err := c.Do(ctx, "GET", tenantPath(tenant)+"/breakglass", nil, &out)
	return out, err
}

// ApproveBreakGlass activates a pending grant.
func (c *Client) ApproveBreakGlass(ctx context.Context, tenant, id string) (BreakGlassGrant, error) {
	var out BreakGlassGrant
	err := c.Do(ctx, "POST", tenantPath(tenant)+"/breakglass/"+pathEscape(id)+"/approve", nil, &out)
	return out, err
}

// RevokeBreakGlass ends a pending or active grant.
func (c *Client) RevokeBreakGlass(ctx context.Context, tenant, id string) (BreakGlassGrant, error) {
	var out BreakGlassGrant
	err := c.Do(ctx, "POST", tenantPath(tenant)+"/breakglass/"+pathEscape(id)+"/revoke", nil, &out)
	return out, err
}

// BreakGlassPolicy reads a tenant's break-glass policy.
func (c *Client) BreakGlassPolicy(ctx context.Context, tenant string) (BreakGlassPolicy, error) {
	var out BreakGlassPolicy
	err := c.Do(ctx, "GET", tenantPath(tenant)+"/breakglass-policy", nil, &out)
	return out, err
}

// SetBreakGlassPolicy replaces a tenant's break-glass policy.
func (c *Client) SetBreakGlassPolicy(ctx context.Context, tenant string, p BreakGlassPolicy) (BreakGlassPolicy, error) {
	var out BreakGlassPolicy
	err := c.Do(ctx, "PUT", tenantPath(tenant)+"/breakglass-policy", p, &out)
	return out, err
}

// ---- the root credential ----

// RootTokenChallenge is a regeneration attempt's challenge.
type RootTokenChallenge struct {
	SealedNonce []byte    `json:"sealed_nonce"` // base64 on the wire
	ExpiresAt   time.Time `json:"expires_at"`
}

// RevokeRootToken revokes the root operator token.
func (c *Client) RevokeRootToken(ctx context.Context) error {
	return c.Do(ctx, "POST", "/v1/sys/root-token/revoke", nil, nil)
}

// StartRootTokenGeneration starts a regeneration of the root operator
// token (no token needed): its challenge is a nonce sealed to the
// cluster's seal recipients.
func (c *Client) StartRootTokenGeneration(ctx context.Context) (RootTokenChallenge, error) {
	var out RootTokenChallenge
	err := c.Do(ctx, "POST", "/v1/sys/root-token/generate/attempt", nil, &out)
	return out, err
}

// GenerateRootToken answers the challenge with the opened nonce and
// returns the new root operator token.
func (c *Client) GenerateRootToken(ctx context.Context, nonce string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	err := c.Do(ctx, "POST", "/v1/sys/root-token/generate", map[string]string{"nonce": nonce}, &out)
	return out.Token, err
}
