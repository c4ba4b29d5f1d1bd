package raftstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/rpc"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Every node-to-node connection is TLS on the one cluster port. The first
// byte the client sends after the handshake picks the channel:
//
//	'R' raft's own RPCs (requires a verified node certificate)
//	'C' cluster RPCs: forwarded writes, read index, membership (same)
//	'J' the join handshake (no client certificate yet; the join token
//	    authenticates the caller and the token's CA fingerprint
//	    authenticates the cluster)
const (
	chanRaft    byte = 'R'
	chanCluster byte = 'C'
	chanJoin    byte = 'J'
)

// mux accepts TLS connections and routes them by channel byte.
type mux struct {
	ln        net.Listener
	serverTLS *tls.Config
	clientTLS *tls.Config
	advertise net.Addr
	logger    *slog.Logger

	raftConns chan net.Conn
	onCluster func(net.Conn)
	onJoin    func(net.Conn)

	faults *netFaults

	closeOnce sync.Once
	done      chan struct{}
}

// netFaults lets tests cut links: dials to blocked addresses fail and
// connections from blocked node ids are dropped. It also lets them stall
// the node: see stall.
type netFaults struct {
	mu    sync.Mutex
	addrs map[string]bool
	ids   map[string]bool
	live  map[*trackedConn]bool
	// resume is non-nil while the node is stalled, and closed when it
	// resumes. Atomic: every read and write of a tracked connection
	// looks at it.
	resume atomic.Pointer[chan struct{}]
}

// stall makes the node silent the way a paused process (SIGSTOP) is, seen
// from the network: its connections neither deliver what arrives nor send,
// it accepts and dials nothing, and nothing is closed, so its peers see no
// error, only silence — unlike a cut link (set), whose closed connections
// tell the peers at once. unstall resumes it; a test must unstall a node
// before closing it.
func (f *netFaults) stall() {
	ch := make(chan struct{})
	f.resume.CompareAndSwap(nil, &ch)
}

func (f *netFaults) unstall() {
	if ch := f.resume.Swap(nil); ch != nil {
		close(*ch)
	}
}

// waitRunning blocks while the node is stalled.
func (f *netFaults) waitRunning() {
	if f == nil {
		return
	}
	if ch := f.resume.Load(); ch != nil {
		<-*ch
	}
}

// trackedConn is a live connection that a test fault can cut.
type trackedConn struct {
	net.Conn
	f        *netFaults
	addr, id string
}

func (c *trackedConn) Read(b []byte) (int, error) {
	c.f.waitRunning()
	n, err := c.Conn.Read(b)
	// What arrives while the node is stalled waits, as it would in the
	// socket of a paused process.
	c.f.waitRunning()
	return n, err
}

func (c *trackedConn) Write(b []byte) (int, error) {
	c.f.waitRunning()
	return c.Conn.Write(b)
}

func (c *trackedConn) Close() error {
	c.f.mu.Lock()
	delete(c.f.live, c)
	c.f.mu.Unlock()
	return c.Conn.Close()
}

func (f *netFaults) track(conn net.Conn, addr, id string) net.Conn {
	c := &trackedConn{Conn: conn, f: f, addr: addr, id: id}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live == nil {
		f.live = map[*trackedConn]bool{}
	}
	f.live[c] = true
	return c
}

func (f *netFaults) blocked(addr, id string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs[addr] || f.ids[id]
}

func (f *netFaults) set(addrs, ids []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs, f.ids = map[string]bool{}, map[string]bool{}
	for _, a := range addrs {
		f.addrs[a] = true
	}
	for _, i := range ids {
		f.ids[i] = true
	}
	for c := range f.live {
		if f.addrs[c.addr] || f.ids[c.id] {
			delete(f.live, c)
			c.Conn.Close()
		}
	}
}

func (m *mux) serve() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Error("cluster listener failed", "error", err)
			return
		}
		go m.route(conn)
	}
}

