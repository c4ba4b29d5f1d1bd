package ui

import (
	"html/template"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// accountRoutes are the person's own: second-factor enrolment and their
// account page (sign out everywhere).
func (u *UI) accountRoutes() []route {
	return []route{
		{path: "/mfa", handle: u.mfaPage},
		{path: "/mfa", post: true, handle: u.mfaConfirm},
		{path: "/account", actions: []string{"POST /auth/logout"}, handle: u.accountPage},
	}
}

// mfaData is the enrolment page's: the otpauth URI (its secret typed by
// hand where the QR code cannot be scanned), the recovery codes once
// confirmed; with none of them, whether the person has a second factor.
type mfaData struct {
	Enrolled bool
	URI      string
	Secret   string
	QR       template.HTML
	Recovery []string
	Error    *client.Problem
}

// mfaPage starts the TOTP enrolment of the signed-in person — one whose
// role requires it, or who asks for one (?again=1) and has none — and
// shows the QR code and the secret. A person with a second factor is
// told that replacing it takes an administrator's reset (the API refuses
// a second enrolment).
func (u *UI) mfaPage(r *req) error {
	if !r.v.session.MFAEnrolmentRequired && (r.c.Query("again") == "" || r.v.session.MFAEnrolled || r.v.token) {
		return r.render(fiber.StatusOK, "mfa", "Two-factor authentication", mfaData{Enrolled: r.v.session.MFAEnrolled})
	}
	en, err := r.api.EnrolMFA(r.ctx)
	if err != nil {
		return err
	}
	return r.render(fiber.StatusOK, "mfa", "Two-factor authentication", enrolment(en.URI, nil))
}

func (u *UI) mfaConfirm(r *req) error {
	codes, err := r.api.ConfirmMFA(r.ctx, r.c.FormValue("code"))
	if err != nil {
		return r.render(fiber.StatusBadRequest, "mfa", "Two-factor authentication", enrolment(clip(r.c.FormValue("uri"), 1024), problemFrom(err, r.id)))
	}
	return r.render(fiber.StatusOK, "mfa", "Two-factor authentication", mfaData{Recovery: codes})
}

// enrolment is the page of a started enrolment (uri), with the code's
// refusal when there was one.
func enrolment(uri string, p *client.Problem) mfaData {
	d := mfaData{URI: uri, Secret: secretOf(uri), Error: p}
	if uri != "" {
		d.QR, _ = qrSVG(uri, "QR code of your authenticator secret")
	}
	return d
}

// accountData is the account page's: whether the person has a second
// factor, and whether they may enrol one (a user without one; not the
// operator token).
type accountData struct {
	MFAEnrolled, MayEnrol bool
}

func (u *UI) accountPage(r *req) error {
	enrolled := r.v.session.MFAEnrolled
	return r.render(fiber.StatusOK, "account", "Your account", accountData{MFAEnrolled: enrolled, MayEnrol: !enrolled && !r.v.token})
}

// secretOf is the secret= of an otpauth URI ("" when none).
func secretOf(uri string) string {
	const k = "secret="
	for i := 0; i+len(k) <= len(uri); i++ {
		if uri[i:i+len(k)] == k {
			s := uri[i+len(k):]
			for j := 0; j < len(s); j++ {
				if s[j] == '&' {
					return s[:j]
				}
			}
			return s
		}
	}
	return ""
}
