package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

//go:embed templates/*.html
var templateFS embed.FS

// templates are the pages: each templates/<page>.html defines "content"
// (and may define "head"), executed inside layout.html with the partials
// of templates/_*.html.
type templates struct{ byName map[string]*template.Template }

func mustTemplates() *templates {
	t, err := parseTemplates(templateFS)
	if err != nil {
		panic(err) // the embedded templates are part of the binary: a test parses them
	}
	return t
}

func parseTemplates(fsys fs.FS) (*templates, error) {
	base := template.New("layout.html").Funcs(funcs)
	shared, err := fs.Glob(fsys, "templates/_*.html")
	if err != nil {
		return nil, err
	}
	if _, err := base.ParseFS(fsys, append([]string{"templates/layout.html"}, shared...)...); err != nil {
		return nil, fmt.Errorf("ui: layout: %w", err)
	}
	pages, err := fs.Glob(fsys, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := &templates{byName: map[string]*template.Template{}}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("ui: page %s: %w", name, err)
		}
		out.byName[name] = t
	}
	return out, nil
}

// page is what layout.html renders.
type page struct {
	Title     string
	CSRF      string
	RequestID string
	Version   string
	// Tenant is the tenant the page is in ("" for cluster pages).
	Tenant string
	Nav    []navLink
	// Flash is a one-line notice of what the last action did (from the
	// "done" query parameter of the redirect after a form).
	Flash string
	Data  any
	// Who names the signed-in person; nil on the login page.
	Who *client.SessionInfo
	r   *req
}

// May reports whether the person may call "METHOD /path" of the API's
// route table (see UI.may): templates show an action only when it does.
func (p *page) May(route string) bool {
	if p.r == nil || p.r.v == nil {
		return false
	}
	return p.r.u.mayAll(p.r.v, route)
}

// Operator: the person is an operator.
func (p *page) Operator() bool { return p.r != nil && p.r.v != nil && p.r.v.operator() }

// render writes the page name with data, status and title.
func (r *req) render(status int, name, title string, data any) error {
	t, ok := r.u.pages.byName[name]
	if !ok {
		return fmt.Errorf("ui: no template %q", name)
	}
	p := &page{Title: title, CSRF: r.csrf, RequestID: r.id, Version: r.u.deps.Version, Data: data, r: r, Flash: clip(r.c.Query("done"), 200)}
	if r.v != nil {
		p.Who = &r.v.session
		p.Tenant = r.tenant()
		p.Nav = r.u.nav(r, p.Tenant)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout.html", p); err != nil {
		return fmt.Errorf("ui: render %s: %w", name, err)
	}
	r.c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	r.c.Set(fiber.HeaderCacheControl, "no-store")
	return r.c.Status(status).Send(b.Bytes())
}

// tenant is the tenant the request is in: the :tenant of /ui/t/:tenant/…
// pages, or a tenant user's own.
func (r *req) tenant() string {
	if t := r.c.Params("tenant"); t != "" {
		return t
	}
	if r.v != nil {
		return r.v.tenant()
	}
	return ""
}

// done redirects after a successful form to where, with a notice.
func (r *req) done(where, notice string) error {
	sep := "?"
	if strings.Contains(where, "?") {
		sep = "&"
	}
	return r.c.Redirect(where+sep+"done="+urlQueryEscape(notice), fiber.StatusSeeOther)
}

// errorData is the error page's.
type errorData struct{ Problem client.Problem }

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join": strings.Join,
	"json": func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err.Error()
		}
		return string(b)
	},
	"bytes": humanBytes,
	"plus":  func(a, b int) int { return a + b },
	"list":  func(s ...string) []string { return s },
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"pathesc":  urlPathEscape,
	"queryesc": urlQueryEscape,
	// audit: the badge class of an entry's outcome
	"auditOutcome": outcomeClass,
	// stamp shows an RFC 3339 time the API sent as a string like "time"
	// does (the text as it is when it does not parse).
	"stamp": func(s string) string {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
