package node

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// A listen refused with EACCES (a port below 1024 without the capability)
// says what the unit needs; other listen errors say nothing more. (As
// root the kernel never refuses such a port, so the errors are made here
// as net.Listen returns them.)
func TestPrivilegedPortHint(t *testing.T) {
	listenErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	for _, tt := range []struct {
		err  error
		hint bool
	}{
		{listenErr(syscall.EACCES), true},
		{listenErr(syscall.EADDRINUSE), false},
		{listenErr(syscall.EADDRNOTAVAIL), false},
	} {
		if got := privilegedPortHint(tt.err); strings.Contains(got, "CAP_NET_BIND_SERVICE") != tt.hint {
			t.Errorf("%v: hint %q", tt.err, got)
		}
	}
}
