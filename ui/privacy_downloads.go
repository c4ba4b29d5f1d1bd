package ui

import (
	"context"
	"io"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// The privacy area's downloads: an erasure's signed receipt and an
// export's archive, both read from the API as the signed-in person.

// downloadReceipt sends the erasure's signed receipt as the file `custos
// dsr verify-receipt` checks, byte for byte what the API holds.
func (u *UI) downloadReceipt(r *req) error {
	t, id := r.tenant(), r.param("rid")
	e, err := r.api.ErasureReceipt(r.ctx, t, id)
	if err != nil {
		return err
	}
	r.c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
	r.c.Set(fiber.HeaderContentDisposition, attachment(id+".receipt"))
	r.c.Set(fiber.HeaderCacheControl, "no-store")
	return r.c.SendString(e.Receipt)
}

// downloadExport streams an export's archive from the API to the
// browser: the stored export is read once its metadata says it exists,
// then piped through without being held in memory (r.stream: an error
// before the first byte is still a page).
func (u *UI) downloadExport(r *req) error {
	t, id := r.tenant(), r.param("eid")
	xs, err := r.api.Exports(r.ctx, t)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(xs, func(x client.Export) bool { return x.ID == id })
	if i < 0 {
		return &userError{status: fiber.StatusNotFound, title: "Not found", detail: "There is no export " + clip(id, 64) + ": it may have expired (an export is kept for a limited time)."}
	}
	x := xs[i]
	r.c.Set("X-Content-SHA256", x.SHA256)
	return r.stream("application/octet-stream", safeName(x.FileName), func(ctx context.Context, w io.Writer) error {
		return r.api.DownloadExport(ctx, t, id, w)
	})
}

// attachment is a Content-Disposition naming a file (its name reduced to
// safe characters).
func attachment(name string) string { return `attachment; filename="` + safeName(name) + `"` }

// safeName is a file name reduced to a-z A-Z 0-9 . - _ (others become _).
func safeName(name string) string {
	safe := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
			return c
		}
		return '_'
	}, name)
	if safe == "" {
		safe = "download"
	}
	return safe
}
