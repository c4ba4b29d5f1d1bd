package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/identity/accounts"
	"github.com/custos/custos/appliance/identity/roles"
)

// Accounts are the tenants' users, roles and sessions;
// *accounts.Service implements it.
type Accounts interface {
	Login(ctx context.Context, from audit.Principal, in accounts.LoginInput) (accounts.Grant, error)
	Refresh(ctx context.Context, from audit.Principal, refresh string) (accounts.Grant, error)
	Logout(ctx context.Context, who audit.Principal) error
	LogoutEverywhere(ctx context.Context, who audit.Principal) (int, error)
	Resolve(ctx context.Context, access string) (accounts.Resolved, error)
	Enrol(ctx context.Context, who audit.Principal) (accounts.Enrolment, error)
	Confirm(ctx context.Context, who audit.Principal, code string) ([]string, error)

	CreateUser(ctx context.Context, who audit.Principal, tenant string, in accounts.CreateUserInput) (accounts.User, error)
	ListUsers(ctx context.Context, who audit.Principal, tenant string) ([]accounts.User, error)
	GetUser(ctx context.Context, who audit.Principal, tenant, uid string) (accounts.User, error)
	UpdateUser(ctx context.Context, who audit.Principal, tenant, uid string, p accounts.Patch) (accounts.User, error)
	SetDisabled(ctx context.Context, who audit.Principal, tenant, uid string, disabled bool) (accounts.User, error)
	ResetMFA(ctx context.Context, who audit.Principal, tenant, uid string) (accounts.User, error)
	Unlock(ctx context.Context, who audit.Principal, tenant, uid string) (accounts.User, error)
	ListSessions(ctx context.Context, who audit.Principal, tenant, uid string) ([]accounts.Session, error)
	RevokeSession(ctx context.Context, who audit.Principal, tenant, uid, sid string) error
	RevokeSessions(ctx context.Context, who audit.Principal, tenant, uid string) (int, error)

	ListRoles(ctx context.Context, tenant string) ([]accounts.RoleInfo, error)
	GetRole(ctx context.Context, tenant, name string) (accounts.RoleInfo, error)
	CreateRole(ctx context.Context, who audit.Principal, tenant string, c roles.Custom) (accounts.RoleInfo, error)
}

var _ Accounts = (*accounts.Service)(nil)

