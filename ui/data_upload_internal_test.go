package ui

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"net/textproto"
	"strings"
	"testing"
)

// multipartBody is a form as browsers send it: text fields, then a file.
func multipartBody(t testing.TB, fields [][2]string, file []byte, noFile bool) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range fields {
		_ = w.WriteField(f[0], f[1])
	}
	if !noFile {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="a.ogg"`)
		h.Set("Content-Type", "audio/ogg")
		p, _ := w.CreatePart(h)
		_, _ = p.Write(file)
	}
	_ = w.Close()
	return b.Bytes(), w.FormDataContentType()
}

// TestReadUpload: the fields before the file, the file's exact size and
// bytes (CRLF and delimiter look-alikes inside it included), and the
// forms it refuses.
func TestReadUpload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields [][2]string
		file   []byte
		noFile bool
		edit   func([]byte) []byte
		ct     string
		err    bool
		tail   bool // the tail check fails
	}{
		{name: "fields and file", fields: [][2]string{{"csrf", "T"}, {"subject", "s-1"}, {"kind", ""}}, file: []byte("voice\r\n--not the boundary\r\n")},
		{name: "empty file", fields: [][2]string{{"csrf", "T"}}, file: nil},
		{name: "multi-line field", fields: [][2]string{{"csrf", "a\r\nb"}}, file: []byte("x")},
		{name: "no file part", fields: [][2]string{{"csrf", "T"}}, noFile: true, err: true},
		{name: "not multipart", fields: [][2]string{{"csrf", "T"}}, file: []byte("x"), ct: "text/plain", err: true},
		{name: "field too long", fields: [][2]string{{"csrf", strings.Repeat("a", maxUploadField+100)}}, file: []byte("x"), err: true},
		{name: "no closing CRLF", fields: [][2]string{{"csrf", "T"}}, file: []byte("abc"), edit: func(b []byte) []byte { return b[:len(b)-2] }, tail: true},
		{name: "epilogue", fields: [][2]string{{"csrf", "T"}}, file: []byte("abc"), edit: func(b []byte) []byte { return append(b, "more"...) }, tail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := multipartBody(t, tc.fields, tc.file, tc.noFile)
			if tc.edit != nil {
				body = tc.edit(body)
			}
			if tc.ct != "" {
				ct = tc.ct
			}
			f, err := readUpload(bytes.NewReader(body), int64(len(body)), ct)
			if tc.err {
				if !errors.Is(err, errUploadForm) {
					t.Fatalf("err %v, want errUploadForm", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, fv := range tc.fields {
				if f.fields[fv[0]] != fv[1] {
					t.Fatalf("field %s = %q, want %q", fv[0], f.fields[fv[0]], fv[1])
				}
			}
			got, err := io.ReadAll(f.file)
			if err != nil {
				t.Fatal(err)
			}
			terr := f.tail()
			if tc.tail {
				if terr == nil {
					t.Fatalf("tail accepted a body that does not end after the file (file %q)", got)
				}
				return
			}
			if terr != nil || !bytes.Equal(got, tc.file) || f.size != int64(len(tc.file)) || f.contentType != "audio/ogg" || f.fileName != "a.ogg" {
				t.Fatalf("file %q (size %d, %q, %q), tail %v; want %q", got, f.size, f.contentType, f.fileName, terr, tc.file)
			}
		})
	}
}

// FuzzReadUpload: any body either is refused, or gives a file of exactly
// the size it states whose tail check passes only when the body is a
// well-formed form; never a panic, never a read past the body.
func FuzzReadUpload(f *testing.F) {
	body, ct := multipartBody(f, [][2]string{{"csrf", "T"}, {"subject", "s"}}, []byte("voice"), false)
	f.Add(body, ct)
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\nabc\r\n--b--\r\n"), "multipart/form-data; boundary=b")
	f.Add([]byte("--b\r\n\r\n"), "multipart/form-data; boundary=b")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		up, err := readUpload(bytes.NewReader(body), int64(len(body)), ct)
		if err != nil {
			return
		}
		got, err := io.ReadAll(up.file)
		if err != nil || int64(len(got)) != up.size {
			t.Fatalf("file of %d bytes, size %d (%v)", len(got), up.size, err)
		}
		if up.tail() == nil && !bytes.HasSuffix(body, append(append([]byte{}, got...), []byte("\r\n--")...)) && len(got) > 0 {
			if !bytes.Contains(body, got) {
				t.Fatalf("the file %q is not in the body", got)
			}
		}
	})
}
