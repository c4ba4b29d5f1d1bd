package client

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// Purpose is a tenant's processing purpose (GET and POST
// /v1/tenants/{id}/purposes).
type Purpose struct {
	ID            string `json:"id"`
	Description   string `json:"description"`
	Basis         string `json:"basis"`
	Required      bool   `json:"required"`
	DefaultOn     bool   `json:"default_on"`
	Sale          bool   `json:"sale"`
	OnWithdraw    string `json:"on_withdraw"`
	PolicyVersion int    `json:"policy_version"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
}

// NewPurpose is the body of POST /v1/tenants/{id}/purposes, and (without
// ID) of PUT /v1/tenants/{id}/purposes/{pid}.
type NewPurpose struct {
	ID          string `json:"id,omitempty"`
	Description string `json:"description"`
	Basis       string `json:"basis"`
	Required    bool   `json:"required,omitempty"`
	DefaultOn   bool   `json:"default_on,omitempty"`
	Sale        bool   `json:"sale,omitempty"`
	// OnWithdraw: keep (""), erase or anonymise.
	OnWithdraw string `json:"on_withdraw,omitempty"`
}

// Evidence shows a subject's decision: a text or a blob id.
type Evidence struct {
	Text string `json:"text,omitempty"`
	Blob string `json:"blob,omitempty"`
}

// ConsentChange is the body of a grant or a withdrawal.
type ConsentChange struct {
	Purposes []string `json:"purposes,omitempty"`
	// All: a withdrawal of every purpose (Purposes empty).
	All    bool   `json:"all,omitempty"`
	Source string `json:"source"`
	// PolicyVersion: the version the subject was shown (grants only; 0:
	// the current ones).
	PolicyVersion int       `json:"policy_version,omitempty"`
	Evidence      *Evidence `json:"evidence,omitempty"`
}

// ConsentFlag is the body of POST .../consent/{sid}/flags.
type ConsentFlag struct {
	Flag     string    `json:"flag"` // do-not-sell or restrict-processing
	On       bool      `json:"on"`
	Source   string    `json:"source"`
	Evidence *Evidence `json:"evidence,omitempty"`
}

// ConsentEvent is one event of a subject's consent ledger.
type ConsentEvent struct {
	Seq              uint64         `json:"seq"`
	At               time.Time      `json:"at"`
	Kind             string         `json:"kind"`
	Purposes         []string       `json:"purposes,omitempty"`
	All              bool           `json:"all,omitempty"`
	PolicyVersions   map[string]int `json:"policy_versions,omitempty"`
	Flag             string         `json:"flag,omitempty"`
	On               bool           `json:"on,omitempty"`
	Source           string         `json:"source"`
	EvidenceText     string         `json:"evidence_text,omitempty"`
	EvidenceDigest   string         `json:"evidence_digest,omitempty"`
	EvidenceBlob     string         `json:"evidence_blob,omitempty"`
	EvidenceWithheld bool           `json:"evidence_withheld,omitempty"`
	Actor            struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"actor"`
}

// PurposeState is what a subject's ledger says of one purpose.
type PurposeState struct {
	Purpose        string     `json:"purpose"`
	Basis          string     `json:"basis"`
	Required       bool       `json:"required"`
	Allowed        bool       `json:"allowed"`
	Decision       string     `json:"decision"`
	Since          *time.Time `json:"since,omitempty"`
	GrantedVersion int        `json:"granted_version,omitempty"`
	PolicyVersion  int        `json:"policy_version"`
	Source         string     `json:"source,omitempty"`
}

// ConsentState is a subject's consent at a moment.
type ConsentState struct {
	At                 time.Time      `json:"at"`
	Purposes           []PurposeState `json:"purposes"`
	DoNotSell          bool           `json:"do_not_sell"`
	RestrictProcessing bool           `json:"restrict_processing"`
	Events             int            `json:"events"`
}

// Allowed reports whether the state allows purpose.
func (s ConsentState) Allowed(purpose string) bool {
	for _, p := range s.Purposes {
		if p.Purpose == purpose {
			return p.Allowed
		}
	}
	return false
}

