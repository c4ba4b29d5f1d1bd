package ui

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/boombuler/barcode/qr"
)

// qrSVG draws text as a QR code in SVG, one rect per dark module: the
// enrolment page shows the otpauth URI without an image request (a new
// request would start a new enrolment) and without a data: URL (the CSP
// allows none). boombuler/barcode is the encoder the TOTP library uses
// for its PNG already.
func qrSVG(text, label string) (template.HTML, error) {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return "", fmt.Errorf("ui: qr code: %w", err)
	}
	n := code.Bounds().Dx()
	const quiet = 4
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" width="232" height="232" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg" shape-rendering="crispEdges"><rect width="100%%" height="100%%" fill="#fff"/>`,
		n+2*quiet, n+2*quiet, template.HTMLEscapeString(label))
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if r, _, _, _ := code.At(x, y).RGBA(); r == 0 {
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="1" height="1" fill="#000"/>`, x+quiet, y+quiet)
			}
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), nil // only numbers and the escaped label
}
