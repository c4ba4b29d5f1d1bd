package ui

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// clusterRoutes are the operator's pages of the cluster: its nodes and
// the cluster's operators.
func (u *UI) clusterRoutes() []route {
	return []route{
		{path: "/cluster", need: "GET /sys/status", handle: u.clusterPage},
		{path: "/operators", need: "GET /sys/operators", actions: []string{"POST /sys/operators",
			"POST /sys/operators/:uid/disable", "POST /sys/operators/:uid/enable",
			"POST /sys/operators/:uid/reset-mfa", "POST /sys/operators/:uid/unlock"}, handle: u.operatorsPage},
		{path: "/operators", post: true, handle: u.createOperator},
		{path: "/operators/:uid/:action", post: true, handle: u.operatorAction},
	}
}

// clusterData is the cluster page's. Everything on it is what this node
// answers through the API: its own status, health and metrics, and the
// replicated system audit chain. The UI calls no other node, so the
// health and seal state of another node are not known here (see
// nodeRow); the leader's and this node's are.
type clusterData struct {
	Status client.Status
	Nodes  []nodeRow
	// Health is this node's /sys/health: "ok", "sealed" or "no leader".
	Health string
	// Sealed: this node cannot open tenant keys (from its metrics; its
	// health says so too).
	Sealed  bool
	Figures []figure
	// Membership and Backups are the latest entries of the system audit
	// chain of those kinds, newest first; AuditWindow how many of the
	// chain's latest entries were searched (0: the whole chain).
	Membership  []auditRow
	Backups     []auditRow
	AuditWindow uint64
	AuditError  *client.Problem
	// MetricsError is why the figures are missing.
	MetricsError *client.Problem
	// BackupAge is the age of this node's latest scheduled backup (from
	// its metrics; "" when it takes none).
	BackupAge string
}

// nodeRow is one member of the raft configuration as this node sees it.
type nodeRow struct {
	client.Peer
	This bool
	// Health and Seal are this node's own, or what this node knows of
	// the peer ("" for unknown).
	Health, Seal string
	// Contact is how long ago this node last heard from the leader (on
	// a follower's page, the leader's row).
	Contact string
	// Heartbeat is the leader's view of a follower (on the leader's
	// page): "ok" or "failing", with Answered how long ago the follower
	// last answered ("never").
	Heartbeat, Answered string
}

// auditRow is a system audit entry shown on the cluster page.
type auditRow struct {
	Seq                     uint64
	Time                    time.Time
	Age                     string
	Action, Target, Outcome string
	Actor                   string
	Details                 string
}

func (u *UI) clusterPage(r *req) error {
	st, err := r.api.Status(r.ctx)
	if err != nil {
		return err
	}
	d := clusterData{Status: st, Health: "ok"}
	if h, err := r.api.Health(r.ctx); err != nil {
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != fiber.StatusServiceUnavailable {
			return err
		}
		d.Health = "unavailable"
	} else if h.Sealed {
		d.Health = "sealed"
	}
	var m metricSet
	if u.may(r.v, "GET", "/sys/metrics") {
		// The figures are a glance: without them the page still shows
		// the rest, and says why they are missing.
		var b strings.Builder
		err := r.api.Download(r.ctx, "/v1/sys/metrics", &limitedWriter{w: &b, n: maxMetrics})
		if err == nil {
			m, err = parseMetrics(b.String())
		}
		if err != nil {
			u.log.Warn("ui: cluster page without metrics", "request_id", r.id, "error", err)
			d.MetricsError = problemFrom(err, r.id)
		}
		d.Figures = m.figures()
		d.Sealed = m.value("custos_keyring_sealed") == 1
		if m.has("custos_backup_age_seconds") {
			d.BackupAge = ageOf(m.value("custos_backup_age_seconds"))
		}
	}
	if d.Sealed && d.Health == "ok" {
		d.Health = "sealed"
	}
	d.Nodes = nodeRows(st, d.Health, d.Sealed, m, u.now())
	if u.may(r.v, "GET", "/sys/audit") {
		if err := u.systemEvents(r, &d); err != nil {
			d.AuditError = problemFrom(err, r.id)
		}
	}
	return r.render(fiber.StatusOK, "cluster", "Cluster", d)
}

// nodeRows are the peers: this node's health and seal state on its row;
// on the leader, each follower's heartbeats as the leader sees them; on
// a follower, when it last heard from the leader (what a node knows of
// another).
func nodeRows(st client.Status, health string, sealed bool, m metricSet, now time.Time) []nodeRow {
	var out []nodeRow
	for _, p := range st.Peers {
		row := nodeRow{Peer: p, This: p.ID == st.NodeID}
		switch {
		case row.This:
			row.Health = health
			row.Seal = "unsealed"
			if sealed {
				row.Seal = "sealed"
			}
		case p.Heartbeat != "":
			row.Heartbeat, row.Answered = p.Heartbeat, "never"
			if !p.LastContact.IsZero() {
				row.Answered = ageOf(now.Sub(p.LastContact).Seconds()) + " ago"
			}
		case p.Leader && m.has("custos_raft_last_contact_seconds"):
			row.Contact = ageOf(m.value("custos_raft_last_contact_seconds"))
		}
		out = append(out, row)
	}
	slices.SortStableFunc(out, func(a, b nodeRow) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ageOf writes seconds as a short age ("never" for +Inf or NaN).
func ageOf(sec float64) string {
	if sec != sec || sec > 1e12 || sec < 0 {
		return "never"
	}
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// ---- operators ----

// operatorsData is the operator users' page.
type operatorsData struct {
	Users    []client.User
	Username string
	Error    *client.Problem
}

func (u *UI) operatorsPage(r *req) error {
	return u.renderOperators(r, fiber.StatusOK, "", nil)
}

func (u *UI) renderOperators(r *req, status int, username string, problem *client.Problem) error {
	users, err := r.api.Operators(r.ctx)
	if err != nil {
		return err
	}
	slices.SortStableFunc(users, func(a, b client.User) int { return strings.Compare(a.Username, b.Username) })
	if len(users) > maxOperatorsShown {
		users = users[:maxOperatorsShown]
	}
	return r.render(status, "operators", "Operators", operatorsData{Users: users, Username: username, Error: problem})
}

// maxOperatorsShown bounds the table (the API lists every operator user;
// a cluster has a handful).
const maxOperatorsShown = 200

func (u *UI) createOperator(r *req) error {
	name := strings.TrimSpace(r.c.FormValue("username"))
	created, err := r.api.CreateOperator(r.ctx, client.NewOperator{Username: name, Password: r.c.FormValue("password")})
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderOperators(r, status, name, p) })
	}
	return r.done("/ui/operators", "Operator "+created.Username+" created: they enrol a second factor at their first sign-in.")
}

// operatorDid says what an operator user action did ("": no such
// action).
func operatorDid(action string) string {
	switch action {
	case "disable":
		return "disabled: their sessions end and they cannot sign in"
	case "enable":
		return "enabled"
	case "reset-mfa":
		return "has no second factor now: they enrol a new one at their next sign-in"
	case "unlock":
		return "unlocked"
	}
	return ""
}

func (u *UI) operatorAction(r *req) error {
	uid, action := r.c.Params("uid"), r.c.Params("action")
	what := operatorDid(action)
	if what == "" {
		return u.notFound(r.c)
	}
	user, err := r.api.OperatorAction(r.ctx, uid, action)
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderOperators(r, status, "", p) })
	}
	return r.done("/ui/operators", "Operator "+user.Username+" "+what+".")
}
