package main

import (
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal: progress bars are drawn
// only there (a redirected stderr, a pipe or a test gets none).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newBar is a progress bar of total bytes (-1: unknown) on w when w is a
// terminal, nil otherwise; barWriter and finishBar accept nil.
func newBar(w io.Writer, total int64, what string) *progressbar.ProgressBar {
	if !isTerminal(w) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100e6),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
	)
}

// barWriter is w counting into bar (w itself without one).
func barWriter(w io.Writer, bar *progressbar.ProgressBar) io.Writer {
	if bar == nil {
		return w
	}
	return io.MultiWriter(w, bar)
}

// barReader is r counting into bar.
func barReader(r io.Reader, bar *progressbar.ProgressBar) io.Reader {
	if bar == nil {
		return r
	}
	return io.TeeReader(r, bar)
}

func finishBar(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
	}
}
