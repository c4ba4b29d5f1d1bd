package requests

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/deadline"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/validation"
	"github.com/custos/custos/keyring"
)

// Get returns the request id, its private part opened.
func (s *Service) Get(ctx context.Context, caller audit.Principal, tenant, id string) (Request, error) {
	if err := callerIn(caller, tenant); err != nil {
		return Request{}, err
	}
	if !validation.ID(id) {
		return Request{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	st, _, err := readOne(ctx, s.scope(caller, tenant), id)
	if err != nil {
		return Request{}, err
	}
	dkey, err := s.keys.DataKey(ctx, tenant, "")
	if err != nil {
		return Request{}, err
	}
	return open(dkey, st)
}

// BySubject lists the subject's requests, in order of arrival (an
// erased subject's completed erasure request among them: it is found by
// the blind index, which it keeps).
func (s *Service) BySubject(ctx context.Context, caller audit.Principal, tenant, subject string) ([]Request, error) {
	if err := callerIn(caller, tenant); err != nil {
		return nil, err
	}
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	dkey, ikey, _, err := s.keysOf(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var all []stored
	err = view(ctx, s.scope(caller, tenant), func(r tenancy.Read) error {
		var err error
		r.Scan(subjectPath(token(ikey, subject)), nil, 0, func(k, _ []byte, _ uint64) bool {
			v, _, ok := r.Get(requestsPath, k)
			if !ok {
				return true
			}
			var st stored
			if st, err = decode(string(k), v); err != nil {
				return false
			}
			all = append(all, st)
			return true
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return openAll(dkey, all)
}

func openAll(dkey *keyring.Key, all []stored) ([]Request, error) {
	out := make([]Request, 0, len(all))
	for _, st := range all {
		r, err := open(dkey, st)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Filters of List beyond the statuses themselves.
const (
	FilterOpen    = "open"     // not completed nor rejected
	FilterOverdue = "overdue"  // open, past its due date
	FilterDueSoon = "due-soon" // open, due within the due-soon window
)

// Filter selects requests: by status (a Status, or open, overdue,
// due-soon; empty: all), kind (empty: all) and subject (empty: all;
// found through the subject's blind index, as BySubject finds them),
// after the id After, at most Limit (0: DefaultListLimit).
type Filter struct {
	Status  string
	Kind    Kind
	Subject string
	After   string
	Limit   int
}

// DefaultListLimit is List's page size when none is asked for.
const DefaultListLimit = 50

// listScan bounds the requests one List call examines: a page may come
// back short (with Next set) when few match.
const listScan = 10000

// ParseFilterStatus reads a List status filter; anything else is a
// *validation.FieldError on field.
func ParseFilterStatus(field, s string) (string, error) {
	switch s {
	case "", FilterOpen, FilterOverdue, FilterDueSoon:
		return s, nil
	}
	if _, err := ParseStatus(field, s); err != nil {
		return "", validation.Field(field, "must be open, overdue, due-soon or a status (received, verified, in_progress, extended, completed, rejected)")
	}
	return s, nil
}

// match reports whether r passes f at now.
func (s *Service) match(f Filter, r Request, now time.Time) bool {
	if f.Kind != "" && r.Kind != f.Kind {
		return false
	}
	switch f.Status {
	case "":
		return true
	case FilterOpen:
		return r.Status.Open()
	case FilterOverdue:
		return r.Status.Open() && now.After(r.Due)
	case FilterDueSoon:
		return r.Status.Open() && !now.After(r.Due) && !now.Add(s.dueSoon).Before(r.Due)
	}
	return string(r.Status) == f.Status
}

// List returns the requests f selects in order of arrival, and the id to
// continue after ("" at the end).
func (s *Service) List(ctx context.Context, caller audit.Principal, tenant string, f Filter) ([]Request, string, error) {
	if err := callerIn(caller, tenant); err != nil {
		return nil, "", err
	}
	limit, err := validation.PageLimit(f.Limit, DefaultListLimit)
	if err != nil {
		return nil, "", err
	}
	if f.Status, err = ParseFilterStatus("status", f.Status); err != nil {
		return nil, "", err
	}
	if f.Kind != "" {
		if _, err := ParseKind("kind", string(f.Kind)); err != nil {
			return nil, "", err
		}
	}
	if f.After != "" && !validation.ID(f.After) {
		return nil, "", validation.Field("after", "must be a request id")
	}
	var subjectToken string
	if f.Subject != "" {
		if err := checkSubject(f.Subject); err != nil {
			return nil, "", err
		}
		ikey, err := s.keys.IndexKey(ctx, tenant)
		if err != nil {
			return nil, "", err
		}
		subjectToken = token(ikey, f.Subject)
	}
	now := s.clock()
	var (
		page    []stored
		next    string
		scanned int
	)
	err = view(ctx, s.scope(caller, tenant), func(r tenancy.Read) error {
		page, next, scanned = page[:0], "", 0
		var err error
		last := ""
		scan := func(visit func(k, v []byte, _ uint64) bool) {
			if subjectToken == "" {
				r.Scan(requestsPath, []byte(f.After), 0, visit)
				return
			}
			// The subject's list of request ids, in the same order.
			r.Scan(subjectPath(subjectToken), []byte(f.After), 0, func(k, _ []byte, rev uint64) bool {
				v, _, ok := r.Get(requestsPath, k)
				if !ok {
					return true
				}
				return visit(k, v, rev)
			})
		}
		scan(func(k, v []byte, _ uint64) bool {
			if len(page) == limit || scanned == listScan {
				next = last // more follow: continue after the last one examined
				return false
			}
			scanned++
			last = string(k)
			var st stored
			if st, err = decode(string(k), v); err != nil {
				return false
			}
			if s.match(f, st.Request, now) {
				page = append(page, st)
			}
			return true
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	dkey, err := s.keys.DataKey(ctx, tenant, "")
	if err != nil {
		return nil, "", err
	}
	out, err := openAll(dkey, page)
	return out, next, err
}

// Summary is a tenant's requests counted: by status, and the open ones
// by deadline status, with the overdue and due-soon ones listed.
type Summary struct {
	At       time.Time      `json:"at"`
	ByStatus map[Status]int `json:"by_status"`
	Open     int            `json:"open"`
	OnTrack  int            `json:"on_track"`
	DueSoon  int            `json:"due_soon"`
	Overdue  int            `json:"overdue"`
	// OverdueIDs lists the overdue requests, the longest overdue first;
	// DueSoonIDs the due-soon ones, the soonest first.
	OverdueIDs []string `json:"overdue_ids"`
	DueSoonIDs []string `json:"due_soon_ids"`
}

// Summary counts the tenant's requests the caller's scope admits.
func (s *Service) Summary(ctx context.Context, caller audit.Principal, tenant string) (Summary, error) {
	if err := callerIn(caller, tenant); err != nil {
		return Summary{}, err
	}
	return s.summary(ctx, s.scope(caller, tenant))
}

// Tally counts all of the tenant's requests, whatever scope: what a
// metric reads (gauges of open, due-soon and overdue requests per tenant).
func (s *Service) Tally(ctx context.Context, tenant string) (Summary, error) {
	return s.summary(ctx, s.tenancy.Scope(tenant))
}

func (s *Service) summary(ctx context.Context, sc tenancy.Scope) (Summary, error) {
	now := s.clock()
	t := deadline.NewTally[string](now, s.dueSoon)
	sum := Summary{At: now, ByStatus: map[Status]int{}}
	for _, st := range Statuses() {
		sum.ByStatus[st] = 0
	}
	err := view(ctx, sc, func(r tenancy.Read) error {
		var err error
		r.Scan(requestsPath, nil, 0, func(k, v []byte, _ uint64) bool {
			var st stored
			if st, err = decode(string(k), v); err != nil {
				return false
			}
			sum.ByStatus[st.Status]++
			if !st.Status.Open() {
				return true
			}
			var d deadline.Deadline
			if d, err = deadlineOf(st.Request); err != nil {
				return false
			}
			t.Add(st.ID, d)
			return true
		})
		return err
	})
	if err != nil {
		return Summary{}, err
	}
	c := t.Counts()
	sum.OnTrack, sum.DueSoon, sum.Overdue = c.OnTrack, c.DueSoon, c.Overdue
	sum.Open = c.OnTrack + c.DueSoon + c.Overdue
	sum.OverdueIDs, sum.DueSoonIDs = keys(t.Overdue()), keys(t.DueSoon())
	return sum, nil
}

func keys(entries []deadline.Entry[string]) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Key
	}
	return out
}

// TenantSummary is one tenant's Tally, as the alert hook gives it.
type TenantSummary struct {
	Tenant string
	Summary
}

// AlertHook is what the node (or the metrics of a later issue) polls: a
// func that tallies the requests of every tenant ids lists and returns
// those with an overdue or due-soon request. A tenant deleted between the
// listing and its tally is skipped.
func (s *Service) AlertHook(ids func(context.Context) ([]string, error)) func(context.Context) ([]TenantSummary, error) {
	return func(ctx context.Context) ([]TenantSummary, error) {
		list, err := ids(ctx)
		if err != nil {
			return nil, fmt.Errorf("requests: alert hook: %w", err)
		}
		var out []TenantSummary
		for _, id := range list {
			sum, err := s.Tally(ctx, id)
			switch {
			case errors.Is(err, ErrNoTenant):
				continue
			case err != nil:
				return nil, err
			}
			if sum.Overdue > 0 || sum.DueSoon > 0 {
				out = append(out, TenantSummary{Tenant: id, Summary: sum})
			}
		}
		return out, nil
	}
}