// logoutRequest is the optional body of POST /v1/auth/logout.
type logoutRequest struct {
	// Everywhere ends every session of the user, not only this one.
	Everywhere bool `json:"everywhere,omitempty"`
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

type enrolResponse struct {
	URI string `json:"otpauth_uri"`
	QR  string `json:"qr_png"`
}

type confirmRequest struct {
	Code string `json:"code"`
}

type confirmResponse struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

type userList struct {
	Users []accounts.User `json:"users"`
}

type sessionList struct {
	Sessions []accounts.Session `json:"sessions"`
}

type revokedResponse struct {
	Revoked int `json:"revoked"`
}

type roleList struct {
	Roles []accounts.RoleInfo `json:"roles"`
}

// loginFrame is an unauthenticated request's principal: its request id and
// source, for the entries a login writes.
func loginFrame(c *fiber.Ctx) audit.Principal {
	return audit.Principal{RequestID: requestID(c), Source: clipN(c.IP(), 64)}
}

// grant answers a login, refresh or single sign-on with the session's
// tokens (client.Grant, the wire form defined once): the only time they
// are shown.
func (s *server) grant(c *fiber.Ctx, g accounts.Grant) error {
	return c.JSON(client.Grant{AccessToken: g.AccessToken, RefreshToken: g.RefreshToken, TokenType: "Bearer",
		ExpiresIn: max(0, int(time.Until(g.ExpiresAt).Seconds())), Session: g.Session.ID, MFAEnrolmentRequired: g.EnrolmentOnly})
}

func (s *server) login(c *fiber.Ctx, in *input) error {
	req := bodyOf[client.Login](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	g, err := s.deps.Accounts.Login(ctx, loginFrame(c), accounts.LoginInput{Tenant: req.Tenant, Username: req.Username, Password: req.Password, Code: req.Code, SourceKey: sourceKey(c.IP())})
	if err != nil {
		return fmt.Errorf("api: login: %w", err)
	}
	return s.grant(c, g)
}

func (s *server) refresh(c *fiber.Ctx, in *input) error {
	req := bodyOf[refreshRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	g, err := s.deps.Accounts.Refresh(ctx, loginFrame(c), req.RefreshToken)
	if err != nil {
		return fmt.Errorf("api: refresh: %w", err)
	}
	return s.grant(c, g)
}

func (s *server) logout(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	if bodyOf[logoutRequest](in).Everywhere {
		if _, err := s.deps.Accounts.LogoutEverywhere(ctx, in.who); err != nil {
			return fmt.Errorf("api: logout everywhere: %w", err)
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
	if err := s.deps.Accounts.Logout(ctx, in.who); err != nil {
		return fmt.Errorf("api: logout: %w", err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) whoAmI(c *fiber.Ctx, in *input) error {
	p, _ := c.Locals(principalKey).(caller)
	w := in.who
	perms := []string{}
	for _, pm := range p.role.Permissions().List() {
		perms = append(perms, pm.String())
	}
	return c.JSON(client.SessionInfo{Kind: w.Kind, ID: w.ID, Tenant: w.Tenant, Role: w.Role, Scopes: w.Scopes, Session: w.Session,
		MFAEnrolmentRequired: p.enrolOnly, MFAEnrolled: p.mfaEnrolled, Permissions: perms, ClusterWide: p.role.ClusterWide(), CreatedAt: p.sessionCreated})
}

func (s *server) mfaEnrol(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	en, err := s.deps.Accounts.Enrol(ctx, in.who)
	if err != nil {
		return fmt.Errorf("api: enrol: %w", err)
	}
	return c.JSON(enrolResponse{URI: en.URI, QR: base64.StdEncoding.EncodeToString(en.QR)})
}

func (s *server) mfaConfirm(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	codes, err := s.deps.Accounts.Confirm(ctx, in.who, bodyOf[confirmRequest](in).Code)
	if err != nil {
		return fmt.Errorf("api: confirm: %w", err)
	}
	return c.JSON(confirmResponse{RecoveryCodes: codes})
}

func (s *server) createUser(c *fiber.Ctx, in *input) error {
	req := bodyOf[client.NewUser](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	u, err := s.deps.Accounts.CreateUser(ctx, in.who, in.tenant, accounts.CreateUserInput{Username: req.Username, Password: req.Password, Role: req.Role, Scopes: req.Scopes})
	if err != nil {
		return fmt.Errorf("api: create user of %q: %w", in.tenant, err)
	}
	c.Location("/v1/tenants/" + in.tenant + "/users/" + u.ID)
	return c.Status(fiber.StatusCreated).JSON(u)
}

func (s *server) listUsers(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	us, err := s.deps.Accounts.ListUsers(ctx, in.who, in.tenant)
	if err != nil {
		return fmt.Errorf("api: list users of %q: %w", in.tenant, err)
	}
	return c.JSON(userList{Users: us})
}

func (s *server) getUser(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	u, err := s.deps.Accounts.GetUser(ctx, in.who, in.tenant, in.str("uid"))
	if err != nil {
		return fmt.Errorf("api: user of %q: %w", in.tenant, err)
	}
	return c.JSON(u)
}

func (s *server) patchUser(c *fiber.Ctx, in *input) error {
	req := bodyOf[client.UserPatch](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	u, err := s.deps.Accounts.UpdateUser(ctx, in.who, in.tenant, in.str("uid"), accounts.Patch{Role: req.Role, Scopes: req.Scopes})
	if err != nil {
		return fmt.Errorf("api: update user of %q: %w", in.tenant, err)
	}
	return c.JSON(u)
}

// userAction serves the POST /users/:uid/<action> routes.
func (s *server) userAction(act func(ctx context.Context, who audit.Principal, tenant, uid string) (accounts.User, error)) handlerFunc {
	return func(c *fiber.Ctx, in *input) error {
		ctx, cancel := s.callContext(c)
		defer cancel()
		u, err := act(ctx, in.who, in.tenant, in.str("uid"))
		if err != nil {
			return fmt.Errorf("api: user of %q: %w", in.tenant, err)
		}
		return c.JSON(u)
	}
}

func (s *server) disableUser(ctx context.Context, who audit.Principal, tenant, uid string) (accounts.User, error) {
	return s.deps.Accounts.SetDisabled(ctx, who, tenant, uid, true)
}

func (s *server) enableUser(ctx context.Context, who audit.Principal, tenant, uid string) (accounts.User, error) {
	return s.deps.Accounts.SetDisabled(ctx, who, tenant, uid, false)
}

func (s *server) resetMFA(ctx context.Context, who audit.Principal, tenant, uid string) (accounts.User, error) {
	return s.deps.Accounts.ResetMFA(ctx, who, tenant, uid)
}

func (s *server) unlockUser(ctx context.Context, who audit.Principal, tenant, uid string) (accounts.User, error) {
	return s.deps.Accounts.Unlock(ctx, who, tenant, uid)
}

func (s *server) listSessions(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	ss, err := s.deps.Accounts.ListSessions(ctx, in.who, in.tenant, in.str("uid"))
	if err != nil {
		return fmt.Errorf("api: sessions of %q: %w", in.tenant, err)
	}
	return c.JSON(sessionList{Sessions: ss})
}

func (s *server) revokeSession(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.Accounts.RevokeSession(ctx, in.who, in.tenant, in.str("uid"), in.str("session")); err != nil {
		return fmt.Errorf("api: revoke a session of %q: %w", in.tenant, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) revokeSessions(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	n, err := s.deps.Accounts.RevokeSessions(ctx, in.who, in.tenant, in.str("uid"))
	if err != nil {
		return fmt.Errorf("api: revoke the sessions of %q: %w", in.tenant, err)
	}
	return c.JSON(revokedResponse{Revoked: n})
}

func (s *server) listRoles(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	rs, err := s.deps.Accounts.ListRoles(ctx, in.tenant)
	if err != nil {
		return fmt.Errorf("api: roles of %q: %w", in.tenant, err)
	}
	return c.JSON(roleList{Roles: rs})
}

func (s *server) getRole(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	r, err := s.deps.Accounts.GetRole(ctx, in.tenant, in.str("role"))
	if err != nil {
		return fmt.Errorf("api: role of %q: %w", in.tenant, err)
	}
	return c.JSON(r)
}

func (s *server) createRole(c *fiber.Ctx, in *input) error {
	req := bodyOf[roles.Custom](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	r, err := s.deps.Accounts.CreateRole(ctx, in.who, in.tenant, *req)
	if err != nil {
		return fmt.Errorf("api: create role of %q: %w", in.tenant, err)
	}
	c.Location("/v1/tenants/" + in.tenant + "/roles/" + r.Name)
	return c.Status(fiber.StatusCreated).JSON(r)
}
