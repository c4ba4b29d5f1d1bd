package audit

import (
	"maps"
	"time"

	"github.com/custos/custos/internal/tenancy"
)

// Principal is who acts. The API's one authentication step builds it once
// per request (from the operator token or a tenant's API key); Custos
// acting on its own is System. Every service the request calls is handed
// it whole, and every audit entry the request writes records it, so who
// did something has one type from the request to the log (keyring takes
// it as a keyring.Auditor, without knowing this package).
//
// It lives here, below every service, because the audit entry is what
// every service makes of it; it knows nothing of HTTP or tokens.
//
// It grows by kinds: a user of a tenant, or a session, adds a kind and
// fills the same fields — its tenant, and its role —
// so no service signature changes.
type Principal struct {
	// Kind is what authenticated: ActorOperator (the operator token) or
	// ActorAPIKey (a tenant's API key); ActorSystem is Custos itself. It
	// is the entry's actor type.
	Kind string
	// ID names the principal within its kind: "operator", the API key's
	// id. It is the entry's actor id.
	ID string
	// Tenant is the tenant the principal belongs to, and the only one it
	// may act in; empty for the operator and the system, which belong to
	// none and may act in every tenant.
	Tenant string
	// Role names the built-in role the principal is bound to (an API key
	// created with a role); empty for a key created with Permissions, the
	// operator and the system. What the role allows is the API's to
	// decide, with the roles package: this package knows only the name.
	Role string
	// Permissions are the old permissions of an API key created with
	// them (the apikeys.Perm* names); nil for a key bound to a Role, the
	// operator and the system, which may do everything.
	Permissions []string
	// RequestID is the id of the request it acts in, and Source the
	// client's address, as entries record them; empty for the system.
	RequestID string
	Source    string
	// Scopes are the attribute scopes of the principal's role binding:
	// attribute name → the values it may see (property → villa-a,
	// villa-b). A principal with scopes sees, finds, lists and counts
	// only items whose attributes match every named attribute with one
	// of its values; nil: unscoped. The tenant-scoped store handles
	// enforce it (internal/tenancy), not handlers.
	Scopes map[string][]string
	// Session is the id of the login session a person's access token
	// belongs to (a tenant user's or an operator user's); empty for the
	// root token, API keys and the system.
	Session string
	// Reason is why the person reads what this request reads, as they
	// gave it (the web UI's "reveal" of a record in clear asks for one;
	// the API takes it as the reason query parameter of a record or
	// subject read): every entry of the request records it as its
	// "reason" detail, so the log says who read what in clear and why.
	// At most MaxReason bytes; empty: none given.
	Reason string
}

// MaxReason bounds Principal.Reason in bytes: what an entry's detail
// value may hold.
const MaxReason = maxDetailVal

// Restriction is p's attribute scope as the tenant-scoped store handles
// enforce it: the services restrict the handle they read and write a
// tenant's items through with it (tenancy.Scope.Restrict), so that a
// scoped principal reaches nothing outside its scope by any route.
func (p Principal) Restriction() tenancy.Restriction { return tenancy.Restrict(p.Scopes) }

// System is the principal of what Custos does on its own.
func System() Principal { return Principal{Kind: ActorSystem, ID: "system"} }

// Actor is the principal as an entry records it.
func (p Principal) Actor() Actor { return Actor{Type: p.Kind, ID: p.ID} }

// Entry makes an entry of p's action at now.
// The entry's details are details, with the principal's reason when it
// gave one (details itself is not changed).
func (p Principal) Entry(now time.Time, action, target, outcome string, details map[string]string) Entry {
	if p.Reason != "" {
		d := make(map[string]string, len(details)+1)
		maps.Copy(d, details)
		d["reason"] = p.Reason
		details = d
	}
	return Entry{Time: now, Actor: p.Actor(), Action: action, Target: target, Outcome: outcome,
		RequestID: p.RequestID, Source: p.Source, Details: details}
}

// AuditEntry is the canonical encoding of the successful entry of p's
// action on target at at: what keyring records of a key operation (it
// implements keyring.Auditor, so keyring need not know the entry format).
func (p Principal) AuditEntry(at time.Time, action, target string) ([]byte, error) {
	e := p.Entry(at, action, target, OutcomeSuccess, nil)
	return e.Encode()
}
