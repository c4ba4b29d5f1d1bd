package config

import (
	"fmt"
	"io"

	"github.com/knadh/koanf/maps"
	"github.com/knadh/koanf/parsers/toml"
)

// Dump writes c to w as TOML, keys sorted, secrets shown as "[redacted]".
// The output is a valid configuration file, though one that would set any
// secret to the literal "[redacted]".
func Dump(w io.Writer, c *Config) error {
	b, err := toml.Parser().Marshal(maps.Unflatten(flatten(c, true), "."))
	if err != nil {
		return fmt.Errorf("config: dump: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("config: dump: %w", err)
	}
	return nil
}
