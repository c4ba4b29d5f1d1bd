package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/tenants"
	"github.com/custos/custos/raftstore"
)

// Audit is the audit log; *audit.Service implements it.
type Audit interface {
	Append(ctx context.Context, chain string, e audit.Entry) error
	List(ctx context.Context, c raftstore.Consistency, chain string, f audit.Filter, after uint64, limit int) ([]audit.Item, uint64, error)
	Latest(ctx context.Context, c raftstore.Consistency, chain string) ([]byte, error)
	ProveInclusion(ctx context.Context, chain string, index, size uint64) (audit.Proof, error)
	ProveConsistency(ctx context.Context, chain string, old, size uint64) (audit.Proof, error)
	Export(ctx context.Context, chain string, from, to time.Time, w io.Writer) error
	VerifierKey(ctx context.Context) (string, error)
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

// auditQuery holds the validated query of an audit route.
type auditQuery struct {
	filter      audit.Filter
	after       uint64
	limit       int
	index, size uint64
	old         uint64
	consistency raftstore.Consistency
}

// parseAuditQuery validates the query string of an audit route: only the
// parameters in allowed, each at most once.
func parseAuditQuery(c *fiber.Ctx, allowed ...string) (auditQuery, error) {
	q := auditQuery{limit: 100, consistency: raftstore.Linearizable}
	var err error
	seen := map[string]bool{}
	uintParam := func(key, val string, min uint64) uint64 {
		n, perr := strconv.ParseUint(val, 10, 64)
		if perr != nil || n < min {
			err = invalidParam(key, fmt.Sprintf("must be an integer of at least %d", min))
		}
		return n
	}
	timeParam := func(key, val string) time.Time {
		t, perr := time.Parse(time.RFC3339Nano, val)
		if perr != nil {
			err = invalidParam(key, "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
		return t
	}
	textParam := func(key, val string) string {
		if val == "" || len(val) > 256 {
			err = invalidParam(key, "must be 1 to 256 bytes")
		}
		return val
	}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		key, val := string(k), string(v)
		switch {
		case !slices.Contains(allowed, key):
			err = invalidParam(key, "is not accepted by this endpoint")
			return
		case seen[key]:
			err = invalidParam(key, "must be given at most once")
			return
		}
		seen[key] = true
		switch key {
		case "limit":
			n := uintParam(key, val, 1)
			if err == nil && n > 1000 {
				err = invalidParam("limit", "must be between 1 and 1000")
			}
			q.limit = int(n)
		case "after":
			q.after = uintParam(key, val, 0)
		case "index":
			q.index = uintParam(key, val, 0)
		case "size", "new", "version":
			q.size = uintParam(key, val, 1)
		case "old":
			q.old = uintParam(key, val, 1)
		case "from":
			q.filter.From = timeParam(key, val)
		case "to":
			q.filter.To = timeParam(key, val)
		case "actor":
			q.filter.Actor = textParam(key, val)
		case "action":
			q.filter.Action = textParam(key, val)
		case "target":
			q.filter.Target = textParam(key, val)
		case "stale":
			stale, perr := strconv.ParseBool(val)
			if perr != nil {
				err = invalidParam("stale", "must be true or false")
			}
			if stale {
				q.consistency = raftstore.Stale
			}
		}
	})
	if err == nil && !q.filter.From.IsZero() && !q.filter.To.IsZero() && q.filter.To.Before(q.filter.From) {
		err = invalidParam("to", "must not be before from")
	}
	if err == nil && slices.Contains(allowed, "index") && !seen["index"] {
		err = invalidParam("index", "is required")
	}
	if err == nil && slices.Contains(allowed, "old") && !seen["old"] {
		err = invalidParam("old", "is required")
	}
	return q, err
}

// chainOf resolves the chain of an audit route: the system chain under
// /v1/sys, a tenant's under /v1/tenants/:id. A tenant's chain outlives the
// tenant (retention), so a deleted tenant's log can still be exported.
func (s *server) chainOf(c *fiber.Ctx) (string, error) {
	if c.Params("id") == "" {
		return audit.SystemChain, nil
	}
	id, err := tenantID(c)
	if err != nil {
		return "", err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	if _, err := s.deps.Tenants.Get(ctx, raftstore.Linearizable, id); err != nil {
		if !errors.Is(err, tenants.ErrNotFound) {
			return "", fmt.Errorf("api: audit of %q: %w", id, err)
		}
		items, _, lerr := s.deps.Audit.List(ctx, raftstore.Linearizable, audit.TenantChain(id), audit.Filter{}, 0, 1)
		if lerr != nil || len(items) == 0 {
			return "", fmt.Errorf("api: audit of %q: %w", id, err)
		}
	}
	return audit.TenantChain(id), nil
}

type auditListResponse struct {
	Entries []audit.Item `json:"entries"`
	Next    uint64       `json:"next,omitempty"`
}

func (s *server) listAudit(c *fiber.Ctx) error {
	q, err := parseAuditQuery(c, "after", "limit", "from", "to", "actor", "action", "target", "stale")
	if err != nil {
		return err
	}
	if err := decodeBody(c, &noBody{}, false); err != nil {
		return err
	}
	chain, err := s.chainOf(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	items, next, err := s.deps.Audit.List(ctx, q.consistency, chain, q.filter, q.after, q.limit)
	if err != nil {
		return fmt.Errorf("api: list audit of %s: %w", chain, err)
	}
	return c.JSON(auditListResponse{Entries: items, Next: next})
}

// checkpoint answers the chain's latest signed checkpoint as text.
func (s *server) auditCheckpoint(c *fiber.Ctx) error {
	if err := s.noInput(c); err != nil {
		return err
	}
	chain, err := s.chainOf(c)
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

func (s *server) auditInclusion(c *fiber.Ctx) error {
	q, err := parseAuditQuery(c, "index", "size")
	if err != nil {
		return err
	}
	if err := decodeBody(c, &noBody{}, false); err != nil {
		return err
	}
	chain, err := s.chainOf(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	p, err := s.deps.Audit.ProveInclusion(ctx, chain, q.index, q.size)
	if err != nil {
		return fmt.Errorf("api: inclusion proof: %w", err)
	}
	return c.JSON(p)
}

func (s *server) auditConsistency(c *fiber.Ctx) error {
	q, err := parseAuditQuery(c, "old", "new")
	if err != nil {
		return err
	}
	if err := decodeBody(c, &noBody{}, false); err != nil {
		return err
	}
	chain, err := s.chainOf(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	p, err := s.deps.Audit.ProveConsistency(ctx, chain, q.old, q.size)
	if err != nil {
		return fmt.Errorf("api: consistency proof: %w", err)
	}
	return c.JSON(p)
}

// auditExport streams a bundle (gzip'd tar). Errors found before the first
// byte are problems; later ones cut the stream short, which the verifier
// reports as a truncated bundle.
func (s *server) auditExport(c *fiber.Ctx) error {
	q, err := parseAuditQuery(c, "from", "to")
	if err != nil {
		return err
	}
	if err := decodeBody(c, &noBody{}, false); err != nil {
		return err
	}
	chain, err := s.chainOf(c)
	if err != nil {
		return err
	}
	// Export into a pipe; the first write decides between a problem and a
	// stream.
	ctx, cancel := context.WithTimeout(context.Background(), exportTimeout)
	pr, pw := io.Pipe()
	first := make(chan error, 1)
	go func() {
		defer cancel()
		fw := &firstWrite{w: pw, first: first}
		err := s.deps.Audit.Export(ctx, chain, q.filter.From, q.filter.To, fw)
		if !fw.started {
			first <- err
		}
		pw.CloseWithError(err)
	}()
	if err := <-first; err != nil {
		pr.Close()
		return fmt.Errorf("api: export %s: %w", chain, err)
	}
	c.Set(fiber.HeaderContentType, "application/gzip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="audit-`+safeName(chain)+`.tar.gz"`)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer pr.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := pr.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if werr := w.Flush(); werr != nil {
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					s.log.Warn("audit export cut short", "chain", chain, "error", err)
				}
				return
			}
		}
	})
	return nil
}

// firstWrite reports on first whether the export started writing.
type firstWrite struct {
	w       io.Writer
	first   chan error
	started bool
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if !f.started {
		f.started = true
		f.first <- nil
	}
	return f.w.Write(p)
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
func (s *server) auditKey(c *fiber.Ctx) error {
	if err := s.noInput(c); err != nil {
		return err
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	k, err := s.deps.Audit.VerifierKey(ctx)
	if err != nil {
		return fmt.Errorf("api: audit key: %w", err)
	}
	c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
	return c.SendString(k + "\n")
}

func (s *server) auditSelfCheck(c *fiber.Ctx) error {
	if err := s.noInput(c); err != nil {
		return err
	}
	rep := s.deps.SelfCheck.LastCheck()
	if rep == nil {
		return &requestError{kind: kindNotFound, detail: "No self-check has run on this node yet."}
	}
	return c.JSON(rep)
}

// auditRequested writes the system-chain entry of a change that is not a
// store transaction (membership), before it is made: if the entry cannot
// be written, the change is refused.
func (s *server) auditRequested(c *fiber.Ctx, action, target string) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	e := s.caller(c).Entry(time.Now().UTC(), action, target, audit.OutcomeRequested, nil)
	if err := s.deps.Audit.Append(ctx, audit.SystemChain, e); err != nil {
		return fmt.Errorf("api: audit %s: %w", action, err)
	}
	return nil
}
