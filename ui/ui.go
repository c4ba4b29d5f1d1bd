package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/api"
	"github.com/custos/custos/appliance/client"
)

// AbsoluteTimeout is how long after its login a session may use the UI,
// however active.
const AbsoluteTimeout = 12 * time.Hour

// Deps is what the UI needs from the node.
type Deps struct {
	// Dial connects to the node's own API in process (required).
	Dial Dialer
	// Secure: browsers reach the node over HTTPS (its own TLS, or a
	// TLS-terminating proxy with api.insecure_http): cookies are Secure
	// with the __Host- prefix. False only for a plain-HTTP dev node.
	Secure bool
	// HSTS: the node serves TLS itself: responses carry
	// Strict-Transport-Security.
	HSTS bool
	// DevTokenLogin lets the operator token sign in (--dev only).
	DevTokenLogin bool
	// Version is shown in the footer.
	Version string
	// Logger receives the causes of errors the UI shows as "internal"
	// (default: discard).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// UI serves the pages. Register makes one.
type UI struct {
	deps  Deps
	hc    *http.Client
	log   *slog.Logger
	now   func() time.Time
	pages *templates
	ops   []api.Operation
	// tickets seal the password between the login's two steps.
	tickets *tickets
}

// Register adds the UI's routes to router: /ui/ and below, and a redirect
// of / to /ui/. It panics on a wiring mistake (no dialer), as the API's
// Register does.
func Register(router fiber.Router, deps Deps) *UI {
	if deps.Dial == nil {
		panic("ui: Register needs a dialer to the node's API")
	}
	u := &UI{deps: deps, hc: &http.Client{Transport: newTransport(deps.Dial), Timeout: 5 * time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		log: deps.Logger, now: deps.Now, pages: mustTemplates(), ops: api.Operations(), tickets: newTickets()}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.now == nil {
		u.now = time.Now
	}
	router.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/ui/", fiber.StatusFound) })
	g := router.Group("/ui", u.headers)
	g.Get("/assets/:name", u.asset)
	g.Get("/", u.page(u.home))
	g.Get("/login", u.loginPage)
	g.Post("/login", u.guard(u.login))
	g.Post("/logout", u.guard(u.withSession(u.logout)))
	for _, p := range u.routes() {
		if p.public {
			h := u.public(p.handle)
			if p.post {
				g.Post(p.path, u.guard(h))
			} else {
				g.Get(p.path, h)
			}
			continue
		}
		if p.post {
			guard := u.guard
			if p.multipart {
				guard = u.guardUpload
			}
			g.Post(p.path, guard(u.withSession(p.handle)))
			continue
		}
		g.Get(p.path, u.page(p.handle))
	}
	g.Use(func(c *fiber.Ctx) error { return u.notFound(c) })
	return u
}

// route is one page (GET) or action (POST) of the UI.
type route struct {
	path string // below /ui, fiber's syntax
	post bool
	// public: served without a session (the single sign-on start and
	// callback): the handler's req has no viewer and its client no
	// token.
	public bool
	// file: a download (an export's archive, a receipt), not a page:
	// Pages leaves it out (the role matrix opens pages and their forms);
	// the API authorizes it as it does every call.
	file bool
	// multipart: a POST whose form is multipart/form-data with a file,
	// streamed to the API (see guardUpload): the CSRF token is read from
	// the fields before the file.
	multipart bool
	// need is the API route ("METHOD /path" of api.Operations) a page
	// reads first: a person whose role may not call it does not see the
	// page in the navigation, and the API refuses it if they come anyway.
	// "": the page needs only a session.
	need string
	// actions are the API routes the page offers as actions (its forms
	// and buttons, each marked data-api="METHOD /path" and shown only
	// when the person may call it): the role matrix test checks that
	// every role sees exactly the ones its permissions allow.
	actions []string
	handle  handler
}

// A Page is one of the UI's GET pages: its path below /ui, the API route
// it needs and the actions it offers (for the role matrix test).
type Page struct {
	Path    string
	Need    string
	Actions []string
}

// Pages lists the pages of the UI in route order.
func Pages() []Page {
	var u UI
	var out []Page
	for _, rt := range u.routes() {
		if !rt.post && !rt.public && !rt.file {
			out = append(out, Page{Path: rt.path, Need: rt.need, Actions: rt.actions})
		}
	}
	return out
}

// handler serves one page or action of a signed-in person.
type handler func(r *req) error

// req is one request of a signed-in person: the API client acting as
// them, and who they are.
type req struct {
	c    *fiber.Ctx
	ctx  context.Context
	api  *client.Client
	v    *viewer
	csrf string
	id   string // the request id, shared with the API calls it makes
	u    *UI
	// token is what api authenticates with (the streamed upload sends
	// it on a connection of its own).
	token string
}

// requestID is the id the API's frame gave this request.
func requestID(c *fiber.Ctx) string { return string(c.Response().Header.Peek("X-Request-Id")) }

// page serves a GET page: it needs a session (or redirects to the login)
// and renders what the handler returns, or the error.
func (u *UI) page(h handler) fiber.Handler {
	return u.withSession(h)
}

// public serves h without a session.
func (u *UI) public(h handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		r := &req{c: c, ctx: withRemote(c.UserContext(), c.Context().RemoteAddr()), id: requestID(c), u: u, csrf: u.csrfToken(c)}
		r.api = u.apiClient("", r.id)
		if err := h(r); err != nil {
			return u.fail(r, err)
		}
		return nil
	}
}

// fail renders err for r: an API problem with its status, detail and
// request id; anything else as an internal error whose cause is logged.
func (u *UI) fail(r *req, err error) error {
	var ae *client.Error
	if errors.As(err, &ae) && ae.Problem.Status >= 400 {
		if ae.Status == fiber.StatusUnauthorized {
			// The session ended on the server (logout elsewhere, user
			// disabled): sign in again.
			u.clearSession(r.c)
			return r.c.Redirect(loginURL(r.c, "Your session has ended. Sign in again."), fiber.StatusSeeOther)
		}
		return r.render(ae.Status, "error", "Error", errorData{Problem: *problemFrom(err, r.id)})
	}
	var ue *userError
	if errors.As(err, &ue) {
		return r.render(ue.status, "error", "Error", errorData{Problem: client.Problem{Title: ue.title, Detail: ue.detail, Status: ue.status, RequestID: r.id}})
	}
	u.log.Error("ui: page failed", "request_id", r.id, "route", routeTemplate(r.c), "error", err)
	return r.render(fiber.StatusInternalServerError, "error", "Error", errorData{Problem: client.Problem{Title: "Internal error",
		Detail: "The page could not be shown. The node's log has the cause under this request id.", Status: 500, RequestID: r.id}})
}

// userError is a refusal the UI makes itself before calling the API (a
// form field it needs, a confirmation not typed).
type userError struct {
	status        int
	title, detail string
}

func (e *userError) Error() string { return e.title + ": " + e.detail }

// badForm is a 400 refusal of a form.
func badForm(detail string) error {
	return &userError{status: fiber.StatusBadRequest, title: "Check the form", detail: detail}
}

func routeTemplate(c *fiber.Ctx) string {
	if rt := c.Route(); rt != nil {
		return rt.Path
	}
	return "unmatched"
}

// notFound answers a path below /ui that is no page.
func (u *UI) notFound(c *fiber.Ctx) error {
	r := &req{c: c, id: requestID(c), u: u, csrf: u.csrfToken(c)}
	return r.render(fiber.StatusNotFound, "error", "Not found", errorData{Problem: client.Problem{Title: "Not found",
		Detail: "There is no page at this address.", Status: 404, RequestID: r.id}})
}

// qs builds a query string from pairs, leaving out empty values.
func qs(pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			continue
		}
		if b.Len() == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		fmt.Fprintf(&b, "%s=%s", pairs[i], urlQueryEscape(pairs[i+1]))
	}
	return b.String()
}
