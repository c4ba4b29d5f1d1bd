package apitls

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseSAN(t *testing.T) {
	for _, tt := range []struct {
		in, dns, ip string // ip "" = not an IP
		ok          bool
	}{
		{"api.example.com", "api.example.com", "", true},
		{"API.Example.COM.", "api.example.com", "", true},
		{"*.custos.internal", "*.custos.internal", "", true},
		{"node-1", "node-1", "", true},
		{"10.0.0.3", "", "10.0.0.3", true},
		{"::ffff:10.0.0.3", "", "10.0.0.3", true},
		{"2001:db8::1", "", "2001:db8::1", true},
		{"fe80::1%eth0", "", "", false},
		{"", "", "", false},
		{"*", "", "", false},
		{"a.*.example.com", "", "", false},
		{"-bad.example.com", "", "", false},
		{"bad-.example.com", "", "", false},
		{"under_score.example.com", "", "", false},
		{"a..b", "", "", false},
		{"10.0.0.3:8200", "", "", false},
		{"https://api.example.com", "", "", false},
		{"10.0.0.3.", "", "", false},
		{"0.0.0.0.", "", "", false},
		{"host.123", "", "", false},
		{strings.Repeat("a", 64) + ".example.com", "", "", false},
		{strings.Repeat("abcdefghi.", 26), "", "", false},
	} {
		dns, ip, err := ParseSAN(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSAN(%q): error %v, want ok %v", tt.in, err, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		gotIP := ""
		if ip.IsValid() {
			gotIP = ip.String()
		}
		if dns != tt.dns || gotIP != tt.ip {
			t.Errorf("ParseSAN(%q) = %q, %q; want %q, %q", tt.in, dns, gotIP, tt.dns, tt.ip)
		}
	}
}

// FuzzParseSAN: nothing panics, and what parses is either an IP address
// or a lower-case DNS name that parses to itself.
func FuzzParseSAN(f *testing.F) {
	for _, s := range []string{"api.example.com", "*.x.y", "10.0.0.1", "::1", "fe80::1%lo", "a..b", "-a", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dns, ip, err := ParseSAN(s)
		if err != nil {
			return
		}
		if (dns == "") == !ip.IsValid() {
			t.Fatalf("ParseSAN(%q) = %q, %v: want exactly one of a name and an address", s, dns, ip)
		}
		if dns != "" {
			again, _, err := ParseSAN(dns)
			if err != nil || again != dns || strings.ToLower(dns) != dns || len(dns) > 253 {
				t.Fatalf("ParseSAN(%q) = %q, which parses to %q, %v", s, dns, again, err)
			}
		}
	})
}

func TestNodeNames(t *testing.T) {
	ifaces := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fe80::1%eth0")}
	loop := []string{"127.0.0.1", "::1"}
	for _, tt := range []struct {
		name                    string
		host, listen, advertise string
		extra                   []string
		dns, ips                []string
		err                     bool
	}{
		{name: "loopback listener", host: "db-3", listen: "127.0.0.1:8200", advertise: "127.0.0.1:8201",
			dns: []string{"db-3", "localhost"}, ips: loop},
		{name: "named hosts", host: "db-3.corp", listen: "api.corp:8200", advertise: "10.0.0.3:8201", extra: []string{"custos.corp", "192.0.2.7"},
			dns: []string{"api.corp", "custos.corp", "db-3.corp", "localhost"}, ips: []string{"10.0.0.3", "127.0.0.1", "192.0.2.7", "::1"}},
		{name: "every interface", host: "db-3", listen: ":8200", advertise: "10.1.2.3:8201",
			dns: []string{"db-3", "localhost"}, ips: []string{"10.1.2.3", "127.0.0.1", "::1", "fe80::1"}},
		{name: "0.0.0.0", host: "Not_A_DNS_Name", listen: "0.0.0.0:8200", advertise: "",
			dns: []string{"localhost"}, ips: []string{"10.1.2.3", "127.0.0.1", "::1", "fe80::1"}},
		{name: "bad extra", host: "h", listen: "127.0.0.1:8200", extra: []string{"not valid!"}, err: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := NodeNames(tt.host, tt.listen, tt.advertise, ifaces, tt.extra)
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if tt.err {
				return
			}
			var ips []string
			for _, a := range n.IPs {
				ips = append(ips, a.String())
			}
			slices.Sort(ips)
			if diff := cmp.Diff(tt.dns, n.DNS); diff != "" {
				t.Errorf("DNS (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.ips, ips); diff != "" {
				t.Errorf("IPs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCurrent(t *testing.T) {
	certPEM, _ := pair(t, "A") // localhost, 127.0.0.1; valid for an hour
	now := time.Now()
	names := Names{DNS: []string{"localhost"}, IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	for _, tt := range []struct {
		name  string
		names Names
		at    time.Time
		renew time.Duration
		want  bool
	}{
		{"same names", names, now, time.Minute, true},
		{"a name more", Names{DNS: []string{"localhost", "x"}, IPs: names.IPs}, now, time.Minute, false},
		{"an address less", Names{DNS: names.DNS}, now, time.Minute, false},
		{"expires within the renewal window", names, now, 2 * time.Hour, false},
		{"not yet valid", names, now.Add(-2 * time.Hour), time.Minute, false},
	} {
		got, err := Current(certPEM, tt.names, tt.at, tt.renew)
		if err != nil || got != tt.want {
			t.Errorf("%s: Current = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if _, err := Current([]byte("junk"), names, now, 0); err == nil {
		t.Error("Current of junk: no error")
	}
}
