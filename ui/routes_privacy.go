package ui

// privacyRoutes are the pages of the privacy area.
func (u *UI) privacyRoutes() []route {
	return nil
}
