package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/mod/sumdb/note"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/raftstore"
)

// The log archive (point-in-time restore). With [backup] archive_log the
// leader writes the committed raft log, in segments, into <dir>/log:
//
//	custos-log-<first index, 20 digits>-<last index, 20 digits>.age
//
// each encrypted to the backup recipients like a backup, and holding
// after the entries a note signed by the audit key that names the range
// and the SHA-256 of the entries' encoding — so a segment is neither
// readable without a backup identity nor forgeable with the recipients'
// public keys alone. A restore replays the entries after its backup's
// index onto the backup's state, up to an index or a time: the state
// machine is deterministic, so the result is the state at that index.
//
// The archive is where the leader runs: after a change of leader the new
// one continues from what its own directory holds (from the oldest entry
// its log still has, the first time), so keep the directory on shared
// storage or collect every node's; a restore refuses a gap.
const (
	segPrefix = "custos-log-"
	segMagic  = "custos-log-segment/1\n"
	segHeader = "custos-log-segment/1"
	// segMaxBytes and segMaxEntries close a segment.
	segMaxBytes   = 64 << 20
	segMaxEntries = 16384
	// maxSegment bounds a segment read back.
	maxSegment = 1 << 30
)

// LogSource reads committed log entries; *raftstore.Store is one.
type LogSource interface {
	CommittedEntries(from uint64, max int) ([]raftstore.LogEntry, error)
}

// Archiver writes the log archive.
type Archiver struct {
	s        *Service
	src      LogSource
	dir      string
	interval time.Duration
	isLeader func() bool
	logger   *slog.Logger
	next     uint64
}

// NewArchiver archives src's log into dir/log every interval, on the
// leader.
func NewArchiver(s *Service, src LogSource, dir string, interval time.Duration, isLeader func() bool, logger *slog.Logger) *Archiver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Archiver{s: s, src: src, dir: filepath.Join(dir, "log"), interval: interval, isLeader: isLeader, logger: logger}
}

// Run archives until ctx ends.
func (a *Archiver) Run(ctx context.Context) {
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !a.isLeader() {
			a.next = 0 // find the directory's end again when leading
			continue
		}
		if err := a.Once(ctx); err != nil {
			a.logger.Error("log archive", "error", err)
		}
	}
}

// Once archives every committed entry not archived yet.
func (a *Archiver) Once(ctx context.Context) error {
	if a.next == 0 {
		segs, err := segments(a.dir)
		if err != nil {
			return err
		}
		a.next = 1
		if len(segs) > 0 {
			a.next = segs[len(segs)-1].last + 1
		}
	}
	for ctx.Err() == nil {
		var batch []raftstore.LogEntry
		size := 0
		for size < segMaxBytes && len(batch) < segMaxEntries {
			es, err := a.src.CommittedEntries(a.next+uint64(len(batch)), 1024)
			var lc *raftstore.ErrLogCompacted
			if errors.As(err, &lc) && len(batch) == 0 {
				if a.next > 1 {
					a.logger.Warn("log archive has a gap: entries were compacted before they were archived", "from", a.next, "to", lc.First-1)
				}
				a.next = lc.First
				continue
			}
			if err != nil {
				return err
			}
			if len(es) == 0 {
				break
			}
			for _, e := range es {
				size += len(e.Data) + 32
			}
			batch = append(batch, es...)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := a.write(ctx, batch); err != nil {
			return err
		}
		a.next = batch[len(batch)-1].Index + 1
	}
	return ctx.Err()
}

func (a *Archiver) write(ctx context.Context, es []raftstore.LogEntry) error {
	rs, err := a.s.d.Recipients(ctx)
	if err != nil {
		return err
	}
	recipients, err := cluster.ParseBackupRecipients(rs)
	if err != nil {
		return err
	}
	signer, err := a.s.d.Signer(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return fmt.Errorf("backup: log archive: %w", err)
	}
	first, last := es[0].Index, es[len(es)-1].Index
	path := filepath.Join(a.dir, fmt.Sprintf("%s%020d-%020d.age", segPrefix, first, last))
	if err := WriteFile(path, func(w io.Writer) error { return writeSegment(w, es, recipients, signer) }); err != nil {
		return fmt.Errorf("backup: log archive: %w", err)
	}
	return nil
}

func writeSegment(w io.Writer, es []raftstore.LogEntry, recipients []age.Recipient, signer note.Signer) error {
	enc, err := age.Encrypt(w, recipients...)
	if err != nil {
		return err
	}
	var body bytes.Buffer
	body.WriteString(segMagic)
	for _, e := range es {
		body.WriteByte('L')
		body.Write(binary.AppendUvarint(nil, e.Index))
		body.Write(binary.AppendUvarint(nil, e.Term))
		body.WriteByte(e.Type)
		body.Write(binary.AppendVarint(nil, e.AppendedAt.UnixNano()))
		body.Write(binary.AppendUvarint(nil, uint64(len(e.Data))))
		body.Write(e.Data)
	}
	body.WriteByte('Z')
	sum := sha256.Sum256(body.Bytes())
	text := fmt.Sprintf("%s\nfirst %d\nlast %d\nsha256 %s\n", segHeader, es[0].Index, es[len(es)-1].Index, base64.StdEncoding.EncodeToString(sum[:]))
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		return err
	}
	if _, err := enc.Write(body.Bytes()); err != nil {
		return err
	}
	if _, err := enc.Write(msg); err != nil {
		return err
	}
	return enc.Close()
}

type segment struct {
	path        string
	first, last uint64
}

