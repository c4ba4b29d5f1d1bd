package ui_test

import (
	"testing"

	"github.com/custos/custos/internal/testkit/e2e"
)

// TestMain removes the custos binary the browser tests build
// (internal/testkit/e2e builds it once per test binary).
func TestMain(m *testing.M) { e2e.Main(m) }
