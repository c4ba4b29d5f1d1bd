package api_test

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/apikeys"
	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
	"github.com/custos/custos/appliance/collections"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// This file wraps the API's services so that the breach tests can see
// which services a request reached and for which tenant: the structural
// side of the breach suite. A request of one tenant's key aimed at another
// tenant must be refused before any service is called, other than the
// authentication of the key itself; timing alone cannot show that on a
// shared machine, the call log can.

// svcCall is one call into a service.
type svcCall struct {
	svc, method string
	tenant      string // the tenant (or audit chain) the call is about; "" for none
}

// isAuth reports the one call every authenticated request makes.
func (c svcCall) isAuth() bool { return c.svc == "APIKeys" && c.method == "Authenticate" }

// about reports whether the call touches tenant's data (its registry
// entry, scope or audit chain).
func (c svcCall) about(tenant string) bool {
	return c.tenant == tenant || c.tenant == tenancy.ChainOf(tenant)
}

func (c svcCall) String() string { return c.svc + "." + c.method + "(" + c.tenant + ")" }

// callLog records the calls, in order; safe for concurrent use (the
// server runs handlers on its own goroutines).
type callLog struct {
	mu    sync.Mutex
	calls []svcCall
}

func (l *callLog) add(svc, method, tenant string) {
	l.mu.Lock()
	l.calls = append(l.calls, svcCall{svc, method, tenant})
	l.mu.Unlock()
}

// mark is the position to pass to since.
func (l *callLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// since returns the calls made after mark.
func (l *callLog) since(mark int) []svcCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]svcCall(nil), l.calls[mark:]...)
}

// loggedDeps wraps every tenant-scoped service of d so that its calls go to
// log. Cluster and SelfCheck hold no tenant data and are left as they are.
func loggedDeps(d api.Deps, log *callLog) api.Deps {
	d.Tenants = logTenants{d.Tenants, log}
	d.Keys = logKeys{d.Keys, log}
	d.Audit = logAudit{d.Audit, log}
	d.APIKeys = logAPIKeys{d.APIKeys, log}
	d.Collections = logCollections{d.Collections, log}
	d.Records = logRecords{d.Records, log}
	d.Blobs = logBlobs{d.Blobs, log}
	return d
}

type logTenants struct {
	api.Tenants
	l *callLog
}

func (w logTenants) Create(ctx context.Context, a audit.Principal, in tenants.CreateInput) (tenants.Tenant, error) {
	w.l.add("Tenants", "Create", in.ID)
	return w.Tenants.Create(ctx, a, in)
}

func (w logTenants) Get(ctx context.Context, c raftstore.Consistency, id string) (tenants.Tenant, error) {
	w.l.add("Tenants", "Get", id)
	return w.Tenants.Get(ctx, c, id)
}

func (w logTenants) List(ctx context.Context, c raftstore.Consistency, after string, limit int) ([]tenants.Tenant, string, error) {
	w.l.add("Tenants", "List", "*")
	return w.Tenants.List(ctx, c, after, limit)
}

func (w logTenants) Update(ctx context.Context, a audit.Principal, id string, p tenants.Patch) (tenants.Tenant, error) {
	w.l.add("Tenants", "Update", id)
	return w.Tenants.Update(ctx, a, id, p)
}

func (w logTenants) Suspend(ctx context.Context, a audit.Principal, id string) (tenants.Tenant, error) {
	w.l.add("Tenants", "Suspend", id)
	return w.Tenants.Suspend(ctx, a, id)
}

func (w logTenants) Resume(ctx context.Context, a audit.Principal, id string) (tenants.Tenant, error) {
	w.l.add("Tenants", "Resume", id)
	return w.Tenants.Resume(ctx, a, id)
}

func (w logTenants) Delete(ctx context.Context, a audit.Principal, id string) error {
	w.l.add("Tenants", "Delete", id)
	return w.Tenants.Delete(ctx, a, id)
}

type logKeys struct {
	api.Keys
	l *callLog
}

func (w logKeys) Status(ctx context.Context, tenant string) (keyring.KeyStatus, error) {
	w.l.add("Keys", "Status", tenant)
	return w.Keys.Status(ctx, tenant)
}

func (w logKeys) Rotate(ctx context.Context, c keyring.Auditor, tenant string) (uint32, error) {
	w.l.add("Keys", "Rotate", tenant)
	return w.Keys.Rotate(ctx, c, tenant)
}

