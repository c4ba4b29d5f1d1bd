package records_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/identity/visibility"
	"github.com/custos/custos/appliance/records"
	"github.com/custos/custos/internal/testkit/storetest"
)

type grant bool

func (g grant) Granted(context.Context, string, audit.Principal) (bool, error) { return bool(g), nil }

// The service, not only the API's routes, keeps operators out of a
// tenant's data: an operator (the root token or an operator user) reads
// no field and cannot search by one — unless the resolver's break-glass
// source says it holds a grant, then it reads in clear. The checks sit
// where the record is opened, whatever route or caller reaches it.
func TestOperatorsReadNoData(t *testing.T) {
	e := newEnv(t, storetest.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name, tenant string
		opts         []records.Option
		granted      bool
	}{
		{"no break-glass source", "acme", nil, false},
		{"no grant", "initech", []records.Option{records.WithVisibility(visibility.New(visibility.WithGrants(grant(false))))}, false},
		{"a grant", "globex", []records.Option{records.WithVisibility(visibility.New(visibility.WithGrants(grant(true))))}, true},
	} {
		svc := records.New(e.b, e.keys, e.colls, nil, tc.opts...)
		tenant := tc.tenant
		e.tenant(svc, tenant)
		for _, op := range []audit.Principal{{Kind: audit.ActorOperator, ID: "operator"}, {Kind: audit.ActorOperator, ID: "op_x"}} {
			size := e.chainSize(tenant)
			rec, err := svc.Get(ctx, op, tenant, "guests", "g1", false)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			// The entry records how the reader read.
			want := map[bool]string{false: "pii=none,sensitive=none,internal=none", true: "pii=clear,sensitive=clear,internal=clear"}[tc.granted]
			if got := e.entries(tenant, size, "record.read"); len(got) != 1 || got[0].Details["sight"] != want || got[0].Actor != op.Actor() {
				t.Errorf("%s: %s's record.read entries: %+v", tc.name, op.ID, got)
			}
			_, _, ferr := svc.Find(ctx, op, tenant, "guests", "email", json.RawMessage(`"jane@`+tenant+`.example"`), "", 10)
			if tc.granted {
				if string(rec.Fields["email"]) != `"jane@`+tenant+`.example"` || len(rec.Withheld) != 0 || ferr != nil {
					t.Errorf("%s: %s reads %+v, find %v", tc.name, op.ID, rec, ferr)
				}
				continue
			}
			if len(rec.Fields) != 0 || !slices.Equal(rec.Withheld, []string{"email", "n"}) {
				t.Errorf("%s: %s reads %+v", tc.name, op.ID, rec)
			}
			if !errors.Is(ferr, records.ErrFindWithheld) || !errors.Is(ferr, visibility.ErrWithheld) {
				t.Errorf("%s: %s finds by email: %v", tc.name, op.ID, ferr)
			}
		}
	}
}