func (m *mux) route(raw net.Conn) {
	m.faults.waitRunning()
	conn := tls.Server(raw, m.serverTLS)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := conn.Handshake(); err != nil {
		m.logger.Debug("cluster tls handshake failed", "remote", raw.RemoteAddr(), "error", err)
		conn.Close()
		return
	}
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	state := conn.ConnectionState()
	peerID := ""
	if len(state.VerifiedChains) > 0 {
		peerID = state.VerifiedChains[0][0].Subject.CommonName
	}
	if b[0] != chanJoin && (peerID == "" || m.faults.blocked("", peerID)) {
		conn.Close()
		return
	}
	tracked := m.faults.track(conn, "", peerID)
	switch b[0] {
	case chanRaft:
		select {
		case m.raftConns <- tracked:
		case <-m.done:
			tracked.Close()
		}
	case chanCluster:
		m.onCluster(tracked)
	case chanJoin:
		m.onJoin(conn)
	default:
		tracked.Close()
	}
}

// dial opens a mutual-TLS connection on channel ch.
func (m *mux) dial(addr string, ch byte, timeout time.Duration) (net.Conn, error) {
	m.faults.waitRunning()
	if m.faults.blocked(addr, "") {
		return nil, fmt.Errorf("dial %s: link cut (test fault)", addr)
	}
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", addr, m.clientTLS)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte{ch}); err != nil {
		conn.Close()
		return nil, err
	}
	return m.faults.track(conn, addr, ""), nil
}

func (m *mux) close() {
	m.closeOnce.Do(func() {
		close(m.done)
		m.ln.Close()
	})
}

// streamLayer adapts the mux to raft.StreamLayer.
type streamLayer struct{ m *mux }

var _ raft.StreamLayer = streamLayer{}

func (s streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.m.raftConns:
		return c, nil
	case <-s.m.done:
		return nil, errors.New("raftstore: listener closed")
	}
}

func (s streamLayer) Close() error   { s.m.close(); return nil }
func (s streamLayer) Addr() net.Addr { return s.m.advertise }

func (s streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.m.dial(string(addr), chanRaft, timeout)
}

// rpcPool keeps one multiplexed net/rpc client per peer address.
type rpcPool struct {
	m  *mux
	mu sync.Mutex
	c  map[string]*rpc.Client
}

func (p *rpcPool) get(addr string, timeout time.Duration) (*rpc.Client, error) {
	p.mu.Lock()
	c, ok := p.c[addr]
	p.mu.Unlock()
	if ok {
		return c, nil
	}
	// Dialed without holding the lock: a peer that accepts connections
	// but does not answer (a paused process: the kernel completes the TCP
	// handshake, the TLS handshake waits) would otherwise hold up every
	// call to every other peer, the new leader's too, for the dial
	// timeout.
	conn, err := p.m.dial(addr, chanCluster, timeout)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.c[addr]; ok {
		// Another caller dialed meanwhile: use its client.
		conn.Close()
		return c, nil
	}
	pc := &poolConn{Conn: conn}
	c = rpc.NewClient(pc)
	// A broken connection leaves the pool as soon as its reader sees the
	// error, so later calls redial instead of failing on a dead client.
	pc.onErr = func() { p.drop(addr, c) }
	if p.c == nil {
		p.c = map[string]*rpc.Client{}
	}
	p.c[addr] = c
	return c, nil
}

type poolConn struct {
	net.Conn
	once  sync.Once
	onErr func()
}

func (c *poolConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.onErr != nil {
		c.once.Do(func() { go c.onErr() })
	}
	return n, err
}

// drop forgets a client after a transport error so the next call redials.
func (p *rpcPool) drop(addr string, c *rpc.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c[addr] == c {
		delete(p.c, addr)
		c.Close()
	}
}

func (p *rpcPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, c := range p.c {
		c.Close()
		delete(p.c, a)
	}
}

// serverAddr is a net.Addr for an advertised host:port.
type serverAddr string

func (a serverAddr) Network() string { return "tcp" }
func (a serverAddr) String() string  { return string(a) }
