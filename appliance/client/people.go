package client

import (
	"context"
	"time"
)

// ---- sessions: login, refresh, logout, MFA ----

// Login is the body of POST /v1/auth/login: a tenant user's credentials,
// and the second-factor code (a TOTP code or a recovery code) when the
// user has one.
type Login struct {
	Tenant   string `json:"tenant,omitempty"`
	Username string `json:"username"`
	Password string `json:"password"`
	Code     string `json:"code,omitempty"`
}

// SessionInfo is who the caller's access token stands for now.
type SessionInfo struct {
	Kind                 string              `json:"kind"`
	ID                   string              `json:"id"`
	Tenant               string              `json:"tenant"`
	Role                 string              `json:"role"`
	Scopes               map[string][]string `json:"scopes,omitempty"`
	Session              string              `json:"session"`
	MFAEnrolmentRequired bool                `json:"mfa_enrolment_required"`
	// MFAEnrolled: the user has an active second factor; a new one
	// can be enrolled only after an administrator resets it.
	MFAEnrolled bool `json:"mfa_enrolled,omitempty"`
	// Permissions are what the principal's role holds now
	// ("records:read", ...), ClusterWide whether it acts on the cluster
	// (an operator): the web UI shows only what they allow.
	Permissions []string `json:"permissions"`
	ClusterWide bool     `json:"cluster_wide"`
	// CreatedAt is the session's login.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// MFAEnrolment is a started TOTP enrolment: the otpauth URI (it holds the
// secret) and a PNG QR code of it.
type MFAEnrolment struct {
	URI string `json:"otpauth_uri"`
	QR  []byte `json:"qr_png"`
}

// Login logs a user in. A user with a second factor and no code in l is
// answered 401 mfa-required (an *Error whose Problem.Slug() says so).
func (c *Client) Login(ctx context.Context, l Login) (Grant, error) {
	var out Grant
	err := c.Do(ctx, "POST", "/v1/auth/login", l, &out)
	return out, err
}

// Refresh spends a refresh token for the session's next tokens.
func (c *Client) Refresh(ctx context.Context, refresh string) (Grant, error) {
	var out Grant
	err := c.Do(ctx, "POST", "/v1/auth/refresh", map[string]string{"refresh_token": refresh}, &out)
	return out, err
}

// Logout ends the session of the client's access token.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, "POST", "/v1/auth/logout", nil, nil)
}

// LogoutEverywhere ends every session of the client's user.
func (c *Client) LogoutEverywhere(ctx context.Context) error {
	return c.Do(ctx, "POST", "/v1/auth/logout", map[string]bool{"everywhere": true}, nil)
}

// Session is who the client's access token stands for.
func (c *Client) Session(ctx context.Context) (SessionInfo, error) {
	var out SessionInfo
	err := c.Do(ctx, "GET", "/v1/auth/session", nil, &out)
	return out, err
}

// EnrolMFA starts a TOTP enrolment of the session's user.
func (c *Client) EnrolMFA(ctx context.Context) (MFAEnrolment, error) {
	var out MFAEnrolment
	err := c.Do(ctx, "POST", "/v1/auth/mfa/enrol", nil, &out)
	return out, err
}

// ConfirmMFA completes the enrolment with a code and returns the recovery
// codes (shown once).
func (c *Client) ConfirmMFA(ctx context.Context, code string) ([]string, error) {
	var out struct {
		Codes []string `json:"recovery_codes"`
	}
	err := c.Do(ctx, "POST", "/v1/auth/mfa/confirm", map[string]string{"code": code}, &out)
	return out.Codes, err
}

// ---- a tenant's users and roles ----

// User is a tenant's user (no password, no secret).
type User struct {
	ID            string              `json:"id"`
	Tenant        string              `json:"tenant"`
	Username      string              `json:"username"`
	Role          string              `json:"role"`
	Scopes        map[string][]string `json:"scopes,omitempty"`
	Disabled      bool                `json:"disabled"`
	MFA           string              `json:"mfa"`
	RecoveryCodes int                 `json:"recovery_codes,omitempty"`
	CreatedAt     time.Time           `json:"created_at"`
	UpdatedAt     time.Time           `json:"updated_at"`
	Version       uint64              `json:"version"`
}

// NewUser is the body of POST /v1/tenants/{id}/users.
type NewUser struct {
	Username string              `json:"username"`
	Password string              `json:"password"`
	Role     string              `json:"role"`
	Scopes   map[string][]string `json:"scopes,omitempty"`
}

// UserPatch changes a user's role binding (nil: unchanged).
type UserPatch struct {
	Role   *string              `json:"role,omitempty"`
	Scopes *map[string][]string `json:"scopes,omitempty"`
}

