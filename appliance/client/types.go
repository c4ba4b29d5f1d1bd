package client

import (
	"encoding/json"
	"time"
)

// The wire types of the API's answers and requests. Their fields and
// their order are what the CLI prints with --format json: change them
// only together with its documented output.

// Status is GET /v1/sys/status.
type Status struct {
	NodeID        string `json:"node_id"`
	Region        string `json:"region"`
	Version       string `json:"version"`
	State         string `json:"state"`
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	LastLogIndex  uint64 `json:"last_log_index"`
	LeaderID      string `json:"leader_id"`
	LeaderAddress string `json:"leader_address"`
	Peers         []Peer `json:"peers"`
}

// Health is GET /v1/sys/health.
type Health struct {
	Status   string `json:"status"` // "ok" or "sealed"
	NodeID   string `json:"node_id"`
	Role     string `json:"role"`
	LeaderID string `json:"leader_id"`
	Sealed   bool   `json:"sealed"`
}

// Peer is one member of the Raft configuration.
type Peer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	Leader  bool   `json:"leader"`
	// Heartbeat is the leader's view of a follower, told by the leader
	// only: "ok" while its heartbeats succeed, "failing" after one
	// failed, with LastContact when it last answered (zero: never).
	Heartbeat   string    `json:"heartbeat,omitempty"`
	LastContact time.Time `json:"last_contact,omitzero"`
}

// PeerList is GET /v1/operator/raft/peers.
type PeerList struct {
	Peers []Peer `json:"peers"`
}

// Tenant is a tenant as the API shows it.
type Tenant struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	Region      string `json:"region"`
	State       string `json:"state"`
	KeyProvider string `json:"key_provider,omitempty"`
	// AuditRetentionDays: 0 is the cluster's default.
	AuditRetentionDays int `json:"audit_retention_days,omitempty"`
	// The privacy settings: regulation mode, time zone, DPDP response
	// period and default retention of records.
	Regulation       string `json:"regulation,omitempty"`
	TimeZone         string `json:"time_zone,omitempty"`
	DPDPResponseDays int    `json:"dpdp_response_days,omitempty"`
	RetentionDays    int    `json:"retention_days,omitempty"`
	CreatedAt        string `json:"created_at"`
	UpdatedAt        string `json:"updated_at,omitempty"`
	// Bootstrapping is told to an operator only (GET /v1/tenants/{id}):
	// the tenant has no Owner user yet, so the operator may still create
	// its first API keys and Owner user.
	Bootstrapping bool `json:"bootstrapping,omitempty"`
}

// TenantPatch is the body of PATCH /v1/tenants/{id}: nil fields are left
// alone.
type TenantPatch struct {
	DisplayName        *string `json:"display_name,omitempty"`
	AuditRetentionDays *int    `json:"audit_retention_days,omitempty"`
	Regulation         *string `json:"regulation,omitempty"`
	TimeZone           *string `json:"time_zone,omitempty"`
	DPDPResponseDays   *int    `json:"dpdp_response_days,omitempty"`
	RetentionDays      *int    `json:"retention_days,omitempty"`
}

// TenantPage is one page of GET /v1/tenants; Next is the cursor of the
// next page ("" after the last).
type TenantPage struct {
	Tenants []Tenant `json:"tenants"`
	Next    string   `json:"next"`
}

// NewTenant is the body of POST /v1/tenants.
type NewTenant struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	// Region must be the cluster's ("" = the cluster's).
	Region string `json:"region,omitempty"`
	KeyProvider
}

// KeyProvider chooses where a tenant's root key lives: "age" (held by the
// cluster, the default) or "vault" (a transit key in the customer's
// Vault). It is the body of PUT /v1/tenants/{id}/keys/provider.
type KeyProvider struct {
	Kind  string `json:"key_provider,omitempty"`
	Vault *Vault `json:"vault,omitempty"`
}

// Vault is a transit key and how to log in to its Vault. The credentials
// are stored only encrypted and never returned.
type Vault struct {
	Address    string `json:"address"`
	Mount      string `json:"mount"`
	Key        string `json:"key"`
	AuthMethod string `json:"auth_method"` // "token" or "approle"
	AuthMount  string `json:"auth_mount,omitempty"`
	CACertPEM  string `json:"ca_cert_pem,omitempty"`
	Token      string `json:"token,omitempty"`
	RoleID     string `json:"role_id,omitempty"`
	SecretID   string `json:"secret_id,omitempty"`
}

