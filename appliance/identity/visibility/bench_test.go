package visibility_test

import (
	"context"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/visibility"
)

// BenchmarkSight is the visibility decision a record read makes, for a
// key bound to a built-in role and for an old key (whose role is built
// from its permissions each time).
func BenchmarkSight(b *testing.B) {
	r := visibility.New()
	ctx := context.Background()
	for _, p := range []audit.Principal{
		{Kind: audit.ActorAPIKey, ID: "k", Tenant: "acme", Role: "concierge"},
		{Kind: audit.ActorAPIKey, ID: "k", Tenant: "acme", Permissions: []string{"read", "write"}},
	} {
		name := p.Role
		if name == "" {
			name = "old-key"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := r.Sight(ctx, p, "acme"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
