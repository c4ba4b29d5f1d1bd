package api

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/roles"
)

// BenchmarkAuthorize is the permission check of an audited record read by
// id, alone: authorize's decision on the route's declared access for a
// principal already authenticated (the tenant of the path, suspension,
// the role's permission), on a routed request. Run beside
// BenchmarkAuditedRead (same command, same run), its ns/op divided by the
// read's is the share of the read the permission check costs — the issue's
// "permission and scope checks add ≤ 5 % to audited record reads by id".
func BenchmarkAuthorize(b *testing.B) {
	const path = "/tenants/:id/collections/:name/records/:rid"
	var a access
	found := false
	for _, rt := range (&server{}).routes() {
		if rt.method == fiber.MethodGet && rt.path == path {
			a, found = rt.access, true
		}
	}
	if !found {
		b.Fatalf("no route GET %s", path)
	}
	role, ok := roles.Builtin("manager")
	if !ok {
		b.Fatal("no manager role")
	}
	p := caller{who: audit.Principal{Kind: audit.ActorAPIKey, ID: "key-1", Tenant: "acme", Role: "manager", Scopes: map[string][]string{"property": {"villa-a"}}}, role: role}
	s := &server{log: slog.New(slog.DiscardHandler)}
	app := fiber.New()
	var err error
	app.Get("/v1"+path, func(c *fiber.Ctx) error {
		c.Locals(principalKey, p)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err = s.authorize(c, a); err != nil {
				break
			}
		}
		b.StopTimer()
		return nil
	})
	resp, terr := app.Test(httptest.NewRequest("GET", "/v1/tenants/acme/collections/guests/records/r1", nil), -1)
	if terr != nil {
		b.Fatal(terr)
	}
	resp.Body.Close()
	if err != nil {
		b.Fatalf("authorize refused the manager's read: %v", err)
	}
}
