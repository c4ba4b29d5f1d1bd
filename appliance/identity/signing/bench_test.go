package signing

import (
	"testing"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/internal/testkit/storetest"
)

// BenchmarkKeysVerify is verification as the API does it, through the
// node's Keys (the current authority, its clock, the node's cache) of a
// token seen before: with -cpu 1, ns/op is the cost on one core of every
// request of a session after its first.
func BenchmarkKeysVerify(b *testing.B) {
	ctx := b.Context()
	s := storetest.Start(b)
	ids := sealIdentity(b, ctx, s)
	k, err := Open(ctx, tenancy.New(s), Options{Issuer: testIssuer, Identities: ids})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := k.Issue(ctx, claims())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := k.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
