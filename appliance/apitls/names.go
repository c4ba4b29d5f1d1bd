package apitls

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Names are what a certificate is issued for: DNS names (lower case) and
// IP addresses, each sorted and without duplicates.
type Names struct {
	DNS []string
	IPs []netip.Addr
}

// ParseSAN parses one subject alternative name of the tls_san setting: an
// IP address (v4 or v6, no zone) or a DNS name — labels of letters,
// digits and hyphens, neither starting nor ending with a hyphen, of 1 to
// 63 characters, 253 at most in all, optionally starting with a "*."
// wildcard label, and a last label that is not all digits (RFC 1123: so
// that "10.0.0.1." is not taken for a name). A DNS name is returned in
// lower case.
func ParseSAN(s string) (dns string, ip netip.Addr, err error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return "", netip.Addr{}, fmt.Errorf("apitls: %q: an IP address with a zone cannot be in a certificate", s)
		}
		return "", a.Unmap(), nil
	}
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if name == "" || len(name) > 253 {
		return "", netip.Addr{}, fmt.Errorf("apitls: %q is neither an IP address nor a DNS name of 1 to 253 characters", s)
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if i == 0 && l == "*" && len(labels) > 1 {
			continue
		}
		if !isLabel(l) {
			return "", netip.Addr{}, fmt.Errorf("apitls: %q is neither an IP address nor a DNS name (label %q)", s, l)
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return "", netip.Addr{}, fmt.Errorf("apitls: %q is neither an IP address nor a DNS name (its last label %q is all digits)", s, last)
	}
	return name, netip.Addr{}, nil
}

// isLabel reports whether l is a DNS label (lower case already).
func isLabel(l string) bool {
	if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// NodeNames lists what a node's own API certificate is issued for: host
// (the host's name, skipped when it is not a DNS name), localhost and the
// loopback addresses, the hosts of the listen and advertise addresses
// (host:port; an unspecified or empty listen host stands for ifaces, the
// addresses of every interface) and extra (tls_san, each as ParseSAN
// takes it).
func NodeNames(host, listen, advertise string, ifaces []netip.Addr, extra []string) (Names, error) {
	var n Names
	add := func(s string) error {
		dns, ip, err := ParseSAN(s)
		switch {
		case err != nil:
			return err
		case dns != "":
			n.DNS = append(n.DNS, dns)
		default:
			n.IPs = append(n.IPs, ip)
		}
		return nil
	}
	_ = add(host) // a host name that is no DNS name is left out
	for _, s := range []string{"localhost", "127.0.0.1", "::1"} {
		_ = add(s)
	}
	for _, addr := range []string{listen, advertise} {
		h, _, err := net.SplitHostPort(addr)
		if err != nil || addr == "" {
			continue
		}
		if a, err := netip.ParseAddr(h); h == "" || (err == nil && a.IsUnspecified()) {
			for _, ip := range ifaces {
				n.IPs = append(n.IPs, ip.Unmap().WithZone(""))
			}
			continue
		}
		if err := add(h); err != nil {
			return Names{}, err
		}
	}
	for _, s := range extra {
		if err := add(s); err != nil {
			return Names{}, err
		}
	}
	slices.Sort(n.DNS)
	n.DNS = slices.Compact(n.DNS)
	slices.SortFunc(n.IPs, func(a, b netip.Addr) int { return a.Compare(b) })
	n.IPs = slices.Compact(n.IPs)
	return n, nil
}

// NetIPs are the IP addresses as x509 wants them.
func (n Names) NetIPs() []net.IP {
	out := make([]net.IP, 0, len(n.IPs))
	for _, a := range n.IPs {
		out = append(out, net.IP(a.AsSlice()))
	}
	return out
}

// Current reports whether certPEM (a certificate file's content) is
// issued for exactly the names n and stays valid for at least renewBefore
// from now: a node re-issues its own certificate when not.
func Current(certPEM []byte, n Names, now time.Time, renewBefore time.Duration) (bool, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return false, errors.New("apitls: certificate is not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return false, fmt.Errorf("apitls: %w", err)
	}
	if now.Add(renewBefore).After(c.NotAfter) || now.Before(c.NotBefore) {
		return false, nil
	}
	dns := slices.Clone(c.DNSNames)
	slices.Sort(dns)
	var ips []netip.Addr
	for _, ip := range c.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			ips = append(ips, a.Unmap())
		}
	}
	slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Equal(dns, n.DNS) && slices.Equal(ips, n.IPs), nil
}