// KeyStatus is GET /v1/tenants/{id}/keys: a tenant's keys and the
// progress of a rewrap.
type KeyStatus struct {
	Tenant          string         `json:"tenant"`
	Provider        ProviderInfo   `json:"provider"`
	CurrentKEK      uint32         `json:"current_kek"`
	KEKs            []uint32       `json:"keks"`
	DataKeys        int            `json:"data_keys"`
	ByKEK           map[string]int `json:"data_keys_by_kek"`
	Pending         int            `json:"rewrap_pending"`
	Rewrapping      bool           `json:"rewrapping"`
	TransitVersions []int          `json:"transit_versions"`
}

// ProviderInfo is where a tenant's root key lives (no credentials).
type ProviderInfo struct {
	Kind  string     `json:"kind"`
	Vault *VaultInfo `json:"vault"`
}

// VaultInfo names a tenant's transit key.
type VaultInfo struct {
	Address string `json:"address"`
	Mount   string `json:"mount"`
	Key     string `json:"key"`
}

// Rotation is the answer of POST /v1/tenants/{id}/keys/rotate.
type Rotation struct {
	CurrentKEK uint32    `json:"current_kek"`
	Status     KeyStatus `json:"status"`
}

// APIKey is a tenant's API key; Token is set only in the answer that
// created it.
type APIKey struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// Role is the built-in tenant role of a key created with one;
	// Permissions those of a key created with permissions.
	Role        string   `json:"role,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	// Scopes are the attribute scopes of a key bound to a role.
	Scopes map[string][]string `json:"scopes,omitempty"`
	// ClientCertCN: the key is bound to a client certificate of this
	// subject common name (mutual TLS).
	ClientCertCN string     `json:"client_cert_cn,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	LastUsed     *time.Time `json:"last_used,omitempty"`
	Token        string     `json:"token,omitempty"`
}

// APIKeyList is GET /v1/tenants/{id}/apikeys.
type APIKeyList struct {
	APIKeys []APIKey `json:"apikeys"`
}

// NewAPIKey is the body of POST /v1/tenants/{id}/apikeys: Role or
// Permissions, not both.
type NewAPIKey struct {
	Name string `json:"name"`
	// Role: a built-in tenant role (owner, manager, reservations,
	// concierge, foh, marketing, compliance, qa, coach, read-only).
	Role string `json:"role,omitempty"`
	// Permissions (the old form): read, write, delete, export, admin.
	Permissions []string `json:"permissions,omitempty"`
	// Scopes (with a Role): attribute name → the values the key may see.
	Scopes    map[string][]string `json:"scopes,omitempty"`
	ExpiresAt *time.Time          `json:"expires_at,omitempty"`
	// ClientCertCN binds the key to a client certificate of this subject
	// common name, verified by the node's [api] tls_client_ca_file.
	ClientCertCN string `json:"client_cert_cn,omitempty"`
}

// Collection is a collection's schema.
type Collection struct {
	Name            string            `json:"name"`
	Version         uint64            `json:"version"`
	Fields          []CollectionField `json:"fields"`
	RetentionDays   int               `json:"retention_days"`
	SubjectRequired bool              `json:"subject_required"`
	// Purposes are what a record's subject must allow (consent).
	Purposes []string `json:"purposes,omitempty"`
}

// CollectionField is one field of a collection's schema.
type CollectionField struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	Required       bool   `json:"required"`
	Classification string `json:"classification"`
	Index          bool   `json:"index"`
	// Values are an enum field's values.
	Values []string `json:"values,omitempty"`
	// Collection and OnErase are a ref field's (collections.TypeRef).
	Collection string `json:"collection,omitempty"`
	OnErase    string `json:"on_erase,omitempty"`
}

// CollectionList is GET /v1/tenants/{id}/collections.
type CollectionList struct {
	Collections []Collection `json:"collections"`
}

// RecordIDs is a page of GET .../records?field=&value=: the ids of the
// records whose blind-indexed field has the value.
type RecordIDs struct {
	IDs  []string `json:"ids"`
	Next string   `json:"next"`
}

