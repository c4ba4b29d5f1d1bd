package ui

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/client"
)

// keysData is a tenant's keys page: the provider of its root, its KEK
// versions with how many data keys each wraps, and the rewrap that a
// rotation starts in the background (the API reports its progress; the
// page shows it as it stands when loaded).
type keysData struct {
	Status client.KeyStatus
	KEKs   []kekRow
	// Done is the share of data keys already under the current KEK (0 to
	// 100), for the progress bar while a rewrap runs.
	Done  int
	Form  vaultForm
	Error *client.Problem
}

// kekRow is one KEK version and the data keys it wraps.
type kekRow struct {
	Version  uint32
	DataKeys int
	Current  bool
}

func (u *UI) keysPage(r *req) error {
	return u.renderKeys(r, fiber.StatusOK, vaultForm{}, nil)
}

func (u *UI) renderKeys(r *req, status int, form vaultForm, problem *client.Problem) error {
	st, err := r.api.KeyStatus(r.ctx, r.tenant())
	if err != nil {
		return err
	}
	if form.Kind == "" {
		form.Kind = st.Provider.Kind
		if v := st.Provider.Vault; v != nil && form.Address == "" {
			form.Address, form.Mount, form.Key = v.Address, v.Mount, v.Key
		}
	}
	return r.render(status, "keys", "Keys", keysData{Status: st, KEKs: kekRows(st), Done: rewrapDone(st), Form: form, Error: problem})
}

// kekRows are the tenant's KEK versions, newest first.
func kekRows(st client.KeyStatus) []kekRow {
	out := make([]kekRow, 0, len(st.KEKs))
	for _, v := range st.KEKs {
		out = append(out, kekRow{Version: v, DataKeys: st.ByKEK[strconv.FormatUint(uint64(v), 10)], Current: v == st.CurrentKEK})
	}
	slices.SortFunc(out, func(a, b kekRow) int { return int(b.Version) - int(a.Version) })
	return out
}

// rewrapDone is the percentage of data keys no longer waiting for the
// rewrap.
func rewrapDone(st client.KeyStatus) int {
	if st.DataKeys <= 0 || st.Pending <= 0 {
		return 100
	}
	return (st.DataKeys - min(st.Pending, st.DataKeys)) * 100 / st.DataKeys
}

func (u *UI) keysURL(r *req) string { return "/ui/t/" + urlPathEscape(r.tenant()) + "/keys" }

func (u *UI) rotateKeys(r *req) error {
	rot, err := r.api.RotateKeys(r.ctx, r.tenant())
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderKeys(r, status, vaultForm{}, p) })
	}
	msg := fmt.Sprintf("Rotated: KEK version %d is current.", rot.CurrentKEK)
	if rot.Status.Pending > 0 {
		msg += fmt.Sprintf(" %d data keys are being rewrapped in the background.", rot.Status.Pending)
	}
	return r.done(u.keysURL(r), msg)
}

func (u *UI) purgeKeyCache(r *req) error {
	n, err := r.api.PurgeKeyCache(r.ctx, r.tenant())
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderKeys(r, status, vaultForm{}, p) })
	}
	return r.done(u.keysURL(r), fmt.Sprintf("Key cache purged: this node dropped %d unwrapped keys; every node drops the tenant's.", n))
}

func (u *UI) setKeyProvider(r *req) error {
	form, kp := formVault(r.c)
	st, err := r.api.SetKeyProvider(r.ctx, r.tenant(), kp)
	if err != nil {
		return u.refused(r, err, func(p *client.Problem, status int) error { return u.renderKeys(r, status, form, p) })
	}
	return r.done(u.keysURL(r), "Key provider set: the root key is now held by "+st.Provider.Kind+".")
}
