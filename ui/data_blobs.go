package ui

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/records"
)

// blobPageSize is how many blobs the list shows.
const blobPageSize = 25

// blobsData is the blobs page's.
type blobsData struct {
	Blobs       []client.Blob
	Subject     string
	Next, First string
	// Kinds are the tenant's blob kinds, for the upload form (nil when
	// the role may not read them).
	Kinds []client.BlobKind
	// The upload form's values and the API's refusal.
	UpSubject, UpKind string
	Error             *client.Problem
}

func (u *UI) blobsPage(r *req) error {
	d, err := u.blobsView(r)
	if err != nil {
		return err
	}
	return r.render(fiber.StatusOK, "blobs_list", "Recordings & files", d)
}

// blobsView reads a page of blobs (of the ?subject= when given).
func (u *UI) blobsView(r *req) (*blobsData, error) {
	t := r.tenant()
	subject := strings.TrimSpace(r.c.Query("subject"))
	if subject != "" && !records.ValidID(subject) {
		return nil, badForm("A subject id is 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'.")
	}
	after := clip(r.c.Query("after"), 128)
	page, err := r.api.Blobs(r.ctx, t, subject, blobPageSize, after)
	if err != nil {
		return nil, err
	}
	d := &blobsData{Blobs: page.Blobs, Subject: subject}
	base := "/ui/t/" + urlPathEscape(t) + "/blobs"
	if page.Next != "" {
		d.Next = base + qs("subject", subject, "after", page.Next)
	}
	if after != "" {
		d.First = base + qs("subject", subject)
	}
	if u.may(r.v, "GET", "/tenants/:id/blob-kinds") {
		if d.Kinds, err = r.api.BlobKinds(r.ctx, t); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// blobData is a blob's page.
type blobData struct {
	B client.Blob
	// Media is "audio" or "video" when the browser plays the content in
	// the page.
	Media string
}

func (u *UI) blobPage(r *req) error {
	b, err := r.api.BlobMetadata(r.ctx, r.tenant(), r.c.Params("bid"))
	if err != nil {
		return err
	}
	d := blobData{B: b}
	if u.may(r.v, "GET", "/tenants/:id/blobs/:bid") {
		d.Media = mediaOf(b.ContentType)
	}
	return r.render(fiber.StatusOK, "blobs_blob", "Blob "+b.ID, d)
}

// mediaOf is the element a content type plays in ("" = none: offered
// as a download).
func mediaOf(contentType string) string {
	base, _, _ := strings.Cut(contentType, ";")
	switch kind, _, _ := strings.Cut(strings.TrimSpace(strings.ToLower(base)), "/"); kind {
	case "audio", "video":
		return kind
	}
	return ""
}

// blobContent proxies the API's download of a blob, passing the
// browser's Range and If-Range so that a player seeks (206 with
// Content-Range; 416 outside the blob). The API audits each read.
func (u *UI) blobContent(r *req) error {
	s, err := r.api.OpenBlob(r.ctx, r.tenant(), r.c.Params("bid"), r.c.Get(fiber.HeaderRange), r.c.Get(fiber.HeaderIfRange))
	if err != nil {
		return err
	}
	for _, h := range []string{fiber.HeaderContentType, fiber.HeaderContentRange, fiber.HeaderAcceptRanges, fiber.HeaderETag} {
		if v := s.Header.Get(h); v != "" {
			r.c.Set(h, v)
		}
	}
	r.c.Set(fiber.HeaderCacheControl, "private, no-store")
	// Content of this origin the tenant's users uploaded: media play in
	// an element; anything else is a download of no type a browser
	// would run (nosniff holds it to that), never a page or a script.
	if mediaOf(s.Header.Get(fiber.HeaderContentType)) == "" {
		r.c.Set(fiber.HeaderContentType, "application/octet-stream")
		r.c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+blobFileName(r.c.Params("bid"))+`"`)
	}
	// The UI's policy (issue 15: every response carries it; it forbids
	// framing, which default-src does not cover) and a sandbox: opened
	// as a document, the content runs no script and has no origin.
	r.c.Set("Content-Security-Policy", contentSecurityPolicy+"; sandbox")
	r.c.Status(s.Status)
	if s.Status == fiber.StatusRequestedRangeNotSatisfiable {
		s.Body.Close()
		return nil
	}
	n := -1
	if s.Length >= 0 {
		n = int(s.Length)
	}
	r.c.Context().SetBodyStream(s.Body, n) // fasthttp closes it once sent
	return nil
}

// blobFileName is a download's file name: the blob's id (an id is of a
// safe alphabet already; anything else is dropped).
func blobFileName(id string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			return c
		}
		return -1
	}, id)
}

// deleteBlob deletes a blob after the person typed its id (the form's
// confirmation; app.js asks too).
func (u *UI) deleteBlob(r *req) error {
	t, id := r.tenant(), r.c.Params("bid")
	if strings.TrimSpace(r.c.FormValue("confirm")) != id {
		return badForm("Type the blob's id to confirm its deletion.")
	}
	if err := r.api.DeleteBlob(r.ctx, t, id); err != nil {
		return err
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/blobs", "Blob "+id+" deleted.")
}
