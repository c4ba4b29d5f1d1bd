package api

import (
	"bytes"
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// openapiJSON is the API's OpenAPI 3.0 description. It is written by hand
// and is the source of truth: tests check it against the route table and
// validate every request and response of the API and end-to-end tests
// against it, so it cannot drift from the code unnoticed.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPISpec returns the OpenAPI description the API serves at
// /v1/openapi.json. It is a copy, so callers may change it.
func OpenAPISpec() []byte { return bytes.Clone(openapiJSON) }

// openapi serves the description without a token: like the route table
// (unknown routes are answered without one), it is public.
func (s *server) openapi(c *fiber.Ctx, _ *input) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openapiJSON)
}
