package backup

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// manifestHeader is the manifest's first line.
const manifestHeader = "custos-backup-manifest/1"

// ErrManifest is the error of a manifest that does not parse.
var ErrManifest = errors.New("backup: malformed manifest")

// Manifest says what a backup holds; it is signed with the cluster's
// audit key (a note, as the audit checkpoints are). Its text:
//
//	custos-backup-manifest/1
//	index <raft index>
//	term <raft term>
//	revision <store revision>
//	time <RFC 3339>
//	size <bytes of the state dump>
//	sha256 <base64 SHA-256 of the state dump>
//	tenant <id>                                (one line each, sorted)
//	chain <name> <size> <root> <link>          (one line each, sorted; base64)
//
// The chain lines are the audit chains' tree heads at the backup's index:
// the checkpoint of each chain the backup carries, signed by the manifest's
// signature.
type Manifest struct {
	Index, Term, Revision uint64
	Time                  time.Time
	Size                  uint64
	SHA256                [32]byte
	Tenants               []string
	Chains                []raftstore.ChainHead
}

func manifestOf(info raftstore.DumpInfo, now time.Time) Manifest {
	m := Manifest{Index: info.Index, Term: info.Term, Revision: info.Revision, Time: now.UTC(), Chains: info.Chains}
	for _, c := range info.Chains {
		if t, ok := tenancy.TenantOfChain(c.Name); ok {
			m.Tenants = append(m.Tenants, t)
		}
	}
	slices.Sort(m.Tenants)
	return m
}

// Text is the manifest's canonical text.
func (m Manifest) Text() string {
	var b strings.Builder
	b64 := base64.StdEncoding.EncodeToString
	fmt.Fprintf(&b, "%s\nindex %d\nterm %d\nrevision %d\ntime %s\nsize %d\nsha256 %s\n", manifestHeader,
		m.Index, m.Term, m.Revision, m.Time.UTC().Format(time.RFC3339Nano), m.Size, b64(m.SHA256[:]))
	for _, t := range m.Tenants {
		fmt.Fprintf(&b, "tenant %s\n", t)
	}
	for _, c := range m.Chains {
		fmt.Fprintf(&b, "chain %s %d %s %s\n", c.Name, c.Size, b64(c.Root[:]), b64(c.Link[:]))
	}
	return b.String()
}

// ParseManifest reads a manifest's text; it must be in canonical form.
func ParseManifest(text string) (Manifest, error) {
	var m Manifest
	lines := strings.Split(text, "\n")
	if len(lines) < 8 || lines[0] != manifestHeader || lines[len(lines)-1] != "" {
		return m, fmt.Errorf("%w: header", ErrManifest)
	}
	nums := []*uint64{&m.Index, &m.Term, &m.Revision}
	for i, name := range []string{"index", "term", "revision"} {
		v, ok := strings.CutPrefix(lines[1+i], name+" ")
		n, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil {
			return m, fmt.Errorf("%w: %s", ErrManifest, name)
		}
		*nums[i] = n
	}
	ts, ok := strings.CutPrefix(lines[4], "time ")
	var err error
	if m.Time, err = time.Parse(time.RFC3339Nano, ts); !ok || err != nil {
		return m, fmt.Errorf("%w: time", ErrManifest)
	}
	size, ok := strings.CutPrefix(lines[5], "size ")
	if m.Size, err = strconv.ParseUint(size, 10, 64); !ok || err != nil {
		return m, fmt.Errorf("%w: size", ErrManifest)
	}
	sum, ok := strings.CutPrefix(lines[6], "sha256 ")
	if !ok || decode32(sum, m.SHA256[:]) != nil {
		return m, fmt.Errorf("%w: sha256", ErrManifest)
	}
	for _, l := range lines[7 : len(lines)-1] {
		switch kind, rest, _ := strings.Cut(l, " "); kind {
		case "tenant":
			m.Tenants = append(m.Tenants, rest)
		case "chain":
			f := strings.Split(rest, " ")
			if len(f) != 4 {
				return m, fmt.Errorf("%w: chain line", ErrManifest)
			}
			c := raftstore.ChainHead{Name: f[0]}
			if c.Size, err = strconv.ParseUint(f[1], 10, 64); err != nil {
				return m, fmt.Errorf("%w: chain size", ErrManifest)
			}
			if decode32(f[2], c.Root[:]) != nil || decode32(f[3], c.Link[:]) != nil {
				return m, fmt.Errorf("%w: chain hashes", ErrManifest)
			}
			m.Chains = append(m.Chains, c)
		default:
			return m, fmt.Errorf("%w: line %q", ErrManifest, kind)
		}
	}
	if m.Text() != text {
		return m, fmt.Errorf("%w: not in canonical form", ErrManifest)
	}
	return m, nil
}

func decode32(s string, dst []byte) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return fmt.Errorf("bad hash")
	}
	copy(dst, b)
	return nil
}

// matches reports how the manifest differs from the state loaded from
// the backup ("" when it describes it).
func (m Manifest) matches(info raftstore.DumpInfo) string {
	switch {
	case m.Index != info.Index || m.Term != info.Term || m.Revision != info.Revision:
		return fmt.Sprintf("the state is at index %d term %d revision %d, the manifest says %d %d %d", info.Index, info.Term, info.Revision, m.Index, m.Term, m.Revision)
	case !slices.Equal(m.Chains, info.Chains):
		return "the state's audit chains differ from the manifest's"
	}
	return ""
}
