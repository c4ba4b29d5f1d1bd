package ui

import (
	"errors"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// The privacy pages' shared helpers: a path parameter, and how a refused
// form is shown again on its own page.

// param is the path parameter name, unescaped (ids are escaped in the
// links the pages make).
func (r *req) param(name string) string {
	v := r.c.Params(name)
	if s, err := url.PathUnescape(v); err == nil {
		return s
	}
	return v
}

// refusal is the problem to show on the form's page when err is a
// refusal of the form — the API's problem (not a 401, which ends the
// session) or the UI's own check — with the status to answer; ok false:
// err is something else, for fail to show.
func refusal(err error, requestID string) (p *client.Problem, status int, ok bool) {
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status != fiber.StatusUnauthorized {
		p = problemFrom(err, requestID)
		return p, ae.Status, true
	}
	var ue *userError
	if errors.As(err, &ue) {
		return &client.Problem{Title: ue.title, Detail: ue.detail, Status: ue.status, RequestID: requestID}, ue.status, true
	}
	return nil, 0, false
}

// formValues is what a person typed in a form, kept when the form is
// shown again after a refusal.
type formValues map[string]string

// Get is a value ("" when absent).
func (f formValues) Get(k string) string { return f[k] }

// Has: a checkbox or option with this value was chosen (the form's key
// k holds each chosen value under "k=value").
func (f formValues) Has(k, v string) bool { return f[k+"="+v] != "" }

// readForm keeps the fields named of r's form; multi-valued fields (check
// boxes) are kept as "name=value" keys.
func readForm(r *req, fields []string, multi ...string) formValues {
	f := formValues{}
	for _, k := range fields {
		f[k] = clip(r.c.FormValue(k), 8192)
	}
	if len(multi) > 0 {
		if mf, err := r.c.MultipartForm(); err == nil && mf != nil {
			for _, k := range multi {
				for _, v := range mf.Value[k] {
					f[k+"="+v] = "1"
				}
			}
		} else {
			args := r.c.Request().PostArgs()
			for _, k := range multi {
				for _, v := range args.PeekMulti(k) {
					f[k+"="+string(v)] = "1"
				}
			}
		}
	}
	return f
}

// chosen are the values of a multi-valued field of f, in the order of
// options.
func (f formValues) chosen(k string, options []string) []string {
	var out []string
	for _, o := range options {
		if f.Has(k, o) {
			out = append(out, o)
		}
	}
	return out
}
