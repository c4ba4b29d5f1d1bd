package api

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/privacy/erasure"
)

// Erasure carries out erasure requests and keeps the erasure ledger;
// *erasure.Service implements it.
type Erasure interface {
	Erase(ctx context.Context, caller audit.Principal, tenant, id string) (erasure.Entry, error)
	Get(ctx context.Context, tenant, id string) (erasure.Entry, bool, error)
	Receipt(ctx context.Context, tenant, id string) (string, error)
	Ledger(ctx context.Context, tenant string) ([]erasure.Entry, error)
}

var _ Erasure = (*erasure.Service)(nil)

// eraseTimeout is the least an erasure's call is given: a subject with
// tens of thousands of records takes a few seconds.
const eraseTimeout = time.Minute

// erasureOf is a ledger entry as the API shows it (without the token
// that locates the subject again: that is for a restore).
func erasureOf(e erasure.Entry) client.Erasure {
	return client.Erasure{Request: e.Request, Subject: e.Subject, Erased: e.Erased, KeyShredded: e.KeyShredded,
		Counts: e.Counts, AuditEntry: e.AuditSeq, Receipt: e.Receipt}
}

// eraseRequest carries out an erasure request and answers its receipt.
// A long erasure may take longer than one request's deadline: the call
// gets the route's own (eraseTimeout), and a retry finishes what is left.
func (s *server) eraseRequest(c *fiber.Ctx, in *input) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), max(s.opts.RequestTimeout, eraseTimeout))
	defer cancel()
	e, err := s.deps.Erasure.Erase(ctx, in.who, in.tenant, in.str("rid"))
	if err != nil {
		return fmt.Errorf("api: erase request %q of %q: %w", in.str("rid"), in.tenant, err)
	}
	return c.JSON(erasureOf(e))
}

// getErasureReceipt answers the erasure of a request with its receipt.
func (s *server) getErasureReceipt(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	id := in.str("rid")
	if _, err := s.deps.Erasure.Receipt(ctx, in.tenant, id); err != nil {
		return fmt.Errorf("api: receipt of %q of %q: %w", id, in.tenant, err)
	}
	e, found, err := s.deps.Erasure.Get(ctx, in.tenant, id)
	if err != nil || !found {
		return fmt.Errorf("api: receipt of %q of %q: %w", id, in.tenant, firstNonNil(err, erasure.ErrNotFound))
	}
	return c.JSON(erasureOf(e))
}

func firstNonNil(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// listErasures answers the tenant's erasure ledger.
func (s *server) listErasures(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	list, err := s.deps.Erasure.Ledger(ctx, in.tenant)
	if err != nil {
		return fmt.Errorf("api: erasures of %q: %w", in.tenant, err)
	}
	out := client.ErasureList{Erasures: make([]client.Erasure, 0, len(list))}
	for _, e := range list {
		out.Erasures = append(out.Erasures, erasureOf(e))
	}
	return c.JSON(out)
}
