package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/backup"
	"github.com/custos/custos/appliance/client"
	"github.com/custos/custos/appliance/cluster"
	"github.com/custos/custos/internal/firstbyte"
	"github.com/custos/custos/internal/validation"
)

// Backup takes backups; *backup.Service implements it.
type Backup interface {
	Backup(ctx context.Context, who audit.Principal, w io.Writer) (backup.Manifest, error)
}

// BackupRecipients keeps the recipients backups are encrypted to;
// *cluster.Service implements it.
type BackupRecipients interface {
	SetBackupRecipients(ctx context.Context, who audit.Principal, rs []string) error
}

var (
	_ Backup           = (*backup.Service)(nil)
	_ BackupRecipients = (*cluster.Service)(nil)
)

// backupTimeout bounds one backup (a large state at disk speed).
const backupTimeout = 6 * time.Hour

// errNoBackup: the node was wired without backups (tests).
var errNoBackup = errors.New("api: this node takes no backups")

// takeBackup streams a backup: the age file as it is made. A failure
// once the stream has begun ends the response without its last chunk, so
// the client sees a broken transfer, never a complete-looking file (which
// would not decrypt anyway: age authenticates the end).
func (s *server) takeBackup(c *fiber.Ctx, in *input) error {
	if s.deps.Backup == nil {
		return errNoBackup
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.UserContext()), backupTimeout)
	who := in.who
	pr, err := firstbyte.Start(func(w io.Writer) error {
		defer cancel()
		_, err := s.deps.Backup.Backup(ctx, who, w)
		if err != nil {
			s.log.Warn("backup cut short", "error", err)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("api: backup: %w", err)
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="custos-backup.age"`)
	// The server's write deadline bounds a whole response; a backup takes
	// longer, so each chunk extends it (as blob downloads do).
	c.Context().SetBodyStream(&extendingReader{r: pr, conn: c.Context().Conn()}, -1)
	return nil
}

// extendingReader moves conn's write deadline writeTimeout ahead at
// every read of the body: a stall of writeTimeout still ends it.
type extendingReader struct {
	r    io.ReadCloser
	conn net.Conn
}

func (e *extendingReader) Read(p []byte) (int, error) {
	_ = e.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return e.r.Read(p)
}

func (e *extendingReader) Close() error { return e.r.Close() }

// setBackupRecipients replaces the backup recipients.
func (s *server) setBackupRecipients(c *fiber.Ctx, in *input) error {
	if s.deps.BackupRecipients == nil {
		return errNoBackup
	}
	rs := bodyOf[client.BackupRecipients](in).Recipients
	if _, err := cluster.ParseBackupRecipients(rs); err != nil {
		return validation.Field("recipients", "must list 1 to 16 distinct age X25519 recipients (age1…): "+err.Error())
	}
	if len(rs) > 16 {
		return validation.Field("recipients", "must list 1 to 16 distinct age X25519 recipients (age1…)")
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	if err := s.deps.BackupRecipients.SetBackupRecipients(ctx, in.who, rs); err != nil {
		return fmt.Errorf("api: backup recipients: %w", err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}