// segments lists the archive's segments by first index.
func segments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup: log archive: %w", err)
	}
	var out []segment
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), segPrefix)
		if !ok || !strings.HasSuffix(name, ".age") {
			continue
		}
		a, b, ok := strings.Cut(strings.TrimSuffix(name, ".age"), "-")
		first, err1 := strconv.ParseUint(a, 10, 64)
		last, err2 := strconv.ParseUint(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || last < first {
			continue
		}
		out = append(out, segment{path: filepath.Join(dir, e.Name()), first: first, last: last})
	}
	slices.SortFunc(out, func(x, y segment) int { return int(min(max(int64(x.first)-int64(y.first), -1), 1)) })
	return out, nil
}

// Until says where a point-in-time restore stops: the last index to
// apply (0: no bound), or the last time (zero: no bound).
type Until struct {
	Index uint64
	Time  time.Time
}

func (u Until) includes(e raftstore.LogEntry) bool {
	return (u.Index == 0 || e.Index <= u.Index) && (u.Time.IsZero() || !e.AppendedAt.After(u.Time))
}

// ReplayArchive replays the archive in dir (a backup directory's log/, or
// the log directory itself) onto the state file at statePath — a
// backup's, read with Read — up to u. Each segment must open with ids and
// be signed with vkey. It returns the state's position afterwards; an
// error when the archive does not reach u.Index or has a gap.
func ReplayArchive(ctx context.Context, dir string, ids []age.Identity, vkey string, statePath string, u Until) (raftstore.DumpInfo, error) {
	v, err := audit.Verifier([]byte(vkey))
	if err != nil {
		return raftstore.DumpInfo{}, err
	}
	if sub := filepath.Join(dir, "log"); isDir(sub) {
		dir = sub
	}
	segs, err := segments(dir)
	if err != nil {
		return raftstore.DumpInfo{}, err
	}
	off, err := raftstore.OpenOffline(statePath)
	if err != nil {
		return raftstore.DumpInfo{}, err
	}
	info, err := off.Info()
	off.Close()
	if err != nil {
		return raftstore.DumpInfo{}, err
	}
	for _, s := range segs {
		if ctx.Err() != nil {
			return info, ctx.Err()
		}
		if s.last <= info.Index {
			continue
		}
		if u.Index != 0 && info.Index >= u.Index {
			return info, nil
		}
		if s.first > info.Index+1 {
			return info, fmt.Errorf("backup: the log archive in %s has a gap: entries %d to %d are missing", dir, info.Index+1, s.first-1)
		}
		es, err := readSegment(s, ids, v)
		if err != nil {
			return info, err
		}
		keep := es[:0]
		stop := false
		for _, e := range es {
			if !u.includes(e) {
				stop = true
				break
			}
			keep = append(keep, e)
		}
		if info, err = raftstore.Replay(statePath, keep); err != nil {
			return info, err
		}
		if stop {
			return info, nil
		}
	}
	if u.Index != 0 && info.Index < u.Index {
		return info, fmt.Errorf("backup: the log archive in %s ends at index %d (or has a gap after it): it does not reach %d", dir, info.Index, u.Index)
	}
	return info, nil
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// readSegment decrypts, verifies and decodes a segment.
func readSegment(s segment, ids []age.Identity, v note.Verifier) ([]raftstore.LogEntry, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec, err := age.Decrypt(f, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, fmt.Errorf("%s: %w", s.path, ErrIdentity)
		}
		return nil, fmt.Errorf("%s: %w: %v", s.path, ErrDamaged, err)
	}
	raw, err := io.ReadAll(io.LimitReader(dec, maxSegment))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", s.path, ErrDamaged, err)
	}
	br := bytes.NewReader(raw)
	r := bufio.NewReader(br)
	magic := make([]byte, len(segMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != segMagic {
		return nil, fmt.Errorf("%s: %w: magic", s.path, ErrDamaged)
	}
	var es []raftstore.LogEntry
	bad := func(what string) error { return fmt.Errorf("%s: %w: %s", s.path, ErrDamaged, what) }
	for {
		tag, err := r.ReadByte()
		if err != nil {
			return nil, bad("truncated")
		}
		if tag == 'Z' {
			break
		}
		if tag != 'L' {
			return nil, bad("tag")
		}
		var e raftstore.LogEntry
		var e1, e2, e3, e4, e5 error
		e.Index, e1 = binary.ReadUvarint(r)
		e.Term, e2 = binary.ReadUvarint(r)
		e.Type, e3 = r.ReadByte()
		at, e4 := binary.ReadVarint(r)
		n, e5 := binary.ReadUvarint(r)
		if errors.Join(e1, e2, e3, e4, e5) != nil || n > maxSegment {
			return nil, bad("entry")
		}
		e.AppendedAt = time.Unix(0, at).UTC()
		e.Data = make([]byte, n)
		if _, err := io.ReadFull(r, e.Data); err != nil {
			return nil, bad("entry data")
		}
		es = append(es, e)
	}
	bodyLen := len(raw) - br.Len() - r.Buffered()
	sum := sha256.Sum256(raw[:bodyLen])
	n, err := note.Open(raw[bodyLen:], note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", s.path, ErrSignature, err)
	}
	want := fmt.Sprintf("%s\nfirst %d\nlast %d\nsha256 %s\n", segHeader, s.first, s.last, base64.StdEncoding.EncodeToString(sum[:]))
	if n.Text != want || len(es) == 0 || es[0].Index != s.first || es[len(es)-1].Index != s.last {
		return nil, fmt.Errorf("%s: %w: the segment is not the one its signature names", s.path, ErrSignature)
	}
	return es, nil
}
