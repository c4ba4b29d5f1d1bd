package ui

import "github.com/custos/custos/appliance/client"

// consentStats is the consent page's chart of consent rates.
type consentStats struct {
	Chart Chart
	Note  string
}

// consentStats reads the tenant's consent rates per purpose (nil when the
// person may not read them).
func (u *UI) consentStats(r *req, ps []client.Purpose) (*consentStats, error) {
	return nil, nil
}
