package roles

import "fmt"

// The permissions API keys were created with before roles (see
// appliance/apikeys), spelled here because this package sits below it;
// a test checks they match.
const (
	keyRead   = "read"
	keyWrite  = "write"
	keyDelete = "delete"
	keyExport = "export"
	keyAdmin  = "admin"
)

// apiKeyGrants is what each old API-key permission allowed on the
// routes that existed when keys had them, as permissions of the table.
// admin allowed every route a key could reach: the others' and a
// collection's schema. The consent routes came later and follow the same
// lines: a read key reads consent, a write key records a subject's choice
// (the application that talks to the subject: the IVR, the booking
// site), an admin key defines purposes and blob kinds as it defines
// schemas.
var apiKeyGrants = map[string]Set{
	keyRead:   SetOf(P(Collections, Read), P(Records, Read), P(Blobs, Read), P(Subjects, Read), P(Audit, Read), P(Consent, Read)),
	keyWrite:  SetOf(P(Records, Create), P(Records, Update), P(Blobs, Create), P(Consent, Create)),
	keyDelete: SetOf(P(Records, Delete), P(Blobs, Delete)),
	keyExport: SetOf(P(Audit, Export)),
	keyAdmin: SetOf(
		P(Collections, Read), P(Collections, Update),
		P(Records, Read), P(Records, Create), P(Records, Update), P(Records, Delete),
		P(Blobs, Read), P(Blobs, Create), P(Blobs, Delete),
		P(Subjects, Read), P(Audit, Read), P(Audit, Export),
		P(Consent, Read), P(Consent, Create), P(Consent, Update),
	),
}

// FromAPIKey returns the role an API key created with the old
// permissions (read, write, delete, export, admin) holds, so that old
// keys keep doing exactly what they did — no less, and nothing the old
// routes did not offer (admin is not Owner: it never managed users,
// keys or settings). Old keys read every field in clear (the API
// masked only on request), so the role's visibility is Clear throughout.
// It is not a built-in role: no built-in role reads pii in clear and
// changes nothing, as a read key does. The role is named "apikey"; its
// MFA requirement is not applied to keys (a key is one factor by design).
func FromAPIKey(perms []string) (Role, error) {
	var set Set
	for _, p := range perms {
		g, ok := apiKeyGrants[p]
		if !ok {
			return Role{}, fmt.Errorf("%w: %q", ErrUnknownAPIKeyPermission, p)
		}
		set = set.Union(g)
	}
	return Role{
		name: "apikey", title: "API key", perms: set,
		vis: visibility{pii: Clear, sensitive: Clear, internal: Clear},
	}, nil
}
