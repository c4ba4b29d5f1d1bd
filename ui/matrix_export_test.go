package ui

import "strings"

// NavEntry is one entry of the navigation, for the role matrix test
// (package ui_test): where it goes and the API route it needs.
type NavEntry struct {
	Label, Path, Need string
	Tenant            bool
}

// NavEntries are the navigation's entries in order.
func NavEntries() []NavEntry {
	out := make([]NavEntry, 0, len(navItems))
	for _, it := range navItems {
		out = append(out, NavEntry{Label: it.Label, Path: it.Path, Need: it.Need, Tenant: it.Tenant})
	}
	return out
}

// Href is the entry's link in tenant ("" outside a tenant).
func (e NavEntry) Href(tenant string) string {
	return navHref(navItem{Path: e.Path, Tenant: e.Tenant}, tenant)
}

// Route is the page path (below /ui, fiber's syntax) the entry opens.
func (e NavEntry) Route() string {
	if !e.Tenant {
		return strings.TrimPrefix(e.Path, "/ui")
	}
	return "/t/:tenant" + e.Path
}
