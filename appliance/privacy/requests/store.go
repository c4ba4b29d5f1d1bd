package requests

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/deadline"
	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/keyring"
	"github.com/custos/custos/raftstore"
)

// Bucket names below the tenant's bucket (see the package doc).
const (
	requestsRoot = "dsr_requests"
	subjectsRoot = "dsr_subjects"
	openRoot     = "dsr_open"
)

var requestsPath = raftstore.Path(requestsRoot)

func subjectPath(tok string) [][]byte { return raftstore.Path(subjectsRoot, tok) }

func openPath(tok string) [][]byte { return raftstore.Path(openRoot, tok) }

// layout declares the service's buckets to restricted handles: a request
// is an item (its attributes in the clear), its entry in its subject's
// list points at it, and the open-request markers (pseudonymous tokens and
// request ids, for the duplicate check) are open.
var layout = tenancy.NewLayout(
	tenancy.Items(requestsRoot, tenancy.JSONAttributes("attributes")),
	tenancy.Refs(subjectsRoot, func(_ [][]byte, key []byte) ([][]byte, []byte, bool) {
		return requestsPath, key, true // dsr_subjects/<token>: id -> ""
	}),
	tenancy.Open(openRoot),
)

// token is the subject's blind index: what its requests are found by.
func token(indexKey []byte, subject string) string {
	m := hmac.New(sha256.New, indexKey)
	m.Write([]byte("request-subject"))
	m.Write([]byte{0})
	m.Write([]byte(subject))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// private is the part of a request that may be personal data, sealed
// under the tenant's data key as one value.
type private struct {
	Subject         string `json:"subject,omitempty"`
	Evidence        string `json:"evidence,omitempty"`
	ExtensionReason string `json:"extension_reason,omitempty"`
	Rejection       string `json:"rejection,omitempty"`
	Patch           *Patch `json:"patch,omitempty"`
}

// stored is a request as the tenant's bucket keeps it: the private part
// sealed (Sealed, bound to the request and its revision), the rest clear.
type stored struct {
	Request
	Token  string `json:"token"`
	Rev    uint64 `json:"rev"`
	Sealed []byte `json:"sealed,omitempty"`
}

// sealPlace binds a request's sealed part to the request and revision.
func sealPlace(tenant, id string, rev uint64) keyring.Place {
	return keyring.Place{Tenant: tenant, Collection: "dsr", RecordID: id, Field: "private", Version: rev}
}

// seal makes the stored form of r (opened) at revision rev.
func seal(k *keyring.Key, tok string, rev uint64, r Request) (stored, error) {
	p := private{Subject: r.Subject, Rejection: r.Rejection, Patch: r.Rectification}
	if r.Verification != nil {
		p.Evidence = r.Verification.Evidence
	}
	if r.Extension != nil {
		p.ExtensionReason = r.Extension.Reason
	}
	st := stored{Request: r, Token: tok, Rev: rev}
	st.Subject, st.Rejection, st.Rectification = "", "", nil
	if st.Verification != nil {
		v := *st.Verification
		v.Evidence = ""
		st.Verification = &v
	}
	if st.Extension != nil {
		x := *st.Extension
		x.Reason = ""
		st.Extension = &x
	}
	if p != (private{}) {
		plain, err := json.Marshal(p)
		if err != nil {
			return stored{}, fmt.Errorf("requests: encode %s: %w", r.ID, err)
		}
		if st.Sealed, err = keyring.Seal(k, sealPlace(r.Tenant, r.ID, rev), plain); err != nil {
			return stored{}, fmt.Errorf("requests: seal %s: %w", r.ID, err)
		}
	}
	return st, nil
}

// open is the request of st with its private part opened.
func open(k *keyring.Key, st stored) (Request, error) {
	r := st.Request
	if r.History == nil {
		r.History = []Step{}
	}
	if len(st.Sealed) == 0 {
		return r, nil
	}
	plain, err := keyring.Open(k, sealPlace(r.Tenant, r.ID, st.Rev), st.Sealed)
	if err != nil {
		return Request{}, fmt.Errorf("requests: open %s: %w", r.ID, err)
	}
	var p private
	if err := json.Unmarshal(plain, &p); err != nil {
		return Request{}, fmt.Errorf("requests: decode %s: %w", r.ID, err)
	}
	r.Subject, r.Rejection, r.Rectification = p.Subject, p.Rejection, p.Patch
	if r.Verification != nil {
		v := *r.Verification
		v.Evidence = p.Evidence
		r.Verification = &v
	}
	if r.Extension != nil {
		x := *r.Extension
		x.Reason = p.ExtensionReason
		r.Extension = &x
	}
	return r, nil
}

func decode(id string, v []byte) (stored, error) {
	var st stored
	if err := json.Unmarshal(v, &st); err != nil {
		return stored{}, fmt.Errorf("requests: decode %s: %w", id, err)
	}
	return st, nil
}

// deadlineOf rebuilds the request's deadline from what it stored: the
// rule and zone fixed at receipt, and its extension.
func deadlineOf(r Request) (deadline.Deadline, error) {
	p := deadline.Policy{Mode: r.Regulation}
	if r.Regulation == deadline.DPDP {
		p.Period = deadline.Days(r.ResponseDays)
	}
	rule, err := p.Rule()
	if err != nil {
		return deadline.Deadline{}, fmt.Errorf("requests: %s: %w", r.ID, err)
	}
	zone, err := deadline.LoadZone("time_zone", r.TimeZone)
	if err != nil {
		return deadline.Deadline{}, fmt.Errorf("requests: %s: %w", r.ID, err)
	}
	d, err := deadline.New(r.Received, rule, zone)
	if err != nil {
		return deadline.Deadline{}, fmt.Errorf("requests: %s: %w", r.ID, err)
	}
	if x := r.Extension; x != nil {
		by, err := deadline.ParsePeriod("extension", x.By)
		if err != nil {
			return deadline.Deadline{}, fmt.Errorf("requests: %s: %w", r.ID, err)
		}
		// The reason is not needed to recompute the date, but Extend
		// wants one: the stored form has it sealed.
		if d, err = d.Extend(by, "stored", x.At); err != nil {
			return deadline.Deadline{}, fmt.Errorf("requests: %s: %w", r.ID, err)
		}
	}
	return d, nil
}

// newID is "dsr-" and 16 characters of lower-case base32hex: 48 bits of
// milliseconds then 32 random bits, so ids sort by creation time (a
// listing in id order is in order of arrival).
func (s *Service) newID(now time.Time) (string, error) {
	var b [10]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := io.ReadFull(s.random, b[6:]); err != nil {
		return "", fmt.Errorf("requests: generate id: %w", err)
	}
	enc := base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
	return "dsr-" + strings.ToLower(enc), nil
}

// digest is the keyed digest of a free text, as audit entries hold it:
// the chain proves which text was given without keeping it.
func digest(akey []byte, text string) string {
	sum := sha256.Sum256([]byte(text))
	return audit.Pseudonym(akey, "sha256", hex.EncodeToString(sum[:]))
}

// keysOf fetches the tenant's three keys.
func (s *Service) keysOf(ctx context.Context, tenant string) (data *keyring.Key, index, aud []byte, err error) {
	if data, err = s.keys.DataKey(ctx, tenant, ""); err != nil {
		return nil, nil, nil, err
	}
	if index, err = s.keys.IndexKey(ctx, tenant); err != nil {
		return nil, nil, nil, err
	}
	if aud, err = s.keys.AuditKey(ctx, tenant); err != nil {
		return nil, nil, nil, err
	}
	return data, index, aud, nil
}
