package api

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/custos/custos/appliance/audit"
	"github.com/custos/custos/appliance/privacy/consent"
	"github.com/custos/custos/internal/validation"
)

// Consent keeps the tenants' purposes, blob kinds and consent ledgers;
// *consent.Service implements it.
type Consent interface {
	Purposes(ctx context.Context, caller audit.Principal, tenant string) ([]consent.Purpose, error)
	Purpose(ctx context.Context, caller audit.Principal, tenant, id string) (consent.Purpose, error)
	PurposeVersions(ctx context.Context, caller audit.Principal, tenant, id string) ([]consent.Purpose, error)
	CreatePurpose(ctx context.Context, caller audit.Principal, tenant string, in consent.PurposeInput) (consent.Purpose, error)
	UpdatePurpose(ctx context.Context, caller audit.Principal, tenant string, in consent.PurposeInput, ifMatch int) (consent.Purpose, error)
	StateAt(ctx context.Context, caller audit.Principal, tenant, subject string, at time.Time) (consent.State, error)
	History(ctx context.Context, caller audit.Principal, tenant, subject string) ([]consent.Event, error)
	Grant(ctx context.Context, caller audit.Principal, tenant string, in consent.Input) (consent.Event, error)
	Withdraw(ctx context.Context, caller audit.Principal, tenant string, in consent.Input) (consent.Event, error)
	SetFlag(ctx context.Context, caller audit.Principal, tenant string, in consent.FlagInput) (consent.Event, error)
	Kinds(ctx context.Context, caller audit.Principal, tenant string) ([]consent.Kind, error)
	PutKind(ctx context.Context, caller audit.Principal, tenant, kind string, purposes []string) (consent.Kind, error)
	Stats(ctx context.Context, caller audit.Principal, tenant string, days int, to time.Time) ([]consent.PurposeStats, error)
}

var _ Consent = (*consent.Service)(nil)

// purposeRequest is the body of POST .../purposes (with id) and PUT
// .../purposes/:pid (without).
type purposeRequest struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Basis       string `json:"basis"`
	Required    bool   `json:"required"`
	DefaultOn   bool   `json:"default_on"`
	Sale        bool   `json:"sale"`
	OnWithdraw  string `json:"on_withdraw"`
}

func (r *purposeRequest) input(id string) consent.PurposeInput {
	return consent.PurposeInput{ID: id, Description: r.Description, Basis: r.Basis, Required: r.Required, DefaultOn: r.DefaultOn,
		Sale: r.Sale, OnWithdraw: r.OnWithdraw}
}

type evidenceRequest struct {
	Text string `json:"text"`
	Blob string `json:"blob"`
}

func (e *evidenceRequest) evidence() consent.Evidence {
	if e == nil {
		return consent.Evidence{}
	}
	return consent.Evidence{Text: e.Text, Blob: e.Blob}
}

// consentRequest is the body of a grant or a withdrawal.
type consentRequest struct {
	Purposes      []string         `json:"purposes"`
	All           bool             `json:"all"`
	Source        string           `json:"source"`
	PolicyVersion int              `json:"policy_version"`
	Evidence      *evidenceRequest `json:"evidence"`
}

// flagRequest sets or clears a subject's flag.
type flagRequest struct {
	Flag     string           `json:"flag"`
	On       bool             `json:"on"`
	Source   string           `json:"source"`
	Evidence *evidenceRequest `json:"evidence"`
}

// blobKindRequest is a blob kind's policy.
type blobKindRequest struct {
	Purposes []string `json:"purposes"`
}

type listPurposesResponse struct {
	Purposes []consent.Purpose `json:"purposes"`
}

type purposeVersionsResponse struct {
	Versions []consent.Purpose `json:"versions"`
}

type consentHistoryResponse struct {
	Events []consent.Event `json:"events"`
}

type listBlobKindsResponse struct {
	Kinds []consent.Kind `json:"kinds"`
}

func (s *server) listPurposes(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	ps, err := s.deps.Consent.Purposes(ctx, in.who, in.tenant)
	if err != nil {
		return fmt.Errorf("api: purposes of %q: %w", in.tenant, err)
	}
	return c.JSON(listPurposesResponse{Purposes: ps})
}

func (s *server) getPurpose(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	p, err := s.deps.Consent.Purpose(ctx, in.who, in.tenant, in.str("pid"))
	if err != nil {
		return fmt.Errorf("api: purpose %q of %q: %w", in.str("pid"), in.tenant, err)
	}
	c.Set(fiber.HeaderETag, etag(uint64(p.PolicyVersion)))
	return c.JSON(p)
}

func (s *server) purposeVersions(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	vs, err := s.deps.Consent.PurposeVersions(ctx, in.who, in.tenant, in.str("pid"))
	if err != nil {
		return fmt.Errorf("api: versions of purpose %q of %q: %w", in.str("pid"), in.tenant, err)
	}
	return c.JSON(purposeVersionsResponse{Versions: vs})
}

