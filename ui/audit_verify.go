package ui

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/client"
)

// maxVerify is the most entries one verification in the browser session
// checks: each needs an inclusion proof (one API call), so the page stays
// quick; a whole chain is for the export bundle and `custos audit verify`.
const maxVerify = 200

// auditVerifyData is the verify page's: the form (its values kept), the
// chain's latest checkpoint when one exists, and the result once run.
type auditVerifyData struct {
	View     auditChain
	From, To string
	Kept     string
	// Latest is the chain's latest checkpoint (nil: none yet, or not
	// readable: Error says why).
	Latest *audit.Checkpoint
	// Ran: the form was submitted; then exactly one of Report and
	// Failure is set.
	Ran     bool
	Report  *audit.RangeReport
	Failure *audit.VerifyError
	Error   *client.Problem
}

// auditVerifyPage verifies entries From..To of the chain with the
// module's own verifier (audit.VerifyRange): it fetches, through the API
// as the signed-in person, the verifier key, the chain's latest signed
// checkpoint, the entries and an inclusion proof of each against that
// checkpoint's size, and — when the person pastes a checkpoint they kept
// — the consistency proof from it. Without a range it shows the form,
// proposing the last entries the latest checkpoint covers.
func (u *UI) auditVerifyPage(r *req) error {
	view := r.auditChain()
	d := auditVerifyData{View: view, From: clip(r.c.Query("from"), 20), To: clip(r.c.Query("to"), 20), Kept: clip(r.c.Query("kept"), 2048)}
	var cpMsg bytes.Buffer
	if err := r.api.AuditCheckpoint(r.ctx, view.Tenant, &cpMsg); err != nil {
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != fiber.StatusNotFound {
			return err
		}
		d.Error = problemFrom(err, r.id) // no checkpoint yet: say so, keep the form
	}
	var keyText bytes.Buffer
	if err := r.api.AuditKey(r.ctx, &keyText); err != nil {
		return err
	}
	v, err := audit.Verifier(keyText.Bytes())
	if err != nil {
		return err
	}
	if cpMsg.Len() > 0 {
		if cp, err := audit.OpenCheckpoint(cpMsg.Bytes(), v); err == nil {
			d.Latest = &cp
		}
	}
	if d.From == "" && d.To == "" {
		if d.Latest != nil {
			d.From, d.To = strconv.FormatUint(max(1, d.Latest.Size-min(d.Latest.Size, 49)), 10), strconv.FormatUint(d.Latest.Size, 10)
		}
		return r.render(fiber.StatusOK, "audit_verify", "Verify the audit log", d)
	}
	from, err1 := strconv.ParseUint(d.From, 10, 64)
	to, err2 := strconv.ParseUint(d.To, 10, 64)
	if err1 != nil || err2 != nil {
		return badForm("From and to are sequence numbers of entries, such as 1 and 50.")
	}
	d.Ran = true
	ev := audit.RangeEvidence{Chain: view.Chain, From: from, To: to, Checkpoint: cpMsg.Bytes()}
	if d.Kept != "" {
		ev.Kept = []byte(strings.ReplaceAll(strings.TrimSpace(d.Kept), "\r\n", "\n") + "\n")
	}
	if err := r.auditEvidence(&ev, v); err != nil {
		return err
	}
	rep, err := audit.VerifyRange(v, ev)
	if err != nil {
		var ve *audit.VerifyError
		if !errors.As(err, &ve) {
			return err
		}
		d.Failure = ve
	}
	d.Report = rep
	return r.render(fiber.StatusOK, "audit_verify", "Verify the audit log", d)
}

// auditEvidence fills ev through the API: the entries and their inclusion
// proofs at the checkpoint's size, and the consistency proof from a kept
// checkpoint. What cannot even be asked (no checkpoint, a range the
// verifier refuses on its face) is left for VerifyRange to name.
func (r *req) auditEvidence(ev *audit.RangeEvidence, v interface{ Name() string }) error {
	tenant := r.auditChain().Tenant
	if n := ev.To - ev.From + 1; ev.To >= ev.From && n > maxVerify {
		return badForm(fmt.Sprintf("At most %d entries at once (this range has %d); for a whole chain, download the export bundle and run custos audit verify.", maxVerify, n))
	}
	cp, err := audit.ParseCheckpoint(noteBody(ev.Checkpoint))
	if err != nil || ev.From == 0 || ev.To < ev.From || ev.To > cp.Size {
		return nil
	}
	page, err := r.api.Audit(r.ctx, tenant, client.AuditFilter{After: ev.From - 1, Limit: int(ev.To - ev.From + 1)})
	if err != nil {
		return err
	}
	for _, it := range page.Entries {
		if it.Seq > ev.To {
			break
		}
		p, err := r.api.AuditInclusion(r.ctx, tenant, it.Seq-1, cp.Size)
		if err != nil {
			return err
		}
		ev.Entries, ev.Inclusion = append(ev.Entries, it), append(ev.Inclusion, p)
	}
	if ev.Kept == nil {
		return nil
	}
	kept, err := audit.ParseCheckpoint(noteBody(ev.Kept))
	if err != nil || kept.Size == 0 || kept.Size >= cp.Size {
		return nil // VerifyRange opens it and says what is wrong
	}
	p, err := r.api.AuditConsistency(r.ctx, tenant, kept.Size, cp.Size)
	if err != nil {
		return err
	}
	ev.Consistency = &p
	return nil
}

// noteBody is the text of a signed note (before the blank line and the
// signatures), for reading its size before it is verified.
func noteBody(msg []byte) string {
	text, _, ok := strings.Cut(string(msg), "\n\n")
	if !ok {
		return ""
	}
	return text + "\n"
}
