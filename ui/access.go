package ui

import (
	"strings"

	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/identity/roles"
)

// viewer is the signed-in person as the API resolved them for this
// request: their session, and what their role holds now.
type viewer struct {
	session client.SessionInfo
	// token: signed in with the operator token (--dev).
	token bool
	perms roles.Set
}

// resolve asks the API who the session's token stands for. The operator
// token (--dev) has no session: it is the Operator role.
func (u *UI) resolve(r *req, s stored) (*viewer, error) {
	if s.Token {
		op, _ := roles.Builtin("operator")
		return &viewer{token: true, perms: op.Permissions(),
			session: client.SessionInfo{Kind: "operator", ID: "operator", Role: op.Name(), ClusterWide: true}}, nil
	}
	si, err := r.api.Session(r.ctx)
	if err != nil {
		return nil, err
	}
	v := &viewer{session: si}
	for _, name := range si.Permissions {
		if p, err := roles.ParsePermission(name); err == nil {
			v.perms |= roles.SetOf(p)
		}
	}
	return v, nil
}

// operator: the person acts on the cluster (an operator user, or the
// operator token).
func (v *viewer) operator() bool { return v.session.ClusterWide }

// tenant is the person's own tenant ("" for an operator).
func (v *viewer) tenant() string { return v.session.Tenant }

// may reports whether the API's route table lets the viewer's role call
// method path (a path of /v1 in the route table's syntax, such as
// "/tenants/:id/records"): the UI shows a page, a link or a button only
// when its route is allowed; the API decides again when it is used. An
// operator reaches a tenant's data only under break-glass, which the
// role does not show: such pages stay hidden, and an operator with a
// grant opens them from the tenant's page.
func (u *UI) may(v *viewer, method, path string) bool {
	for _, op := range u.ops {
		if op.Method != method || op.Path != path {
			continue
		}
		switch {
		case op.Public:
			return true
		case op.Session:
			return !v.token
		case op.Cluster:
			return v.operator() && v.perms.Has(op.Need)
		default:
			return v.perms.Has(op.Need)
		}
	}
	return false
}

// mayAll is may for several routes given as "METHOD /path".
func (u *UI) mayAll(v *viewer, routes ...string) bool {
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt, " ")
		if !u.may(v, method, path) {
			return false
		}
	}
	return true
}
