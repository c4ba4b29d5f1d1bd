package api

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/internal/validation"
)

// RootToken revokes and regenerates the root operator token (the
// break-glass root credential); *cluster.Service implements it.
type RootToken interface {
	RevokeOperatorToken(ctx context.Context, who audit.Principal) error
	StartRootGeneration(ctx context.Context, who audit.Principal) (cluster.Challenge, error)
	GenerateOperatorToken(ctx context.Context, who audit.Principal, nonce string) (string, error)
}

var _ RootToken = (*cluster.Service)(nil)

// sealHolder is the principal of the unauthenticated regeneration
// routes: whoever claims to hold the seal identity, as the system chain
// records it (with the request's source).
func sealHolder(c *fiber.Ctx) audit.Principal {
	return audit.Principal{Kind: audit.ActorOperator, ID: "seal-identity", RequestID: requestID(c), Source: clipN(c.IP(), 64)}
}

// maxNonce bounds a regeneration's answer (openapi.json says so too).
const maxNonce = 256

// generateRootRequest answers a regeneration challenge.
type generateRootRequest struct {
	Nonce string `json:"nonce"`
}

type rootTokenResponse struct {
	Token string `json:"token"`
}

func (s *server) revokeRootToken(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.RootToken.RevokeOperatorToken(ctx, in.who); err != nil {
		return fmt.Errorf("api: revoke the root token: %w", err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) startRootGeneration(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	ch, err := s.deps.RootToken.StartRootGeneration(ctx, sealHolder(c))
	if err != nil {
		return fmt.Errorf("api: root token generation: %w", err)
	}
	return c.Status(fiber.StatusCreated).JSON(ch)
}

func (s *server) generateRootToken(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	nonce := bodyOf[generateRootRequest](in).Nonce
	if utf8.RuneCountInString(nonce) > maxNonce {
		return validation.Field("nonce", fmt.Sprintf("must be at most %d characters", maxNonce))
	}
	tok, err := s.deps.RootToken.GenerateOperatorToken(ctx, sealHolder(c), nonce)
	if err != nil {
		return fmt.Errorf("api: root token generation: %w", err)
	}
	return c.Status(fiber.StatusCreated).JSON(rootTokenResponse{Token: tok})
}
