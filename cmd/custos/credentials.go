package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// credentials are a session's tokens as `custos login` keeps them, for the
// API address they came from: in the user's configuration directory
// (CUSTOS_CONFIG_DIR, else $XDG_CONFIG_HOME/custos, else the platform's
// user configuration directory), file mode 0600. The CLI sends the access
// token when no --token or CUSTOS_TOKEN is given, and only to that
// address.
type credentials struct {
	Address      string    `json:"address"`
	Tenant       string    `json:"tenant"`
	Method       string    `json:"method"`
	Session      string    `json:"session"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

const credentialsFile = "credentials.json"

// configDir is the CLI's configuration directory.
func configDir(e *env) (string, error) {
	if d := e.get("CUSTOS_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if d := e.get("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "custos"), nil
	}
	if h := e.get("HOME"); h != "" {
		return filepath.Join(h, ".config", "custos"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration directory (set CUSTOS_CONFIG_DIR): %w", err)
	}
	return filepath.Join(d, "custos"), nil
}

// saveCredentials writes c (mode 0600, its directory 0700), replacing any
// by a rename, so a reader never sees half a file.
func saveCredentials(e *env, c credentials) (string, error) {
	dir, err := configDir(e)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, credentialsFile+".*")
	if err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("credentials: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	path := filepath.Join(dir, credentialsFile)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	return path, nil
}

// loadCredentials reads the stored credentials; ok is false when there
// are none. A file readable by others is refused: its tokens may have
// been read.
func loadCredentials(e *env) (c credentials, ok bool, err error) {
	dir, err := configDir(e)
	if err != nil {
		return credentials{}, false, nil
	}
	path := filepath.Join(dir, credentialsFile)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return credentials{}, false, nil
	}
	if err != nil {
		return credentials{}, false, fmt.Errorf("credentials: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return credentials{}, false, fmt.Errorf("credentials: %s is readable by others (mode %v): run custos login again", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return credentials{}, false, fmt.Errorf("credentials: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return credentials{}, false, fmt.Errorf("credentials: %s: %w", path, err)
	}
	return c, true, nil
}

// removeCredentials forgets the stored session (none stored is no error).
func removeCredentials(e *env) error {
	dir, err := configDir(e)
	if err != nil {
		return nil
	}
	if err := os.Remove(filepath.Join(dir, credentialsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("credentials: %w", err)
	}
	return nil
}
