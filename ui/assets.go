package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"mime"
	"path"

	"github.com/gofiber/fiber/v2"
)

//go:embed assets
var assetFS embed.FS

// asset serves an embedded file of assets/ with a strong ETag; the
// stylesheet and the script are small, so they are served whole.
func (u *UI) asset(c *fiber.Ctx) error {
	name := c.Params("name")
	b, err := assetFS.ReadFile("assets/" + path.Base(name))
	if err != nil || path.Base(name) != name {
		return u.notFound(c)
	}
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
	if c.Get(fiber.HeaderIfNoneMatch) == etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = fiber.MIMEOctetStream
	}
	c.Set(fiber.HeaderContentType, ct)
	return c.Send(b)
}
