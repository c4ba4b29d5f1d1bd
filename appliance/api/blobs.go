package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/blobs"
)

// Blobs are the tenants' blobs; *blobs.Service implements it.
type Blobs interface {
	Put(ctx context.Context, caller audit.Principal, tenant string, in blobs.Input, body io.Reader) (blobs.Blob, error)
	Open(ctx context.Context, caller audit.Principal, tenant, id string) (*blobs.Content, error)
	Delete(ctx context.Context, caller audit.Principal, tenant, id string) error
	List(ctx context.Context, caller audit.Principal, tenant, subject, after string, limit int) ([]blobs.Blob, string, error)
	Subject(ctx context.Context, caller audit.Principal, tenant, subject string) ([]blobs.Blob, error)
	MaxSize() int64
}

var _ Blobs = (*blobs.Service)(nil)

// headerContentSHA256 carries a blob's SHA-256 (hex) on downloads.
const headerContentSHA256 = "Custos-Content-SHA256"

// uploadTimeout bounds a whole upload; the connection's read deadline,
// extended as data arrives, is what ends a stalled one.
const uploadTimeout = 2 * time.Hour

// boundBody keeps the body limit for every route but the blob upload
// (whose body is streamed to its handler). The server streams request
// bodies (so that uploads need not fit in memory), which means fasthttp no
// longer refuses a large body by itself: this reads at most BodyLimit
// bytes of it and answers 413 beyond. It runs after authentication, so a
// request without a valid token is answered without its body being read
// (the connection is then closed: see bodyUnread).
func (s *server) boundBody(c *fiber.Ctx) error {
	req := c.Request()
	if !req.IsBodyStream() {
		return nil
	}
	limit := s.opts.BodyLimit
	if cl := req.Header.ContentLength(); cl > limit {
		c.Context().SetConnectionClose() // the rest of the body stays unread
		return fiber.ErrRequestEntityTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(c.Context().RequestBodyStream(), int64(limit)+1))
	if err != nil {
		c.Context().SetConnectionClose()
		return badRequest("The request body could not be read.")
	}
	if len(body) > limit {
		c.Context().SetConnectionClose()
		return fiber.ErrRequestEntityTooLarge
	}
	req.SetBodyRaw(body)
	return nil
}

// bodyUnread reports whether part of the request's body may still be on
// the connection: it is still a stream (boundBody replaces it with the
// bytes it read), it is not empty, and no handler read it to its end.
func bodyUnread(c *fiber.Ctx) bool {
	req := c.Request()
	read, _ := c.Locals(bodyReadKey).(bool)
	return req.IsBodyStream() && req.Header.ContentLength() != 0 && !read
}

// deadlineReader extends the connection's read deadline before each read,
// so that a long upload is bounded by how long the client stalls, not by
// how long the whole body takes.
type deadlineReader struct {
	r      io.Reader
	extend func()
}

func (d deadlineReader) Read(p []byte) (int, error) {
	d.extend()
	return d.r.Read(p)
}

// uploadBlob streams the request body into a new blob.
func (s *server) uploadBlob(c *fiber.Ctx, in *input) error {
	err := s.upload(c, in)
	if err != nil {
		// The body may be partly unread: the connection cannot carry
		// another request.
		c.Context().SetConnectionClose()
	}
	return err
}

// checkUpload checks an upload's body before it is read: not compressed,
// and of a length announced in Content-Length. A chunked body is refused:
// fasthttp cannot tell a connection cut between two chunks from the
// body's end, and a cut recording must never be stored as a shorter one.
func checkUpload(c *fiber.Ctx) error {
	if enc := c.Get(fiber.HeaderContentEncoding); enc != "" && !strings.EqualFold(enc, "identity") {
		return &requestError{kind: kindUnsupportedMediaType, detail: "Compressed request bodies are not accepted."}
	}
	if c.Request().Header.ContentLength() < 0 {
		return &requestError{kind: kindLengthRequired, detail: "Blob uploads must announce their size in Content-Length."}
	}
	return nil
}

func (s *server) upload(c *fiber.Ctx, in *input) error {
	tenant, length := in.tenant, c.Request().Header.ContentLength()
	attrs, err := attributesOf(in.strs("attribute"))
	if err != nil {
		return err
	}
	bi := blobs.Input{Subject: in.str("subject"), Collection: in.str("collection"), Record: in.str("record"), Kind: in.str("kind"), Attributes: attrs,
		ContentType: c.Get(fiber.HeaderContentType), Length: int64(length), SHA256: c.Get(headerContentSHA256)}
	var body io.Reader
	if stream := c.Context().RequestBodyStream(); stream != nil {
		conn := c.Context().Conn()
		body = deadlineReader{r: stream, extend: func() { _ = conn.SetReadDeadline(time.Now().Add(readTimeout)) }}
	} else {
		body = bytes.NewReader(c.Request().Body())
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), uploadTimeout)
	defer cancel()
	b, err := s.deps.Blobs.Put(ctx, in.who, tenant, bi, body)
	if err != nil {
		return fmt.Errorf("api: upload blob to %q: %w", tenant, err)
	}
	c.Locals(bodyReadKey, true) // Put read exactly Content-Length bytes
	c.Location("/v1/tenants/" + tenant + "/blobs/" + b.ID)
	return c.Status(fiber.StatusCreated).JSON(b)
}

