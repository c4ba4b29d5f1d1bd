package client

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"time"
)

// NewDSR is the body of POST /v1/tenants/{id}/requests: a data subject's
// request as it was received.
type NewDSR struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	// Received is when it arrived, if before now (a letter recorded
	// later); absent: now.
	Received      *time.Time        `json:"received,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`
	Rectification *DSRPatch         `json:"rectification,omitempty"`
}

// DSRPatch is a rectification: fields of one of the subject's records.
type DSRPatch struct {
	Collection string                     `json:"collection"`
	Record     string                     `json:"record"`
	Fields     map[string]json.RawMessage `json:"fields"`
}

// DSRTransition is the body of POST .../requests/{rid}/transition.
type DSRTransition struct {
	To        string       `json:"to"`
	Reason    string       `json:"reason,omitempty"`
	Extension string       `json:"extension,omitempty"`
	Evidence  *DSREvidence `json:"evidence,omitempty"`
	Note      string       `json:"note,omitempty"`
}

// DSREvidence is how the subject's identity was verified.
type DSREvidence struct {
	Method string `json:"method"`
	Text   string `json:"text"`
}

// DSR is a data-subject request as the API answers it.
type DSR struct {
	ID               string            `json:"id"`
	Tenant           string            `json:"tenant"`
	Kind             string            `json:"kind"`
	Subject          string            `json:"subject,omitempty"`
	SubjectPseudonym string            `json:"subject_pseudonym"`
	Status           string            `json:"status"`
	Received         time.Time         `json:"received"`
	Due              time.Time         `json:"due"`
	Regulation       string            `json:"regulation"`
	Basis            string            `json:"basis"`
	TimeZone         string            `json:"time_zone"`
	ResponseDays     int               `json:"response_days,omitempty"`
	Attributes       map[string]string `json:"attributes,omitempty"`
	Verification     *struct {
		Method   string    `json:"method"`
		Evidence string    `json:"evidence,omitempty"`
		Digest   string    `json:"digest,omitempty"`
		At       time.Time `json:"at"`
	} `json:"verification,omitempty"`
	Extension *struct {
		By          string    `json:"by"`
		Reason      string    `json:"reason,omitempty"`
		At          time.Time `json:"at"`
		OriginalDue time.Time `json:"original_due"`
	} `json:"extension,omitempty"`
	Rejection     string    `json:"rejection,omitempty"`
	Rectification *DSRPatch `json:"rectification,omitempty"`
	History       []struct {
		From string    `json:"from,omitempty"`
		To   string    `json:"to"`
		At   time.Time `json:"at"`
	} `json:"history"`
	Updated time.Time `json:"updated"`
	Result  *struct {
		Export  string            `json:"export,omitempty"`
		Receipt string            `json:"receipt,omitempty"`
		Counts  map[string]uint64 `json:"counts,omitempty"`
		Note    string            `json:"note,omitempty"`
	} `json:"result,omitempty"`
}

// DSRPage is one page of GET /v1/tenants/{id}/requests.
type DSRPage struct {
	Requests []DSR  `json:"requests"`
	Next     string `json:"next,omitempty"`
}

// DSRFilter selects requests: Status is a status or open, overdue,
// due-soon; Subject a data subject's id; empty fields select all.
type DSRFilter struct {
	Status, Kind, Subject, After string
	Limit                        int
}

// DSRSummary counts a tenant's requests.
type DSRSummary struct {
	At         time.Time      `json:"at"`
	ByStatus   map[string]int `json:"by_status"`
	Open       int            `json:"open"`
	OnTrack    int            `json:"on_track"`
	DueSoon    int            `json:"due_soon"`
	Overdue    int            `json:"overdue"`
	OverdueIDs []string       `json:"overdue_ids"`
	DueSoonIDs []string       `json:"due_soon_ids"`
}

func requestsPath(tenant string) string { return tenantPath(tenant) + "/requests" }

// CreateDSR records a data subject's request.
func (c *Client) CreateDSR(ctx context.Context, tenant string, in NewDSR) (DSR, error) {
	var out DSR
	err := c.Do(ctx, "POST", requestsPath(tenant), in, &out)
	return out, err
}

// DSRs lists a tenant's requests.
func (c *Client) DSRs(ctx context.Context, tenant string, f DSRFilter) (DSRPage, error) {
	q := url.Values{}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	if f.Subject != "" {
		q.Set("subject", f.Subject)
	}
	if f.After != "" {
		q.Set("after", f.After)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := requestsPath(tenant)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var page DSRPage
	err := c.Do(ctx, "GET", path, nil, &page)
	return page, err
}

// DSR reads one request.
func (c *Client) DSR(ctx context.Context, tenant, id string) (DSR, error) {
	var out DSR
	err := c.Do(ctx, "GET", requestsPath(tenant)+"/"+pathEscape(id), nil, &out)
	return out, err
}

// TransitionDSR moves a request to another status.
func (c *Client) TransitionDSR(ctx context.Context, tenant, id string, t DSRTransition) (DSR, error) {
	var out DSR
	err := c.Do(ctx, "POST", requestsPath(tenant)+"/"+pathEscape(id)+"/transition", t, &out)
	return out, err
}

// RectifyDSR applies a rectification request's patch and completes it.
func (c *Client) RectifyDSR(ctx context.Context, tenant, id string) (DSR, error) {
	var out DSR
	err := c.Do(ctx, "POST", requestsPath(tenant)+"/"+pathEscape(id)+"/rectify", struct{}{}, &out)
	return out, err
}

// DSRSummary counts a tenant's requests: by status, and the open ones
// on track, due soon and overdue.
func (c *Client) DSRSummary(ctx context.Context, tenant string) (DSRSummary, error) {
	var out DSRSummary
	err := c.Do(ctx, "GET", tenantPath(tenant)+"/requests-summary", nil, &out)
	return out, err
}
