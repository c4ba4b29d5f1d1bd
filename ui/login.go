package ui

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// loginData is the login page's.
type loginData struct {
	Next, Why, Tenant, Username string
	// NeedCode: the password was right and the account asks for its
	// second factor: the page asks for the code (username and password
	// are posted again with it; nothing is kept on the server between).
	NeedCode bool
	// Ticket seals the password for the code step (see tickets).
	Ticket   string
	Error    *client.Problem
	DevToken bool
}

func (u *UI) loginPage(c *fiber.Ctx) error {
	r := &req{c: c, id: requestID(c), u: u, csrf: u.csrfToken(c)}
	if _, ok := u.loadSession(c); ok && c.Query("why") == "" {
		return c.Redirect(safeNext(c.Query("next")), fiber.StatusSeeOther)
	}
	return r.render(fiber.StatusOK, "login", "Sign in", loginData{Next: safeNext(c.Query("next")), Why: clip(c.Query("why"), 200), DevToken: u.deps.DevTokenLogin})
}

// login signs a person in: the identity service's login through the API.
// A wrong password and an unknown user read the same; a missing second
// factor shows the code step.
func (u *UI) login(c *fiber.Ctx) error {
	r := &req{c: c, ctx: withRemote(c.UserContext(), c.Context().RemoteAddr()), id: requestID(c), u: u, csrf: u.csrfToken(c)}
	next := safeNext(c.FormValue("next"))
	if tok := c.FormValue("token"); tok != "" && u.deps.DevTokenLogin {
		api := u.apiClient(tok, r.id)
		if _, err := api.Status(r.ctx); err != nil {
			return r.render(fiber.StatusUnauthorized, "login", "Sign in", loginData{Next: next, DevToken: true, Error: problemFrom(err, r.id)})
		}
		u.saveSession(c, stored{Access: tok, Token: true})
		return c.Redirect(next, fiber.StatusSeeOther)
	}
	in := client.Login{Tenant: strings.TrimSpace(c.FormValue("tenant")), Username: strings.TrimSpace(c.FormValue("username")),
		Password: c.FormValue("password"), Code: strings.TrimSpace(c.FormValue("code"))}
	d := loginData{Next: next, Tenant: in.Tenant, Username: in.Username, DevToken: u.deps.DevTokenLogin}
	if t := c.FormValue("ticket"); t != "" && in.Password == "" {
		pw, err := u.tickets.open(t, in.Tenant, in.Username, u.now())
		if err != nil {
			d.Error = &client.Problem{Status: fiber.StatusUnauthorized, Title: "Sign in again",
				Detail: "The sign-in took too long or moved to another node: enter your password again.", RequestID: r.id}
			return r.render(fiber.StatusUnauthorized, "login", "Sign in", d)
		}
		in.Password = pw
	}
	g, err := u.apiClient("", r.id).Login(r.ctx, in)
	if err != nil {
		p := problemFrom(err, r.id)
		if p.Slug() == "mfa-required" || (in.Code != "" && p.Status == fiber.StatusUnauthorized && c.FormValue("ticket") != "") {
			// The password was right (or was, at the first step): ask
			// for the code, keeping the password sealed.
			d.NeedCode = true
			d.Ticket = u.tickets.seal(ticket{Tenant: in.Tenant, Username: in.Username, Password: in.Password}, u.now())
			if in.Code != "" {
				d.Error = p
			}
			return r.render(fiber.StatusUnauthorized, "login", "Sign in", d)
		}
		d.Error = p
		return r.render(p.Status, "login", "Sign in", d)
	}
	u.saveSession(c, stored{Access: g.AccessToken, Refresh: g.RefreshToken})
	if g.MFAEnrolmentRequired {
		return c.Redirect("/ui/mfa", fiber.StatusSeeOther)
	}
	return c.Redirect(next, fiber.StatusSeeOther)
}

// logout ends this session, or with everywhere=1 every session of the
// person, and forgets the cookie.
func (u *UI) logout(r *req) error {
	var err error
	if r.c.FormValue("everywhere") == "1" {
		err = r.api.LogoutEverywhere(r.ctx)
	} else if !r.v.token {
		err = r.api.Logout(r.ctx)
	}
	u.clearSession(r.c)
	var ae *client.Error
	if err != nil && !(errors.As(err, &ae) && ae.Status == fiber.StatusUnauthorized) {
		return err
	}
	return r.c.Redirect("/ui/login"+qs("why", "You are signed out."), fiber.StatusSeeOther)
}

// problemFrom is err as a problem to show: the API's, or an internal one.
func problemFrom(err error, requestID string) *client.Problem {
	var ae *client.Error
	if errors.As(err, &ae) {
		p := problemOf(ae.Status, "Error "+fmt.Sprint(ae.Status), "The API answered without a problem body.", requestID)
		if ae.Problem != nil {
			p = *ae.Problem
		}
		if p.RequestID == "" {
			p.RequestID = requestID
		}
		return &p
	}
	p := problemOf(fiber.StatusInternalServerError, "Internal error", "The request could not be completed.", requestID)
	return &p
}

func problemOf(status int, title, detail, requestID string) client.Problem {
	return client.Problem{Status: status, Title: title, Detail: detail, RequestID: requestID}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