func (s *server) createPurpose(c *fiber.Ctx, in *input) error {
	req := bodyOf[purposeRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	p, err := s.deps.Consent.CreatePurpose(ctx, in.who, in.tenant, req.input(req.ID))
	if err != nil {
		return fmt.Errorf("api: create purpose of %q: %w", in.tenant, err)
	}
	c.Set(fiber.HeaderETag, etag(uint64(p.PolicyVersion)))
	c.Location("/v1/tenants/" + in.tenant + "/purposes/" + p.ID)
	return c.Status(fiber.StatusCreated).JSON(p)
}

// updatePurpose replaces a purpose's terms: a new policy version. The
// body names no id (the path does); If-Match, when given, is the policy
// version last read (412 when it moved on).
func (s *server) updatePurpose(c *fiber.Ctx, in *input) error {
	req := bodyOf[purposeRequest](in)
	if req.ID != "" && req.ID != in.str("pid") {
		return validation.Field("id", "must be left out, or be the purpose of the path")
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	p, err := s.deps.Consent.UpdatePurpose(ctx, in.who, in.tenant, req.input(in.str("pid")), in.int(fiber.HeaderIfMatch))
	if err != nil {
		return fmt.Errorf("api: update purpose %q of %q: %w", in.str("pid"), in.tenant, err)
	}
	c.Set(fiber.HeaderETag, etag(uint64(p.PolicyVersion)))
	return c.JSON(p)
}

// consentState answers the subject's state now, or as of ?at=.
func (s *server) consentState(c *fiber.Ctx, in *input) error {
	var at time.Time
	if in.has("at") {
		at = in.time("at")
	}
	ctx, cancel := s.callContext(c)
	defer cancel()
	st, err := s.deps.Consent.StateAt(ctx, in.who, in.tenant, in.str("sid"), at)
	if err != nil {
		return fmt.Errorf("api: consent of a subject of %q: %w", in.tenant, err)
	}
	return c.JSON(st)
}

func (s *server) consentHistory(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	evs, err := s.deps.Consent.History(ctx, in.who, in.tenant, in.str("sid"))
	if err != nil {
		return fmt.Errorf("api: consent history of a subject of %q: %w", in.tenant, err)
	}
	return c.JSON(consentHistoryResponse{Events: evs})
}

func (s *server) grantConsent(c *fiber.Ctx, in *input) error {
	req := bodyOf[consentRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	ev, err := s.deps.Consent.Grant(ctx, in.who, in.tenant, consent.Input{Subject: in.str("sid"), Purposes: req.Purposes, All: req.All,
		Source: req.Source, PolicyVersion: req.PolicyVersion, Evidence: req.Evidence.evidence()})
	if err != nil {
		return fmt.Errorf("api: grant consent of a subject of %q: %w", in.tenant, err)
	}
	return c.Status(fiber.StatusCreated).JSON(ev)
}

func (s *server) withdrawConsent(c *fiber.Ctx, in *input) error {
	req := bodyOf[consentRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	ev, err := s.deps.Consent.Withdraw(ctx, in.who, in.tenant, consent.Input{Subject: in.str("sid"), Purposes: req.Purposes, All: req.All,
		Source: req.Source, PolicyVersion: req.PolicyVersion, Evidence: req.Evidence.evidence()})
	if err != nil {
		return fmt.Errorf("api: withdraw consent of a subject of %q: %w", in.tenant, err)
	}
	return c.Status(fiber.StatusCreated).JSON(ev)
}

func (s *server) setConsentFlag(c *fiber.Ctx, in *input) error {
	req := bodyOf[flagRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	ev, err := s.deps.Consent.SetFlag(ctx, in.who, in.tenant, consent.FlagInput{Subject: in.str("sid"), Flag: req.Flag, On: req.On,
		Source: req.Source, Evidence: req.Evidence.evidence()})
	if err != nil {
		return fmt.Errorf("api: consent flag of a subject of %q: %w", in.tenant, err)
	}
	return c.Status(fiber.StatusCreated).JSON(ev)
}

func (s *server) listBlobKinds(c *fiber.Ctx, in *input) error {
	ctx, cancel := s.callContext(c)
	defer cancel()
	ks, err := s.deps.Consent.Kinds(ctx, in.who, in.tenant)
	if err != nil {
		return fmt.Errorf("api: blob kinds of %q: %w", in.tenant, err)
	}
	return c.JSON(listBlobKindsResponse{Kinds: ks})
}

func (s *server) putBlobKind(c *fiber.Ctx, in *input) error {
	req := bodyOf[blobKindRequest](in)
	ctx, cancel := s.callContext(c)
	defer cancel()
	k, err := s.deps.Consent.PutKind(ctx, in.who, in.tenant, in.str("kind"), req.Purposes)
	if err != nil {
		return fmt.Errorf("api: blob kind %q of %q: %w", in.str("kind"), in.tenant, err)
	}
	return c.JSON(k)
}

// consentStatsResponse is GET .../consent-stats.
type consentStatsResponse struct {
	From     string                 `json:"from"`
	To       string                 `json:"to"`
	Purposes []consent.PurposeStats `json:"purposes"`
}

// consentStats answers the tenant's consent rates per purpose and day,
// read from the counters grants and withdrawals keep.
func (s *server) consentStats(c *fiber.Ctx, in *input) error {
	days := in.int("days")
	to := time.Now().UTC()
	ctx, cancel := s.callContext(c)
	defer cancel()
	ps, err := s.deps.Consent.Stats(ctx, in.who, in.tenant, days, to)
	if err != nil {
		return fmt.Errorf("api: consent stats of %q: %w", in.tenant, err)
	}
	if ps == nil {
		ps = []consent.PurposeStats{}
	}
	return c.JSON(consentStatsResponse{From: to.AddDate(0, 0, 1-days).Format(time.DateOnly), To: to.Format(time.DateOnly), Purposes: ps})
}
