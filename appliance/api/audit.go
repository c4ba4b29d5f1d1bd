package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/internal/firstbyte"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// Audit is the audit log; *audit.Service implements it.
type Audit interface {
	Append(ctx context.Context, chain string, e audit.Entry) error
	List(ctx context.Context, c raftstore.Consistency, chain string, f audit.Filter, after uint64, limit int) ([]audit.Item, uint64, error)
	ListBefore(ctx context.Context, c raftstore.Consistency, chain string, f audit.Filter, before uint64, limit int) ([]audit.Item, uint64, error)
	Latest(ctx context.Context, c raftstore.Consistency, chain string) ([]byte, error)
	ProveInclusion(ctx context.Context, chain string, index, size uint64) (audit.Proof, error)
	ProveConsistency(ctx context.Context, chain string, old, size uint64) (audit.Proof, error)
	Export(ctx context.Context, chain string, from, to time.Time, w io.Writer) error
	VerifierKey(ctx context.Context) (string, error)
	Stats(ctx context.Context, c raftstore.Consistency, chain string, from, to time.Time) ([]audit.DayCount, error)
}

// SelfCheck reports the node's latest audit self-check; *audit.Runner
// implements it.
type SelfCheck interface {
	LastCheck() *audit.CheckReport
}

var (
	_ Audit     = (*audit.Service)(nil)
	_ SelfCheck = (*audit.Runner)(nil)
)

// exportTimeout bounds an export (it streams a whole chain).
const exportTimeout = 10 * time.Minute

// chainOf resolves the chain of an audit route: the system chain under
// /v1/sys, a tenant's under /v1/tenants/:id. A tenant's chain outlives the
// tenant (retention), so a deleted tenant's log can still be exported. A
// principal with attribute scopes is refused a tenant's chain (see the
// package doc).
func (s *server) chainOf(c *fiber.Ctx, in *input) (string, error) {
	if _, tenant := in.rt.param("id"); !tenant {
		return tenancy.SystemChain, nil
	}
	id := in.str("id")
	if len(in.who.Scopes) > 0 {
		return "", &requestError{kind: kindForbidden, detail: "A principal with attribute scopes cannot read the tenant's audit chain: it covers items outside its scopes."}
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	if _, err := s.deps.Tenants.Get(ctx, raftstore.Linearizable, id); err != nil {
		if !errors.Is(err, tenants.ErrNotFound) {
			return "", fmt.Errorf("api: audit of %q: %w", id, err)
		}
		items, _, lerr := s.deps.Audit.List(ctx, raftstore.Linearizable, tenancy.ChainOf(id), audit.Filter{}, 0, 1)
		if lerr != nil || len(items) == 0 {
			return "", fmt.Errorf("api: audit of %q: %w", id, err)
		}
	}
	return tenancy.ChainOf(id), nil
}

type auditListResponse struct {
	Entries []audit.Item `json:"entries"`
	Next    uint64       `json:"next,omitempty"`
}

func (s *server) listAudit(c *fiber.Ctx, in *input) error {
	chain, err := s.chainOf(c, in)
	if err != nil {
		return err
	}
	f := audit.Filter{From: in.time("from"), To: in.time("to"), Actor: in.str("actor"), Action: in.str("action"), Target: in.str("target")}
	ctx, cancel := s.callContext(c)
	defer cancel()
	list := s.deps.Audit.List
	cursor := in.uint("after")
	if in.flag("newest") {
		list, cursor = s.deps.Audit.ListBefore, in.uint("before")
	}
	items, next, err := list(ctx, consistency(in), chain, f, cursor, in.int("limit"))
	if err != nil {
		return fmt.Errorf("api: list audit of %s: %w", chain, err)
	}
	return c.JSON(auditListResponse{Entries: items, Next: next})
}

type auditStatsResponse struct {
	From   string           `json:"from"`
	To     string           `json:"to"`
	Counts []audit.DayCount `json:"counts"`
}

// auditStats answers the chain's entries per day and action over the
// last days days (today, UTC, included), from the counters the store
// keeps at append time: a handful of reads on any chain (audit.Stats).
func (s *server) auditStats(c *fiber.Ctx, in *input) error {
	chain, err := s.chainOf(c, in)
	if err != nil {
		return err
	}
	to := time.Now().UTC()
	from := to.AddDate(0, 0, 1-in.int("days"))
	ctx, cancel := s.callContext(c)
	defer cancel()
	counts, err := s.deps.Audit.Stats(ctx, consistency(in), chain, from, to)
	if err != nil {
		return fmt.Errorf("api: audit stats of %s: %w", chain, err)
	}
	return c.JSON(auditStatsResponse{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Counts: counts})
}

// checkpoint answers the chain's latest signed checkpoint as text.
func (s *server) auditCheckpoint(c *fiber.Ctx, in *input) error {
	chain, err := s.chainOf(c, in)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	msg, err := s.deps.Audit.Latest(ctx, raftstore.Linearizable, chain)
	if err != nil {
		return fmt.Errorf("api: checkpoint of %s: %w", chain, err)
	}
	if msg == nil {
		return &requestError{kind: kindNotFound, detail: "The chain has no signed checkpoint yet; they are signed at least every minute."}
	}
	c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
	return c.Send(msg)
}

func (s *server) auditInclusion(c *fiber.Ctx, in *input) error {
	chain, err := s.chainOf(c, in)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	p, err := s.deps.Audit.ProveInclusion(ctx, chain, in.uint("index"), in.uint("size"))
	if err != nil {
		return fmt.Errorf("api: inclusion proof: %w", err)
	}
	return c.JSON(p)
}

func (s *server) auditConsistency(c *fiber.Ctx, in *input) error {
	chain, err := s.chainOf(c, in)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	p, err := s.deps.Audit.ProveConsistency(ctx, chain, in.uint("old"), in.uint("new"))
	if err != nil {
		return fmt.Errorf("api: consistency proof: %w", err)
	}
	return c.JSON(p)
}

// auditExport streams a bundle (gzip'd tar). Errors found before the first
// byte are problems; later ones cut the stream short, which the verifier
// reports as a truncated bundle.
func (s *server) auditExport(c *fiber.Ctx, in *input) error {
	from, to := in.time("from"), in.time("to")
	chain, err := s.chainOf(c, in)
	if err != nil {
		return err
	}
	// Taking the log out is itself on record: the entry is committed in
	// the chain exported before a byte of it is sent (no entry, no
	// export), so the bundle that follows holds it.
	tenant := ""
	if _, ok := in.rt.param("id"); ok {
		tenant = in.str("id")
	}
	if err := s.auditExported(c, in.who, chain, tenant, from, to); err != nil {
		return err
	}
	// The first write decides between a problem and a stream.
	ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
	body, err := firstbyte.Start(func(w io.Writer) error {
		defer cancel()
		return s.deps.Audit.Export(ctx, chain, from, to, w)
	})
	if err != nil {
		return fmt.Errorf("api: export %s: %w", chain, err)
	}
	c.Set(fiber.HeaderContentType, "application/gzip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="audit-`+safeName(chain)+`.tar.gz"`)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer body.Close()
		if err := firstbyte.Pump(w, body); err != nil {
			s.log.Warn("audit export cut short", "chain", chain, "error", err)
		}
	})
	return nil
}

