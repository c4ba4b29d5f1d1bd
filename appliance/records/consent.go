package records

import (
	"context"
	"fmt"

	"github.com/custos/custos/appliance/collections"
)

// Consent is what records asks of the subjects' consent (appliance/privacy
// /consent implements it; records does not import it): a write of a
// subject's record in a collection whose schema lists purposes needs
// every one allowed now (Require), and a read is refused once the subject
// refused one (RequireRead: withdrew, restricted, opted out). Both answer
// a *consent.RequiredError (403 consent-required) naming the purpose.
type Consent interface {
	Require(ctx context.Context, tenant, subject string, purposes ...string) error
	RequireRead(ctx context.Context, tenant, subject string, purposes ...string) error
}

// WithConsent has the service enforce the purposes collections require of
// their records' subjects through c. Without it nothing is checked (a
// node always wires it).
func WithConsent(c Consent) Option { return func(s *Service) { s.consent = c } }

// requireConsent checks the subject's consent to the purposes sc lists,
// for a write or (read) a read. A record without a subject is not checked:
// nobody's consent applies to it.
func (s *Service) requireConsent(ctx context.Context, tenant, subject string, sc *collections.Schema, read bool) error {
	if s.consent == nil || subject == "" || len(sc.Purposes) == 0 {
		return nil
	}
	var err error
	if read {
		err = s.consent.RequireRead(ctx, tenant, subject, sc.Purposes...)
	} else {
		err = s.consent.Require(ctx, tenant, subject, sc.Purposes...)
	}
	if err != nil {
		return fmt.Errorf("records: %s of a record of %s: %w", map[bool]string{true: "read", false: "write"}[read], sc.Name, err)
	}
	return nil
}
