package browser

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// recorder is the browser's proxy: it records the first line of every
// request that reaches it (anything Chromium sends to a host other than
// loopback) and answers 403, so nothing leaves the machine and the test
// can say what tried.
type recorder struct {
	ln   net.Listener
	addr string
	wg   sync.WaitGroup

	mu   sync.Mutex
	reqs []string
}

func startRecorder() (*recorder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("browser: proxy recorder: %w", err)
	}
	r := &recorder{ln: ln, addr: ln.Addr().String()}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

func (r *recorder) serve() {
	defer r.wg.Done()
	for {
		conn, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			req, err := http.ReadRequest(bufio.NewReader(conn))
			line := "(unreadable request)"
			if err == nil {
				line = req.Method + " " + req.RequestURI
			}
			// A proxied request names its host (CONNECT host:port, or an
			// absolute URL); one with only a path came here directly, sent
			// by a flag that points a Chromium service at the recorder.
			if err != nil || req.Method == http.MethodConnect || !strings.HasPrefix(req.RequestURI, "/") {
				r.mu.Lock()
				r.reqs = append(r.reqs, line)
				r.mu.Unlock()
			}
			_, _ = conn.Write([]byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		}()
	}
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...)
}

func (r *recorder) close() {
	_ = r.ln.Close()
	r.wg.Wait()
}