// auditExported writes the audit.export entry of an export of chain by
// who, with the range asked (each end omitted when open).
func (s *server) auditExported(c *fiber.Ctx, who audit.Principal, chain, tenant string, from, to time.Time) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	details := map[string]string{}
	if !from.IsZero() {
		details["from"] = from.UTC().Format(time.RFC3339Nano)
	}
	if !to.IsZero() {
		details["to"] = to.UTC().Format(time.RFC3339Nano)
	}
	target := "chain:system"
	if chain != tenancy.SystemChain {
		target = tenancy.AuditTarget(tenant)
	}
	e := who.Entry(time.Now().UTC(), "audit.export", target, audit.OutcomeSuccess, details)
	if err := s.deps.Audit.Append(ctx, chain, e); err != nil {
		return fmt.Errorf("api: audit the export of %s: %w", chain, err)
	}
	return nil
}

func safeName(chain string) string {
	b := []byte(chain)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}

// auditKey serves the checkpoint verifier key; it is public, so it needs
// no token.
func (s *server) auditKey(c *fiber.Ctx, _ *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	k, err := s.deps.Audit.VerifierKey(ctx)
	if err != nil {
		return fmt.Errorf("api: audit key: %w", err)
	}
	c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
	return c.SendString(k + "\n")
}

func (s *server) auditSelfCheck(c *fiber.Ctx, _ *input) error {
	rep := s.deps.SelfCheck.LastCheck()
	if rep == nil {
		return &requestError{kind: kindNotFound, detail: "No self-check has run on this node yet."}
	}
	return c.JSON(rep)
}

// auditRequested writes the system-chain entry of a change that is not a
// store transaction (membership), before it is made: if the entry cannot
// be written, the change is refused.
func (s *server) auditRequested(c *fiber.Ctx, who audit.Principal, action, target string) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	e := who.Entry(time.Now().UTC(), action, target, audit.OutcomeRequested, nil)
	if err := s.deps.Audit.Append(ctx, tenancy.SystemChain, e); err != nil {
		return fmt.Errorf("api: audit %s: %w", action, err)
	}
	return nil
}