// BlobKind is a tenant's blob kind and the purposes its blobs require.
type BlobKind struct {
	Kind      string    `json:"kind"`
	Purposes  []string  `json:"purposes"`
	Version   int       `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

func purposesPath(tenant string) string { return tenantPath(tenant) + "/purposes" }

func consentPath(tenant, subject string) string {
	return tenantPath(tenant) + "/consent/" + url.PathEscape(subject)
}

// Purposes lists the tenant's purposes.
func (c *Client) Purposes(ctx context.Context, tenant string) ([]Purpose, error) {
	var out struct {
		Purposes []Purpose `json:"purposes"`
	}
	err := c.Do(ctx, "GET", purposesPath(tenant), nil, &out)
	return out.Purposes, err
}

// Purpose reads one purpose.
func (c *Client) Purpose(ctx context.Context, tenant, id string) (Purpose, error) {
	var out Purpose
	err := c.Do(ctx, "GET", purposesPath(tenant)+"/"+url.PathEscape(id), nil, &out)
	return out, err
}

// PurposeVersions lists every version of one purpose, oldest first.
func (c *Client) PurposeVersions(ctx context.Context, tenant, id string) ([]Purpose, error) {
	var out struct {
		Versions []Purpose `json:"versions"`
	}
	err := c.Do(ctx, "GET", purposesPath(tenant)+"/"+url.PathEscape(id)+"/versions", nil, &out)
	return out.Versions, err
}

// CreatePurpose adds a purpose.
func (c *Client) CreatePurpose(ctx context.Context, tenant string, p NewPurpose) (Purpose, error) {
	var out Purpose
	err := c.Do(ctx, "POST", purposesPath(tenant), p, &out)
	return out, err
}

// UpdatePurpose replaces a purpose's terms (a new policy version);
// ifMatch, when not 0, is the policy version last read.
func (c *Client) UpdatePurpose(ctx context.Context, tenant, id string, p NewPurpose, ifMatch int) (Purpose, error) {
	p.ID = ""
	var hs []Header
	if ifMatch > 0 {
		hs = append(hs, Header{Name: "If-Match", Value: `"` + strconv.Itoa(ifMatch) + `"`})
	}
	var out Purpose
	err := c.doWith(ctx, "PUT", purposesPath(tenant)+"/"+url.PathEscape(id), p, &out, hs...)
	return out, err
}

// ConsentState reads a subject's consent now (at zero) or as of at.
func (c *Client) ConsentState(ctx context.Context, tenant, subject string, at time.Time) (ConsentState, error) {
	path := consentPath(tenant, subject)
	if !at.IsZero() {
		path += "?at=" + url.QueryEscape(at.UTC().Format(time.RFC3339Nano))
	}
	var out ConsentState
	err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}

// ConsentHistory reads a subject's consent ledger, oldest first.
func (c *Client) ConsentHistory(ctx context.Context, tenant, subject string) ([]ConsentEvent, error) {
	var out struct {
		Events []ConsentEvent `json:"events"`
	}
	err := c.Do(ctx, "GET", consentPath(tenant, subject)+"/history", nil, &out)
	return out.Events, err
}

// Grant records a subject's consent.
func (c *Client) Grant(ctx context.Context, tenant, subject string, ch ConsentChange) (ConsentEvent, error) {
	var out ConsentEvent
	err := c.Do(ctx, "POST", consentPath(tenant, subject)+"/grant", ch, &out)
	return out, err
}

// Withdraw records a subject's withdrawal.
func (c *Client) Withdraw(ctx context.Context, tenant, subject string, ch ConsentChange) (ConsentEvent, error) {
	var out ConsentEvent
	err := c.Do(ctx, "POST", consentPath(tenant, subject)+"/withdraw", ch, &out)
	return out, err
}

// SetConsentFlag sets or clears a subject's do-not-sell or
// restrict-processing flag.
func (c *Client) SetConsentFlag(ctx context.Context, tenant, subject string, f ConsentFlag) (ConsentEvent, error) {
	var out ConsentEvent
	err := c.Do(ctx, "POST", consentPath(tenant, subject)+"/flags", f, &out)
	return out, err
}

// BlobKinds lists the tenant's blob kinds.
func (c *Client) BlobKinds(ctx context.Context, tenant string) ([]BlobKind, error) {
	var out struct {
		Kinds []BlobKind `json:"kinds"`
	}
	err := c.Do(ctx, "GET", tenantPath(tenant)+"/blob-kinds", nil, &out)
	return out.Kinds, err
}

// PutBlobKind defines or changes a blob kind: the purposes its blobs
// require of their subject.
func (c *Client) PutBlobKind(ctx context.Context, tenant, kind string, purposes []string) (BlobKind, error) {
	if purposes == nil {
		purposes = []string{}
	}
	var out BlobKind
	err := c.Do(ctx, "PUT", tenantPath(tenant)+"/blob-kinds/"+url.PathEscape(kind), map[string][]string{"purposes": purposes}, &out)
	return out, err
}

// ConsentDay is one purpose's day of GET .../consent-stats: the grants and
// withdrawals recorded that day, and at its end the subjects with a grant
// in force, those who decided, and the rate (granted ÷ decided, per
// cent; nil while nobody decided).
type ConsentDay struct {
	Day         string   `json:"day"`
	Grants      int64    `json:"grants"`
	Withdrawals int64    `json:"withdrawals"`
	Granted     int64    `json:"granted"`
	Decided     int64    `json:"decided"`
	Rate        *float64 `json:"rate"`
}

// ConsentStats is GET /v1/tenants/{id}/consent-stats.
type ConsentStats struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Purposes []struct {
		Purpose string       `json:"purpose"`
		Basis   string       `json:"basis"`
		Days    []ConsentDay `json:"days"`
	} `json:"purposes"`
}

// ConsentStats reads the tenant's consent rates per purpose for the last
// days days, today included (0: the server's default, 30).
func (c *Client) ConsentStats(ctx context.Context, tenant string, days int) (ConsentStats, error) {
	path := tenantPath(tenant) + "/consent-stats"
	if days > 0 {
		path += "?days=" + strconv.Itoa(days)
	}
	var out ConsentStats
	err := c.Do(ctx, "GET", path, nil, &out)
	return out, err
}
