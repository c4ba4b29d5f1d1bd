package ui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/records"
)

// The upload form is multipart/form-data, streamed: the browser's file
// goes to the API's blob upload as it arrives, never buffered whole nor
// written to a temporary file (a recording is personal data; fasthttp's
// form parser would spool large parts to disk in the clear). The API
// needs the blob's size up front (Content-Length: it refuses a chunked
// upload, which could be cut unnoticed), which a multipart body does not
// state: the file is the form's last part, so its size is the request's
// Content-Length less what came before the file's bytes and the closing
// delimiter after them. What follows the file is checked once it is
// sent; a body that does not end with exactly that delimiter (a browser
// that ends it otherwise, a cut connection) has its blob deleted and the
// upload refused.

// Upload form limits.
const (
	maxUploadFields = 16   // text fields before the file
	maxUploadField  = 4096 // bytes of a text field
	maxUploadLine   = 1024 // bytes of a part's header line
	maxUploadHeads  = 16   // header lines of a part
)

var errUploadForm = errors.New("ui: malformed upload form")

// uploadForm is a parsed upload: the text fields before the file, and
// the file part, to be read exactly once.
type uploadForm struct {
	fields      map[string]string
	fileName    string
	contentType string
	// file reads the file's size bytes.
	file io.Reader
	size int64
	// tail checks, once file was read to its end, that the body ends
	// with the closing delimiter (and nothing else).
	tail func() error
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readUpload reads a multipart/form-data body of length bytes up to its
// file part (the last part).
func readUpload(body io.Reader, length int64, contentType string) (*uploadForm, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" {
		return nil, fmt.Errorf("%w: not multipart/form-data", errUploadForm)
	}
	boundary := params["boundary"]
	if boundary == "" || len(boundary) > 70 {
		return nil, fmt.Errorf("%w: boundary", errUploadForm)
	}
	if length <= 0 {
		return nil, fmt.Errorf("%w: no Content-Length", errUploadForm)
	}
	cr := &countingReader{r: io.LimitReader(body, length)}
	br := bufio.NewReaderSize(cr, 16<<10)
	consumed := func() int64 { return cr.n - int64(br.Buffered()) }
	delim := "--" + boundary
	closing := "\r\n" + delim + "--\r\n"
	line, err := readLine(br)
	if err != nil || line != delim {
		return nil, fmt.Errorf("%w: no opening delimiter", errUploadForm)
	}
	f := &uploadForm{fields: map[string]string{}}
	for range maxUploadFields + 1 {
		h, err := readPartHeader(br)
		if err != nil {
			return nil, err
		}
		disp, dp, err := mime.ParseMediaType(h.Get("Content-Disposition"))
		if err != nil || disp != "form-data" || dp["name"] == "" {
			return nil, fmt.Errorf("%w: content disposition", errUploadForm)
		}
		if fileName, isFile := dp["filename"]; isFile {
			f.fileName, f.contentType = fileName, h.Get("Content-Type")
			f.size = length - consumed() - int64(len(closing))
			if f.size < 0 {
				return nil, fmt.Errorf("%w: the file part is cut", errUploadForm)
			}
			f.file = io.LimitReader(br, f.size)
			f.tail = func() error {
				rest, err := io.ReadAll(io.LimitReader(br, int64(len(closing))+1))
				if err != nil || string(rest) != closing {
					return fmt.Errorf("%w: the body does not end after the file", errUploadForm)
				}
				return nil
			}
			return f, nil
		}
		if len(f.fields) == maxUploadFields {
			break
		}
		v, last, err := readFieldValue(br, delim)
		if err != nil {
			return nil, err
		}
		if _, dup := f.fields[dp["name"]]; !dup {
			f.fields[dp["name"]] = v
		}
		if last {
			return nil, fmt.Errorf("%w: no file part", errUploadForm)
		}
	}
	return nil, fmt.Errorf("%w: too many fields", errUploadForm)
}

// readLine reads one CRLF-terminated line (without it) of at most
// maxUploadLine bytes.
func readLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	if err != nil || len(b) > maxUploadLine || !bytes.HasSuffix(b, []byte("\r\n")) {
		return "", fmt.Errorf("%w: line", errUploadForm)
	}
	return string(b[:len(b)-2]), nil
}

// readPartHeader reads a part's header lines up to the empty line.
func readPartHeader(br *bufio.Reader) (textproto.MIMEHeader, error) {
	h := textproto.MIMEHeader{}
	for range maxUploadHeads {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		if line == "" {
			return h, nil
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: header line", errUploadForm)
		}
		h.Add(textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k)), strings.TrimSpace(v))
	}
	return nil, fmt.Errorf("%w: too many header lines", errUploadForm)
}

// readFieldValue reads a text part's value up to the next delimiter;
// last: it was the closing one.
func readFieldValue(br *bufio.Reader, delim string) (string, bool, error) {
	var v []byte
	for {
		b, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return "", false, fmt.Errorf("%w: field value", errUploadForm)
		}
		v = append(v, b...)
		if len(v) > maxUploadField+len(delim)+8 {
			return "", false, fmt.Errorf("%w: field too long", errUploadForm)
		}
		if err != nil { // a full buffer: the line goes on
			continue
		}
		for _, end := range []struct {
			s    string
			last bool
		}{{"\r\n" + delim + "\r\n", false}, {"\r\n" + delim + "--\r\n", true}} {
			if bytes.HasSuffix(v, []byte(end.s)) {
				return string(v[:len(v)-len(end.s)]), end.last, nil
			}
		}
	}
}

