//go:build bench

package ui_test

import (
	"testing"

	"github.com/custos/custos/internal/testkit/uitest"
)

// firstRender measures the time to first render of each page in
// headless Chromium (not yet: the chromedp harness lands with the
// browser tests).
func firstRender(t *testing.T, n *uitest.Node, owner, operator *uitest.Browser, pages []benchPage) string {
	return ""
}
