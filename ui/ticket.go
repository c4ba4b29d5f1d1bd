package ui

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// ticketLifetime is how long the code step of a login may take.
const ticketLifetime = 5 * time.Minute

// tickets seal the password between the two steps of a login (password,
// then the authenticator code), so that the code page carries no
// password in clear: the page holds an AES-GCM box under a key made when
// the node started and never stored. A code posted to another node, or
// after a restart, cannot be opened: the person types the password again.
type tickets struct{ aead cipher.AEAD }

func newTickets() *tickets {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	return &tickets{aead: aead}
}

// ticket is what a sealed ticket holds.
type ticket struct {
	Tenant   string `json:"t"`
	Username string `json:"u"`
	Password string `json:"p"`
	Expires  int64  `json:"e"`
}

var errTicket = errors.New("ui: login ticket expired or not from this node")

// seal boxes t's password for the code step; the tenant and username are
// bound to it.
func (k *tickets) seal(tk ticket, now time.Time) string {
	tk.Expires = now.Add(ticketLifetime).Unix()
	b, _ := json.Marshal(tk)
	nonce := make([]byte, k.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(k.aead.Seal(nonce, nonce, b, nil))
}

// open returns the password of a ticket sealed for tenant and username
// that has not expired.
func (k *tickets) open(s, tenant, username string, now time.Time) (string, error) {
	if len(s) > 4096 {
		return "", errTicket
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < k.aead.NonceSize() {
		return "", errTicket
	}
	plain, err := k.aead.Open(nil, b[:k.aead.NonceSize()], b[k.aead.NonceSize():], nil)
	if err != nil {
		return "", errTicket
	}
	var tk ticket
	if json.Unmarshal(plain, &tk) != nil || tk.Tenant != tenant || tk.Username != username || now.Unix() > tk.Expires {
		return "", errTicket
	}
	return tk.Password, nil
}
