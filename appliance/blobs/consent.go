package blobs

import (
	"context"
	"fmt"

	"github.com/custos/custos/internal/validation"
)

// Consent is what blobs asks of the subjects' consent (appliance/privacy
// /consent implements it; blobs does not import it). A blob may be of a
// kind the tenant defines (such as "call-recording"), whose policy names
// the purposes its subject must allow: RequireKind refuses an upload of a
// subject's blob of that kind without them (read false), and a read of
// one once the subject refused one (read true), with a
// *consent.RequiredError (403 consent-required) naming the purpose; an
// upload naming a kind the tenant does not define is a field error on
// kind.
type Consent interface {
	RequireKind(ctx context.Context, tenant, subject, kind string, read bool) error
}

// WithConsent has the service enforce blob kinds' purposes through c.
// Without it an upload may name no kind.
func WithConsent(c Consent) Option { return func(s *Service) { s.consent = c } }

// requireKind checks a blob of kind (none: nothing to check) of subject
// (none: only that the kind exists) for an upload or (read) a read.
func (s *Service) requireKind(ctx context.Context, tenant, subject, kind string, read bool) error {
	if kind == "" {
		return nil
	}
	if s.consent == nil {
		return validation.Field("kind", "is not a blob kind of the tenant")
	}
	if err := s.consent.RequireKind(ctx, tenant, subject, kind, read); err != nil {
		return fmt.Errorf("blobs: a blob of kind %s: %w", kind, err)
	}
	return nil
}