// attributesOf are an upload's attributes, given as attribute=name:value
// (repeated): nil when none is given (a blob linked to a record then
// inherits the record's); a name given twice is refused. The service
// checks names and values as a record's.
func attributesOf(given []string) (map[string]string, error) {
	if len(given) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(given))
	for _, a := range given {
		name, value, _ := strings.Cut(a, ":")
		if _, dup := out[name]; dup {
			return nil, invalidParam("attribute", "names "+clip(name)+" twice")
		}
		out[name] = value
	}
	return out, nil
}

type listBlobsResponse struct {
	Blobs []blobs.Blob `json:"blobs"`
	Next  string       `json:"next,omitempty"`
}

func (s *server) listBlobs(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	list, next, err := s.deps.Blobs.List(ctx, in.who, in.tenant, in.str("subject"), in.str("after"), in.int("limit"))
	if err != nil {
		return fmt.Errorf("api: list blobs of %q: %w", in.tenant, err)
	}
	return c.JSON(listBlobsResponse{Blobs: list, Next: next})
}

func (s *server) blobMetadata(c *fiber.Ctx, in *input) error {
	tenant, id := in.tenant, in.str("bid")
	ctx, cancel := s.callContext(c)
	defer cancel()
	content, err := s.deps.Blobs.Open(ctx, in.who, tenant, id)
	if err != nil {
		return fmt.Errorf("api: blob %q of %q: %w", id, tenant, err)
	}
	if content.SHA256 != "" { // left out for a role that does not read the content
		c.Set(fiber.HeaderETag, `"`+content.SHA256+`"`)
	}
	return c.JSON(content.Blob)
}

// getBlob serves a blob's content, or one byte range of it (RFC 9110
// section 14: a single range; a malformed or multi-range header is ignored
// and the whole blob served, as the RFC allows). HEAD answers the headers
// only and is not audited; every GET is, before the first byte. A caller
// whose role does not read blob content gets 403 withheld for both (its
// blobs:read reads the metadata route).
func (s *server) getBlob(c *fiber.Ctx, in *input) error {
	tenant, id := in.tenant, in.str("bid")
	ctx, cancel := s.callContext(c)
	defer cancel()
	content, err := s.deps.Blobs.Open(ctx, in.who, tenant, id)
	if err != nil {
		return fmt.Errorf("api: blob %q of %q: %w", id, tenant, err)
	}
	if err := content.Readable(ctx, in.who); err != nil {
		return fmt.Errorf("api: blob %q of %q: %w", id, tenant, err)
	}
	b := content.Blob
	c.Set(fiber.HeaderContentType, b.ContentType)
	c.Set(fiber.HeaderAcceptRanges, "bytes")
	c.Set(fiber.HeaderETag, `"`+b.SHA256+`"`)
	c.Set(headerContentSHA256, b.SHA256)
	if c.Method() == fiber.MethodHead {
		c.Response().Header.SetContentLength(int(b.Size))
		c.Response().SkipBody = true
		return nil
	}
	off, n, partial, err := blobRange(c, b)
	if err != nil {
		return err
	}
	conn := c.Context().Conn()
	r, err := content.Reader(ctx, in.who, off, n, func() { _ = conn.SetWriteDeadline(time.Now().Add(writeTimeout)) })
	if err != nil {
		return fmt.Errorf("api: read blob %q of %q: %w", b.ID, tenant, err)
	}
	if partial {
		c.Status(fiber.StatusPartialContent)
		c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, b.Size))
	}
	c.Context().SetBodyStream(r, int(n))
	return nil
}

// blobRange reads the Range header: the offset and length to serve, and
// whether that is a part. If-Range with another ETag asks for the whole.
func blobRange(c *fiber.Ctx, b blobs.Blob) (off, n int64, partial bool, err error) {
	h := c.Get(fiber.HeaderRange)
	if h == "" {
		return 0, b.Size, false, nil
	}
	if ir := c.Get(fiber.HeaderIfRange); ir != "" && ir != `"`+b.SHA256+`"` {
		return 0, b.Size, false, nil
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, b.Size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, b.Size, false, nil
	}
	unsatisfiable := func() (int64, int64, bool, error) {
		c.Set(fiber.HeaderContentRange, fmt.Sprintf("bytes */%d", b.Size))
		return 0, 0, false, &requestError{kind: kindRangeNotSatisfiable, detail: fmt.Sprintf("The range is outside the blob (%d bytes).", b.Size)}
	}
	if first == "" { // suffix: the last n bytes
		k, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || k < 0 {
			return 0, b.Size, false, nil
		}
		if k == 0 || b.Size == 0 {
			return unsatisfiable()
		}
		k = min(k, b.Size)
		return b.Size - k, k, true, nil
	}
	a, perr := strconv.ParseInt(first, 10, 64)
	if perr != nil || a < 0 {
		return 0, b.Size, false, nil
	}
	end := b.Size - 1
	if last != "" {
		e, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || e < a {
			return 0, b.Size, false, nil
		}
		end = min(e, b.Size-1)
	}
	if a >= b.Size {
		return unsatisfiable()
	}
	return a, end - a + 1, true, nil
}

func (s *server) deleteBlob(c *fiber.Ctx, in *input) error {
	tenant, id := in.tenant, in.str("bid")
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.Blobs.Delete(ctx, in.who, tenant, id); err != nil {
		return fmt.Errorf("api: delete blob %q of %q: %w", id, tenant, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}