// uploadKey is the c.Locals key of a guarded upload's form.
type uploadKey struct{}

// guardUpload is guard for the streamed upload form: the same origin
// check, and the CSRF token read from the text fields before the file
// (the form puts it first), without reading the file.
func (u *UI) guardUpload(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !sameOrigin(c) {
			return u.refuse(c, "The form came from another site.")
		}
		var body io.Reader = c.Context().RequestBodyStream()
		if body == nil {
			body = bytes.NewReader(c.Request().Body())
		}
		f, err := readUpload(body, int64(c.Request().Header.ContentLength()), c.Get(fiber.HeaderContentType))
		if err != nil {
			c.Context().SetConnectionClose()
			return u.refuse(c, "The upload form could not be read. Reload the page and try again.")
		}
		cookie := c.Cookies(u.cookieName(csrfCookie))
		if !validCSRF(cookie) || !sameToken(cookie, f.fields["csrf"]) {
			c.Context().SetConnectionClose()
			return u.refuse(c, "The form's security token is missing or out of date. Reload the page and try again.")
		}
		c.Locals(uploadKey{}, f)
		return h(c)
	}
}

// uploadBlob streams the form's file to the API's blob upload, with the
// file's content type, the subject and kind of the form.
func (u *UI) uploadBlob(r *req) error {
	t := r.tenant()
	f, _ := r.c.Locals(uploadKey{}).(*uploadForm)
	if f == nil {
		return badForm("The upload form could not be read.")
	}
	subject, kind := strings.TrimSpace(f.fields["subject"]), strings.TrimSpace(f.fields["kind"])
	refuse := func(p *client.Problem) error {
		r.c.Context().SetConnectionClose() // the file may be partly unread
		d, err := u.blobsView(r)
		if err != nil {
			return err
		}
		d.UpSubject, d.UpKind, d.Error = clip(subject, 128), clip(kind, 128), p
		return r.render(p.Status, "blobs_list", "Recordings & files", d)
	}
	switch {
	case f.fileName == "" && f.size == 0:
		return refuse(userProblem(badForm("Choose a file to upload."), r.id))
	case subject != "" && !records.ValidID(subject):
		return refuse(userProblem(badForm("A subject id is 1 to 64 of a-z, A-Z, 0-9, '.', '_', '-' and ':'."), r.id))
	}
	ct := f.contentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	q := url.Values{}
	if subject != "" {
		q.Set("subject", subject)
	}
	if kind != "" {
		q.Set("kind", kind)
	}
	b, err := u.postBlob(r, t, q, ct, f.size, f.file)
	if err != nil {
		return refuse(problemFrom(err, r.id))
	}
	if err := f.tail(); err != nil {
		// What was stored is not the browser's file.
		if derr := r.api.DeleteBlob(r.ctx, t, b.ID); derr != nil {
			return fmt.Errorf("ui: delete the blob of a malformed upload: %w", derr)
		}
		return refuse(userProblem(badForm("The upload did not arrive whole; nothing was kept. Try again."), r.id))
	}
	return r.done("/ui/t/"+urlPathEscape(t)+"/blobs/"+urlPathEscape(b.ID), "Uploaded "+humanBytes(b.Size)+".")
}

// postBlob is the API's blob upload (POST /v1/tenants/{id}/blobs with
// query q) of size bytes of body, on a connection of its own so that a
// refusal the API answers before reading the body (a consent the subject
// has not given, a blob too large) is read as the answer: net/http's
// client reports the failed write of the rest of the body instead,
// whichever comes first. The request is written while the answer is
// awaited; an answer other than 201 closes the connection, ending the
// write.
func (u *UI) postBlob(r *req, tenant string, q url.Values, contentType string, size int64, body io.Reader) (client.Blob, error) {
	path := "/v1/tenants/" + urlPathEscape(tenant) + "/blobs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if size == 0 {
		body = http.NoBody
	}
	hr, err := http.NewRequestWithContext(r.ctx, http.MethodPost, apiBase+path, body)
	if err != nil {
		return client.Blob{}, err
	}
	hr.ContentLength = size
	hr.Close = true
	hr.Header.Set("Authorization", "Bearer "+r.token)
	hr.Header.Set("Content-Type", contentType)
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("X-Request-Id", r.id)
	conn, err := u.deps.Dial(r.ctx, r.c.Context().RemoteAddr())
	if err != nil {
		return client.Blob{}, fmt.Errorf("ui: connect to the API: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(r.ctx, func() { conn.Close() })
	defer stop()
	wrote := make(chan error, 1)
	go func() { wrote <- hr.Write(conn) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), hr)
	if err != nil {
		conn.Close()
		<-wrote
		return client.Blob{}, fmt.Errorf("ui: upload to the API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		conn.Close()
		<-wrote
		return client.Blob{}, fmt.Errorf("ui: read the API's answer: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		conn.Close() // the rest of the body is not wanted
		<-wrote
		e := &client.Error{Method: http.MethodPost, Path: path, Status: resp.StatusCode}
		var p client.Problem
		if json.Unmarshal(data, &p) == nil && p.Title != "" {
			e.Problem = &p
		}
		return client.Blob{}, e
	}
	if err := <-wrote; err != nil {
		return client.Blob{}, fmt.Errorf("ui: upload to the API: %w", err)
	}
	var b client.Blob
	if err := json.Unmarshal(data, &b); err != nil {
		return client.Blob{}, fmt.Errorf("ui: decode the API's answer: %w", err)
	}
	return b, nil
}