func (w logKeys) PurgeCache(ctx context.Context, c keyring.Auditor, tenant string) (int, error) {
	w.l.add("Keys", "PurgeCache", tenant)
	return w.Keys.PurgeCache(ctx, c, tenant)
}

func (w logKeys) ChangeProvider(ctx context.Context, c keyring.Auditor, tenant string, spec keyring.ProviderSpec) error {
	w.l.add("Keys", "ChangeProvider", tenant)
	return w.Keys.ChangeProvider(ctx, c, tenant, spec)
}

type logAudit struct {
	api.Audit
	l *callLog
}

func (w logAudit) Append(ctx context.Context, chain string, e audit.Entry) error {
	w.l.add("Audit", "Append", chain)
	return w.Audit.Append(ctx, chain, e)
}

func (w logAudit) List(ctx context.Context, c raftstore.Consistency, chain string, f audit.Filter, after uint64, limit int) ([]audit.Item, uint64, error) {
	w.l.add("Audit", "List", chain)
	return w.Audit.List(ctx, c, chain, f, after, limit)
}

func (w logAudit) Latest(ctx context.Context, c raftstore.Consistency, chain string) ([]byte, error) {
	w.l.add("Audit", "Latest", chain)
	return w.Audit.Latest(ctx, c, chain)
}

func (w logAudit) ProveInclusion(ctx context.Context, chain string, index, size uint64) (audit.Proof, error) {
	w.l.add("Audit", "ProveInclusion", chain)
	return w.Audit.ProveInclusion(ctx, chain, index, size)
}

func (w logAudit) ProveConsistency(ctx context.Context, chain string, old, size uint64) (audit.Proof, error) {
	w.l.add("Audit", "ProveConsistency", chain)
	return w.Audit.ProveConsistency(ctx, chain, old, size)
}

func (w logAudit) Export(ctx context.Context, chain string, from, to time.Time, out io.Writer) error {
	w.l.add("Audit", "Export", chain)
	return w.Audit.Export(ctx, chain, from, to, out)
}

func (w logAudit) VerifierKey(ctx context.Context) (string, error) {
	w.l.add("Audit", "VerifierKey", "")
	return w.Audit.VerifierKey(ctx)
}

type logAPIKeys struct {
	api.APIKeys
	l *callLog
}

func (w logAPIKeys) Create(ctx context.Context, c audit.Principal, tenant string, in apikeys.CreateInput) (apikeys.Key, string, error) {
	w.l.add("APIKeys", "Create", tenant)
	return w.APIKeys.Create(ctx, c, tenant, in)
}

func (w logAPIKeys) List(ctx context.Context, tenant string) ([]apikeys.Key, error) {
	w.l.add("APIKeys", "List", tenant)
	return w.APIKeys.List(ctx, tenant)
}

func (w logAPIKeys) Get(ctx context.Context, tenant, id string) (apikeys.Key, error) {
	w.l.add("APIKeys", "Get", tenant)
	return w.APIKeys.Get(ctx, tenant, id)
}

func (w logAPIKeys) Delete(ctx context.Context, c audit.Principal, tenant, id string) error {
	w.l.add("APIKeys", "Delete", tenant)
	return w.APIKeys.Delete(ctx, c, tenant, id)
}

// Authenticate is logged without a tenant: it looks the token's key up by
// id, whatever the path names.
func (w logAPIKeys) Authenticate(ctx context.Context, token string) (apikeys.Key, error) {
	w.l.add("APIKeys", "Authenticate", "")
	return w.APIKeys.Authenticate(ctx, token)
}

type logCollections struct {
	api.Collections
	l *callLog
}

func (w logCollections) Put(ctx context.Context, c audit.Principal, tenant, name string, d collections.Definition, ifMatch uint64) (collections.Schema, bool, error) {
	w.l.add("Collections", "Put", tenant)
	return w.Collections.Put(ctx, c, tenant, name, d, ifMatch)
}

func (w logCollections) Get(ctx context.Context, c raftstore.Consistency, tenant, name string, v uint64) (collections.Schema, error) {
	w.l.add("Collections", "Get", tenant)
	return w.Collections.Get(ctx, c, tenant, name, v)
}