// Record is a record as the API answers it: its fields as the reader's
// role reads them (Masked names the masked ones, Withheld the schema's
// fields left out).
type Record struct {
	ID            string                     `json:"id"`
	Collection    string                     `json:"collection"`
	Subject       string                     `json:"subject,omitempty"`
	Attributes    map[string]string          `json:"attributes,omitempty"`
	Fields        map[string]json.RawMessage `json:"fields"`
	Masked        []string                   `json:"masked,omitempty"`
	Withheld      []string                   `json:"withheld,omitempty"`
	Version       uint64                     `json:"version"`
	SchemaVersion uint64                     `json:"schema_version"`
	CreatedAt     time.Time                  `json:"created_at"`
	UpdatedAt     time.Time                  `json:"updated_at"`
}

// SubjectHeld is GET /v1/tenants/{id}/subjects/{sid}: what the tenant
// holds about a subject.
type SubjectHeld struct {
	Subject string       `json:"subject"`
	Records []HeldRecord `json:"records"`
	Blobs   []Blob       `json:"blobs"`
}

// HeldRecord names one record of a subject.
type HeldRecord struct {
	Collection string `json:"collection"`
	ID         string `json:"id"`
}

// Blob is a blob's metadata.
type Blob struct {
	ID         string `json:"id"`
	Subject    string `json:"subject"`
	Collection string `json:"collection"`
	Record     string `json:"record"`
	// Kind is the tenant's blob kind the blob was uploaded as.
	Kind string `json:"kind,omitempty"`
	// Attributes label the blob in the clear (for attribute scopes).
	Attributes  map[string]string `json:"attributes,omitempty"`
	ContentType string            `json:"content_type"`
	Size        int64             `json:"size"`
	// SHA256 is the content's digest in hex; empty for a role that does
	// not read blob content (the digest would confirm a guessed document).
	SHA256    string `json:"sha256,omitempty"`
	CreatedAt string `json:"created_at"`
}

// BlobPage is one page of GET /v1/tenants/{id}/blobs.
type BlobPage struct {
	Blobs []Blob `json:"blobs"`
	Next  string `json:"next"`
}

// BreakGlassGrant is an operator's time-limited access to a tenant's
// data: requested (pending), approved by the tenant or its policy
// (active), revoked or expired.
type BreakGlassGrant struct {
	ID              string     `json:"id"`
	Tenant          string     `json:"tenant"`
	Operator        string     `json:"operator"`
	Reason          string     `json:"reason"`
	DurationSeconds int64      `json:"duration_seconds"`
	State           string     `json:"state"`
	RequestedAt     time.Time  `json:"requested_at"`
	ApprovedBy      string     `json:"approved_by,omitempty"`
	ApprovedAt      *time.Time `json:"approved_at,omitempty"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
	EndedAt         *time.Time `json:"ended_at,omitempty"`
	EndedBy         string     `json:"ended_by,omitempty"`
	Visibility      string     `json:"visibility"`
}

// BreakGlassGrantList is a tenant's grants, newest first.
type BreakGlassGrantList struct {
	Grants []BreakGlassGrant `json:"grants"`
}

// BreakGlassPolicy is what a tenant decided in advance about break-glass.
type BreakGlassPolicy struct {
	AutoApprove        bool  `json:"auto_approve"`
	MaxDurationSeconds int64 `json:"max_duration_seconds"`
}

// Erasure is an erasure of the tenant's erasure ledger: POST
// /v1/tenants/{id}/requests/{rid}/erase answers it, GET .../receipt
// reads it again.
type Erasure struct {
	Request string `json:"request"`
	// Subject is the subject's audit pseudonym.
	Subject     string            `json:"subject"`
	Erased      time.Time         `json:"erased"`
	KeyShredded bool              `json:"key_shredded"`
	Counts      map[string]uint64 `json:"counts"`
	// AuditEntry is the subject.erase entry's sequence number in the
	// tenant's chain.
	AuditEntry uint64 `json:"audit_entry"`
	// Receipt is the signed receipt (custos dsr verify-receipt checks it).
	Receipt string `json:"receipt"`
}

// ErasureList is GET /v1/tenants/{id}/erasures.
type ErasureList struct {
	Erasures []Erasure `json:"erasures"`
}
