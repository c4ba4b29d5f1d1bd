package ui

import (
	"bufio"
	"bytes"
	"context"
	"io"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/internal/firstbyte"
)

// auditCheckpointDownload sends the chain's latest signed checkpoint, the
// API's bytes, as a file to keep: a later verification (the verify page's
// "kept checkpoint", or `custos audit verify --checkpoint`) proves the log
// still extends it.
func (u *UI) auditCheckpointDownload(r *req) error {
	view := r.auditChain()
	var b bytes.Buffer
	if err := r.api.AuditCheckpoint(r.ctx, view.Tenant, &b); err != nil {
		return err
	}
	r.c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
	r.c.Set(fiber.HeaderContentDisposition, `attachment; filename="audit-checkpoint-`+fileSafe(view.Chain)+`.txt"`)
	r.c.Set(fiber.HeaderCacheControl, "no-store")
	return r.c.Send(b.Bytes())
}

// auditExportDownload streams the API's export bundle of the chain (from
// and to: days, YYYY-MM-DD, inclusive) as a download. The API writes the
// audit.export entry, with the person as its actor, before the first byte.
func (u *UI) auditExportDownload(r *req) error {
	view := r.auditChain()
	f := auditFilter{From: clip(r.c.FormValue("from"), 10), To: clip(r.c.FormValue("to"), 10)}
	af, err := f.api()
	if err != nil {
		return err
	}
	return r.stream("application/gzip", "audit-"+fileSafe(view.Chain)+".tar.gz", func(ctx context.Context, w io.Writer) error {
		return r.api.AuditExport(ctx, view.Tenant, af.From, af.To, w)
	})
}

// stream sends what fetch writes as a download named name. An error
// before the first byte is the page's error (the API's problem); a later
// one cuts the download short, as the API's own stream does.
func (r *req) stream(ctype, name string, fetch func(context.Context, io.Writer) error) error {
	ctx := r.ctx
	body, err := firstbyte.Start(func(w io.Writer) error { return fetch(ctx, w) })
	if err != nil {
		return err
	}
	r.c.Set(fiber.HeaderContentType, ctype)
	r.c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	r.c.Set(fiber.HeaderCacheControl, "no-store")
	log, id := r.u.log, r.id
	r.c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer body.Close()
		if err := firstbyte.Pump(w, body); err != nil {
			log.Warn("ui: download cut short", "request_id", id, "file", name, "error", err)
		}
	})
	return nil
}

// fileSafe makes a chain's name a file name's part: a-z 0-9 and '-'.
func fileSafe(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}