func (w logCollections) List(ctx context.Context, c raftstore.Consistency, tenant string) ([]collections.Schema, error) {
	w.l.add("Collections", "List", tenant)
	return w.Collections.List(ctx, c, tenant)
}

type logRecords struct {
	api.Records
	l *callLog
}

func (w logRecords) Create(ctx context.Context, c audit.Principal, tenant, collection string, in records.Input) (records.Record, error) {
	w.l.add("Records", "Create", tenant)
	return w.Records.Create(ctx, c, tenant, collection, in)
}

func (w logRecords) Get(ctx context.Context, c audit.Principal, tenant, collection, id string, masked bool) (records.Record, error) {
	w.l.add("Records", "Get", tenant)
	return w.Records.Get(ctx, c, tenant, collection, id, masked)
}

func (w logRecords) Delete(ctx context.Context, c audit.Principal, tenant, collection, id string) error {
	w.l.add("Records", "Delete", tenant)
	return w.Records.Delete(ctx, c, tenant, collection, id)
}

func (w logRecords) Replace(ctx context.Context, c audit.Principal, tenant, collection, id string, in records.Input, ifMatch uint64) (records.Record, error) {
	w.l.add("Records", "Replace", tenant)
	return w.Records.Replace(ctx, c, tenant, collection, id, in, ifMatch)
}

func (w logRecords) Patch(ctx context.Context, c audit.Principal, tenant, collection, id string, in records.Input, subjectSet, attributesSet bool, ifMatch uint64) (records.Record, error) {
	w.l.add("Records", "Patch", tenant)
	return w.Records.Patch(ctx, c, tenant, collection, id, in, subjectSet, attributesSet, ifMatch)
}

func (w logRecords) Find(ctx context.Context, c audit.Principal, tenant, collection, field string, value json.RawMessage, after string, limit int) ([]string, string, error) {
	w.l.add("Records", "Find", tenant)
	return w.Records.Find(ctx, c, tenant, collection, field, value, after, limit)
}

func (w logRecords) Subject(ctx context.Context, c audit.Principal, tenant, subject string) ([]records.Held, error) {
	w.l.add("Records", "Subject", tenant)
	return w.Records.Subject(ctx, c, tenant, subject)
}

func (w logRecords) List(ctx context.Context, c audit.Principal, tenant, collection, attr, value, after string, limit int) ([]string, string, error) {
	w.l.add("Records", "List", tenant)
	return w.Records.List(ctx, c, tenant, collection, attr, value, after, limit)
}

type logBlobs struct {
	api.Blobs
	l *callLog
}

func (w logBlobs) Put(ctx context.Context, c audit.Principal, tenant string, in blobs.Input, body io.Reader) (blobs.Blob, error) {
	w.l.add("Blobs", "Put", tenant)
	return w.Blobs.Put(ctx, c, tenant, in, body)
}

func (w logBlobs) Open(ctx context.Context, c audit.Principal, tenant, id string) (*blobs.Content, error) {
	w.l.add("Blobs", "Open", tenant)
	return w.Blobs.Open(ctx, c, tenant, id)
}

func (w logBlobs) Delete(ctx context.Context, c audit.Principal, tenant, id string) error {
	w.l.add("Blobs", "Delete", tenant)
	return w.Blobs.Delete(ctx, c, tenant, id)
}

func (w logBlobs) List(ctx context.Context, c audit.Principal, tenant, subject, after string, limit int) ([]blobs.Blob, string, error) {
	w.l.add("Blobs", "List", tenant)
	return w.Blobs.List(ctx, c, tenant, subject, after, limit)
}

func (w logBlobs) Subject(ctx context.Context, c audit.Principal, tenant, subject string) ([]blobs.Blob, error) {
	w.l.add("Blobs", "Subject", tenant)
	return w.Blobs.Subject(ctx, c, tenant, subject)
}

// callsAbout returns the calls of cs that touch tenant.
func callsAbout(cs []svcCall, tenant string) []string {
	var out []string
	for _, c := range cs {
		if c.about(tenant) {
			out = append(out, c.String())
		}
	}
	return out
}

// callsBeyondAuth returns the calls of cs other than the key's
// authentication.
func callsBeyondAuth(cs []svcCall) []string {
	var out []string
	for _, c := range cs {
		if !c.isAuth() {
			out = append(out, c.String())
		}
	}
	return out
}
