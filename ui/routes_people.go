package ui

// peopleRoutes are the pages of the people area.
func (u *UI) peopleRoutes() []route {
	return nil
}
