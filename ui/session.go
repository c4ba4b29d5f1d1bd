package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// Cookie names: with the __Host- prefix on TLS (the browser then keeps
// them host-only, Secure, Path=/), plain names on a plain-HTTP dev node.
const (
	sessionCookie = "custos"
	csrfCookie    = "custos-csrf"
	maxCookie     = 3500 // bytes: what one cookie may hold in every browser, with room to spare
)

// stored is the session cookie's content: what the API authenticates.
type stored struct {
	Access  string `json:"a"`
	Refresh string `json:"r,omitempty"`
	// Token: Access is the operator token (--dev only), not a user's
	// access token.
	Token bool `json:"t,omitempty"`
}

func (u *UI) cookieName(base string) string {
	if u.deps.Secure {
		return "__Host-" + base
	}
	return base
}

func (u *UI) setCookie(c *fiber.Ctx, name, value string, maxAge int) {
	c.Cookie(&fiber.Cookie{Name: u.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		Secure: u.deps.Secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode, SessionOnly: maxAge == 0})
}

func (u *UI) saveSession(c *fiber.Ctx, s stored) {
	b, _ := json.Marshal(s)
	u.setCookie(c, sessionCookie, base64.RawURLEncoding.EncodeToString(b), 0)
}

func (u *UI) clearSession(c *fiber.Ctx) {
	u.setCookie(c, sessionCookie, "", -1)
}

func (u *UI) loadSession(c *fiber.Ctx) (stored, bool) {
	raw := c.Cookies(u.cookieName(sessionCookie))
	if raw == "" || len(raw) > maxCookie {
		return stored{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return stored{}, false
	}
	var s stored
	if json.Unmarshal(b, &s) != nil || s.Access == "" {
		return stored{}, false
	}
	return s, true
}

// csrfToken is the browser's CSRF token, set on its first page.
func (u *UI) csrfToken(c *fiber.Ctx) string {
	if t := c.Cookies(u.cookieName(csrfCookie)); validCSRF(t) {
		return t
	}
	t := rand.Text()
	u.setCookie(c, csrfCookie, t, 0)
	// The token is also the one this response's forms carry.
	c.Request().Header.SetCookie(u.cookieName(csrfCookie), t)
	return t
}

func validCSRF(t string) bool {
	if len(t) != 26 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if ch := t[i]; (ch < 'A' || ch > 'Z') && (ch < '2' || ch > '7') {
			return false
		}
	}
	return true
}

// claims are the two times the UI reads of an access token; the API
// verifies the token, the UI only decides when to refresh it.
type claims struct {
	IssuedAt  int64 `json:"iat"`
	ExpiresAt int64 `json:"exp"`
}

func tokenTimes(tok string) (claims, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return claims{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return claims{}, false
	}
	var cl claims
	if json.Unmarshal(b, &cl) != nil || cl.ExpiresAt <= cl.IssuedAt {
		return claims{}, false
	}
	return cl, true
}

// errIdle: the access token expired: the session was idle longer than
// its lifetime.
var errIdle = errors.New("ui: session idle")

// fresh returns s with an access token that is not near its end: one
// older than a third of its lifetime is refreshed; an expired one is
// not (the idle timeout). The operator token (--dev) is used as it is.
func (u *UI) fresh(r *req, s stored) (stored, bool, error) {
	if s.Token {
		return s, false, nil
	}
	cl, ok := tokenTimes(s.Access)
	if !ok {
		return s, false, errIdle
	}
	now := u.now().Unix()
	if now >= cl.ExpiresAt {
		return s, false, errIdle
	}
	if now-cl.IssuedAt < (cl.ExpiresAt-cl.IssuedAt)/3 || s.Refresh == "" {
		return s, false, nil
	}
	g, err := u.apiClient("", r.id).Refresh(r.ctx, s.Refresh)
	if err != nil {
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status == fiber.StatusUnauthorized {
			return s, false, errIdle
		}
		return s, false, err
	}
	return stored{Access: g.AccessToken, Refresh: g.RefreshToken}, true, nil
}

// withSession runs h for a signed-in person, or redirects to the login
// page: no cookie, an idle or ended session, or one past the absolute
// timeout.
func (u *UI) withSession(h handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		r := &req{c: c, ctx: withRemote(c.UserContext(), c.Context().RemoteAddr()), id: requestID(c), u: u, csrf: u.csrfToken(c)}
		s, ok := u.loadSession(c)
		if !ok {
			return c.Redirect(loginURL(c, ""), fiber.StatusSeeOther)
		}
		s, changed, err := u.fresh(r, s)
		if errors.Is(err, errIdle) {
			u.clearSession(c)
			return c.Redirect(loginURL(c, "Your session ended after a time without activity. Sign in again."), fiber.StatusSeeOther)
		}
		if err != nil {
			return u.fail(r, err)
		}
		if changed {
			u.saveSession(c, s)
		}
		r.api, r.token = u.apiClient(s.Access, r.id), s.Access
		v, err := u.resolve(r, s)
		if err != nil {
			return u.fail(r, err)
		}
		if !v.session.CreatedAt.IsZero() && u.now().Sub(v.session.CreatedAt) > AbsoluteTimeout {
			_ = r.api.Logout(r.ctx)
			u.clearSession(c)
			return c.Redirect(loginURL(c, "Your session reached its 12-hour limit. Sign in again."), fiber.StatusSeeOther)
		}
		r.v = v
		if v.session.MFAEnrolmentRequired && !strings.HasPrefix(c.Path(), "/ui/mfa") && c.Path() != "/ui/logout" {
			return c.Redirect("/ui/mfa", fiber.StatusSeeOther)
		}
		if err := h(r); err != nil {
			return u.fail(r, err)
		}
		return nil
	}
}

// loginURL is the login page, remembering where the person was going (a
// path of the UI only) and why they must sign in.
func loginURL(c *fiber.Ctx, why string) string {
	next := ""
	if c.Method() == fiber.MethodGet && strings.HasPrefix(c.Path(), "/ui/") && c.Path() != "/ui/login" {
		next = c.OriginalURL()
	}
	return "/ui/login" + qs("next", next, "why", why)
}

// safeNext is where to go after a login: a path of the UI, never another
// site ("//evil" or "/\evil" included).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/ui/"
	}
	return next
}

// sameToken compares two CSRF tokens in constant time.
func sameToken(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func urlPathEscape(s string) string { return url.PathEscape(s) }
