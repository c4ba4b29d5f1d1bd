package ui

import (
	"github.com/gofiber/fiber/v2"
)

// contentSecurityPolicy allows only the UI's own files: no inline script
// or style, no plugin, no framing, no <base>.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// headers sets the security headers of every UI response.
func (u *UI) headers(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", contentSecurityPolicy)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if u.deps.HSTS {
		c.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000")
	}
	return c.Next()
}

// guard admits a form post only from this origin and with the CSRF token
// of the browser's cookie; anything else is refused (403) before the
// handler runs.
func (u *UI) guard(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !sameOrigin(c) {
			return u.refuse(c, "The form came from another site.")
		}
		cookie := c.Cookies(u.cookieName(csrfCookie))
		if !validCSRF(cookie) || !sameToken(cookie, c.FormValue("csrf")) {
			return u.refuse(c, "The form's security token is missing or out of date. Reload the page and try again.")
		}
		return h(c)
	}
}

// sameOrigin: the browser says the request came from this origin. A
// browser sends Sec-Fetch-Site and Origin with every form post; both are
// checked when present, and a post with neither is refused.
func sameOrigin(c *fiber.Ctx) bool {
	site, origin := c.Get("Sec-Fetch-Site"), c.Get(fiber.HeaderOrigin)
	if origin == "null" {
		// The pages' Referrer-Policy is no-referrer, and with it a
		// browser sends "Origin: null" on its form posts (the Fetch
		// standard's origin serialization; Chromium does): the origin
		// is then unknown, and Sec-Fetch-Site, which a page cannot set,
		// decides alone.
		origin = ""
	}
	if site == "" && origin == "" {
		return false
	}
	if site != "" && site != "same-origin" {
		return false
	}
	if origin != "" && origin != c.BaseURL() {
		return false
	}
	return true
}

func (u *UI) refuse(c *fiber.Ctx, detail string) error {
	r := &req{c: c, id: requestID(c), u: u, csrf: u.csrfToken(c)}
	return r.render(fiber.StatusForbidden, "error", "Refused", errorData{Problem: problemOf(fiber.StatusForbidden, "Request refused", detail, r.id)})
}
