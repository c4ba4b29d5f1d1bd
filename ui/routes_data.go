package ui

// dataRoutes are the pages of the data area.
func (u *UI) dataRoutes() []route {
	return nil
}
