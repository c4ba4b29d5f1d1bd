package client

import (
	"context"
	"fmt"
	"io"
)

// BackupRecipients is PUT /v1/sys/backup/recipients: the age recipients
// backups are encrypted to.
type BackupRecipients struct {
	Recipients []string `json:"recipients"`
}

// Backup takes a backup (POST /v1/sys/backup) and writes the encrypted
// file to w as it arrives; a transfer cut short is an error. It has no
// per-call timeout: ctx bounds it.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.long().send(ctx, "POST", "/v1/sys/backup", nil, "*/*")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, answerError("POST", "/v1/sys/backup", resp.StatusCode, data)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup: the transfer broke off after %d bytes: %w", n, err)
	}
	return n, nil
}

// SetBackupRecipients replaces the recipients backups are encrypted to.
func (c *Client) SetBackupRecipients(ctx context.Context, recipients []string) error {
	return c.Do(ctx, "PUT", "/v1/sys/backup/recipients", BackupRecipients{Recipients: recipients}, nil)
}
