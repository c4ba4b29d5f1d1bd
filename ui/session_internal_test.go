package ui

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/ui/cluster", "/ui/cluster"},
		{"/ui/t/acme/data?after=x", "/ui/t/acme/data?after=x"},
		{"", "/ui/"},
		{"/v1/sys/status", "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/ui/\\evil", "/ui/"},
		{"https://evil.example/ui/", "/ui/"},
		{"/ui/x\r\nSet-Cookie: a=b", "/ui/"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func jwtWith(iat, exp int64) string {
	b, _ := json.Marshal(map[string]int64{"iat": iat, "exp": exp})
	return "eyJhbGciOiJFZERTQSJ9." + base64.RawURLEncoding.EncodeToString(b) + ".sig"
}

// TestFreshIdle: an expired access token is never refreshed (the idle
// timeout), a young one is used as it is; neither calls the API.
func TestFreshIdle(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	u := &UI{now: func() time.Time { return now }}
	r := &req{}
	for _, tc := range []struct {
		name      string
		s         stored
		wantErr   bool
		unchanged bool
	}{
		{"expired", stored{Access: jwtWith(now.Unix()-1000, now.Unix()-100), Refresh: "r"}, true, false},
		{"young", stored{Access: jwtWith(now.Unix()-60, now.Unix()+840), Refresh: "r"}, false, true},
		{"not a token", stored{Access: "garbage", Refresh: "r"}, true, false},
		{"operator token", stored{Access: "cst_x", Token: true}, false, true},
	} {
		got, changed, err := u.fresh(r, tc.s)
		if (err != nil) != tc.wantErr || changed || (tc.unchanged && got != tc.s) {
			t.Errorf("%s: got %+v changed=%v err=%v", tc.name, got, changed, err)
		}
	}
}

func TestTickets(t *testing.T) {
	k := newTickets()
	now := time.Unix(1_800_000_000, 0)
	s := k.seal(ticket{Tenant: "acme", Username: "ada", Password: "pw"}, now)
	if strings.Contains(s, "pw") {
		t.Fatal("ticket shows the password")
	}
	if pw, err := k.open(s, "acme", "ada", now.Add(time.Minute)); err != nil || pw != "pw" {
		t.Fatalf("open: %q %v", pw, err)
	}
	for name, open := range map[string]func() error{
		"expired":      func() error { _, err := k.open(s, "acme", "ada", now.Add(ticketLifetime+time.Second)); return err },
		"other user":   func() error { _, err := k.open(s, "acme", "eve", now); return err },
		"other tenant": func() error { _, err := k.open(s, "other", "ada", now); return err },
		"other node":   func() error { _, err := newTickets().open(s, "acme", "ada", now); return err },
		"tampered":     func() error { _, err := k.open(s[:len(s)-2]+"AA", "acme", "ada", now); return err },
	} {
		if open() == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

// FuzzSessionCookie: the cookie and the token's times are parsed from
// what the browser sends; nothing may panic, and a decoded session
// always has an access token.
func FuzzSessionCookie(f *testing.F) {
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"a":"x.eyJpYXQiOjEsImV4cCI6Mn0.z","r":"y"}`)))
	f.Add("")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, raw string) {
		if b, err := base64.RawURLEncoding.DecodeString(raw); err == nil {
			var s stored
			if json.Unmarshal(b, &s) == nil && s.Access != "" {
				if cl, ok := tokenTimes(s.Access); ok && cl.ExpiresAt <= cl.IssuedAt {
					t.Fatalf("accepted times %+v", cl)
				}
			}
		}
		_, _ = tokenTimes(raw)
		_ = validCSRF(raw)
		_ = safeNext(raw)
	})
}