// UserSession is one login session of a user.
type UserSession struct {
	ID          string    `json:"id"`
	User        string    `json:"user"`
	Tenant      string    `json:"tenant"`
	CreatedAt   time.Time `json:"created_at"`
	RefreshedAt time.Time `json:"refreshed_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Role is a role a tenant's users may hold, built in or the tenant's own,
// in the form of a custom role's definition.
type Role struct {
	Name        string            `json:"name"`
	Title       string            `json:"title,omitempty"`
	Permissions []string          `json:"permissions"`
	Visibility  map[string]string `json:"visibility"`
	MFA         bool              `json:"mfa,omitempty"`
	Builtin     bool              `json:"builtin,omitempty"`
	RequiresMFA bool              `json:"requires_mfa,omitempty"`
}

// CustomRole is the body of POST /v1/tenants/{id}/roles.
type CustomRole struct {
	Name        string            `json:"name"`
	Title       string            `json:"title,omitempty"`
	Permissions []string          `json:"permissions"`
	Visibility  map[string]string `json:"visibility"`
	MFA         bool              `json:"mfa,omitempty"`
}

func usersPath(tenant string) string { return "/v1/tenants/" + pathEscape(tenant) + "/users" }

func userPath(tenant, uid string) string { return usersPath(tenant) + "/" + pathEscape(uid) }

// CreateUser makes a user of tenant.
func (c *Client) CreateUser(ctx context.Context, tenant string, u NewUser) (User, error) {
	var out User
	err := c.Do(ctx, "POST", usersPath(tenant), u, &out)
	return out, err
}

// Users lists tenant's users.
func (c *Client) Users(ctx context.Context, tenant string) ([]User, error) {
	var out struct {
		Users []User `json:"users"`
	}
	err := c.Do(ctx, "GET", usersPath(tenant), nil, &out)
	return out.Users, err
}

// User reads one user.
func (c *Client) User(ctx context.Context, tenant, uid string) (User, error) {
	var out User
	err := c.Do(ctx, "GET", userPath(tenant, uid), nil, &out)
	return out, err
}

// UpdateUser changes a user's role or scopes.
func (c *Client) UpdateUser(ctx context.Context, tenant, uid string, p UserPatch) (User, error) {
	var out User
	err := c.Do(ctx, "PATCH", userPath(tenant, uid), p, &out)
	return out, err
}

// UserAction is one of the POST /users/{uid}/<action> routes: "disable",
// "enable", "reset-mfa", "unlock".
func (c *Client) UserAction(ctx context.Context, tenant, uid, action string) (User, error) {
	var out User
	err := c.Do(ctx, "POST", userPath(tenant, uid)+"/"+pathEscape(action), nil, &out)
	return out, err
}

// UserSessions lists a user's sessions.
func (c *Client) UserSessions(ctx context.Context, tenant, uid string) ([]UserSession, error) {
	var out struct {
		Sessions []UserSession `json:"sessions"`
	}
	err := c.Do(ctx, "GET", userPath(tenant, uid)+"/sessions", nil, &out)
	return out.Sessions, err
}

// RevokeUserSessions ends every session of a user and returns how many.
func (c *Client) RevokeUserSessions(ctx context.Context, tenant, uid string) (int, error) {
	var out struct {
		Revoked int `json:"revoked"`
	}
	err := c.Do(ctx, "DELETE", userPath(tenant, uid)+"/sessions", nil, &out)
	return out.Revoked, err
}

// RevokeUserSession ends one session of a user.
func (c *Client) RevokeUserSession(ctx context.Context, tenant, uid, sid string) error {
	return c.Do(ctx, "DELETE", userPath(tenant, uid)+"/sessions/"+pathEscape(sid), nil, nil)
}

// Roles lists the roles tenant's users may hold.
func (c *Client) Roles(ctx context.Context, tenant string) ([]Role, error) {
	var out struct {
		Roles []Role `json:"roles"`
	}
	err := c.Do(ctx, "GET", "/v1/tenants/"+pathEscape(tenant)+"/roles", nil, &out)
	return out.Roles, err
}

// Role reads one role.
func (c *Client) Role(ctx context.Context, tenant, name string) (Role, error) {
	var out Role
	err := c.Do(ctx, "GET", "/v1/tenants/"+pathEscape(tenant)+"/roles/"+pathEscape(name), nil, &out)
	return out, err
}

// CreateRole defines a custom role of tenant.
func (c *Client) CreateRole(ctx context.Context, tenant string, r CustomRole) (Role, error) {
	var out Role
	err := c.Do(ctx, "POST", "/v1/tenants/"+pathEscape(tenant)+"/roles", r, &out)
	return out, err
}

// NewOperator is an operator user to create: the cluster's own person,
// role Operator (MFA mandatory).
type NewOperator struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

const operatorsPath = "/v1/sys/operators"

func operatorPath(uid string) string { return operatorsPath + "/" + pathEscape(uid) }

// CreateOperator makes an operator user.
func (c *Client) CreateOperator(ctx context.Context, o NewOperator) (User, error) {
	var out User
	err := c.Do(ctx, "POST", operatorsPath, o, &out)
	return out, err
}

// Operators lists the operator users.
func (c *Client) Operators(ctx context.Context) ([]User, error) {
	var out struct {
		Users []User `json:"users"`
	}
	err := c.Do(ctx, "GET", operatorsPath, nil, &out)
	return out.Users, err
}

// Operator reads one operator user.
func (c *Client) Operator(ctx context.Context, uid string) (User, error) {
	var out User
	err := c.Do(ctx, "GET", operatorPath(uid), nil, &out)
	return out, err
}

// OperatorAction is POST /v1/sys/operators/{uid}/{action}: disable,
// enable, reset-mfa or unlock.
func (c *Client) OperatorAction(ctx context.Context, uid, action string) (User, error) {
	var out User
	err := c.Do(ctx, "POST", operatorPath(uid)+"/"+pathEscape(action), nil, &out)
	return out, err
}
