// Package firstbyte streams a response body whose producer may fail
// before it writes anything: such a failure must still become an error
// answer (a problem document, an error page), while one after the first
// byte can only cut the stream short. The API's exports and backups and
// the web UI's downloads share it, so the rule is written once.
package firstbyte

import (
	"bufio"
	"errors"
	"io"
)

// Start runs produce in its own goroutine, writing into a pipe, and waits
// for its first write or its end. An error before the first byte is
// returned (nothing was produced; the reader is nil). Otherwise the
// returned reader yields the body; a later error of produce ends it with
// that error. Close the reader when done: produce's writes then fail, so
// it stops.
func Start(produce func(w io.Writer) error) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	first := make(chan error, 1)
	go func() {
		fw := &firstWrite{w: pw, first: first}
		err := produce(fw)
		if !fw.started {
			first <- err
		}
		pw.CloseWithError(err)
	}()
	if err := <-first; err != nil {
		pr.Close()
		return nil, err
	}
	return pr, nil
}

// Pump copies r to w, flushing after each chunk (fasthttp's body stream
// writer sends what is flushed), until r ends. It returns the error that
// ended r early (nil at its end, or when w fails: the client went away).
func Pump(w *bufio.Writer, r io.Reader) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
			if werr := w.Flush(); werr != nil {
				return nil
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// firstWrite reports on first whether the producer started writing.
type firstWrite struct {
	w       io.Writer
	first   chan error
	started bool
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if !f.started {
		f.started = true
		f.first <- nil
	}
	return f.w.Write(p)
}
