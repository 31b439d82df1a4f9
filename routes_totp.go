package revops

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/revopsdev/revops/audit"
	"github.com/revopsdev/revops/auth"
	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/internal/httpapi"
	"github.com/revopsdev/revops/keys"
	"github.com/revopsdev/revops/login"
	"github.com/revopsdev/revops/ratelimit"
	"github.com/revopsdev/revops/twofactor"
	"github.com/revopsdev/revops/workspace"
)

// TOTPConfig configures two-factor authentication.
type TOTPConfig struct {
	// Issuer names the service in authenticator apps (default: Config.Title).
	Issuer string
	// EncryptionKey, if set (32 bytes), seals TOTP secrets at rest with
	// AES-256-GCM. Without it secrets are stored as base32: protect the
	// database as you would the secrets. Changing or dropping the key makes
	// sealed secrets unreadable (their users must be reset by deleting
	// their enrolment).
	EncryptionKey []byte
	// PerUser limits code checks per user: at login, confirmation and
	// disabling (default 5 a minute); beyond it 429.
	PerUser ratelimit.Policy
}

func (tc *TOTPConfig) validate(title string) error {
	if tc.Issuer == "" {
		tc.Issuer = title
	}
	if tc.EncryptionKey != nil && len(tc.EncryptionKey) != 32 {
		return errors.New("revops: Config.TOTP.EncryptionKey must be 32 bytes (AES-256) or nil")
	}
	if tc.PerUser == (ratelimit.Policy{}) {
		tc.PerUser = ratelimit.Policy{PerMinute: 5}
	}
	tc.PerUser.Name = "totp"
	return tc.PerUser.Validate()
}

// Wire shapes of two-factor authentication.
type (
	totpCodeIn struct {
		Code string `json:"code" validate:"required,max=64"`
	}
	totpStatusOut struct {
		Enabled                bool       `json:"enabled"`
		Pending                bool       `json:"pending"` // enrolled, waiting for POST /auth/totp/confirm
		EnabledAt              *time.Time `json:"enabled_at"`
		RecoveryCodesRemaining int        `json:"recovery_codes_remaining"`
	}
	totpEnrollOut struct {
		Secret     string `json:"secret"`      // base32, for manual entry
		OTPAuthURL string `json:"otpauth_url"` // otpauth://totp/…
		QRPNG      string `json:"qr_png"`      // base64 PNG of otpauth_url
		Issuer     string `json:"issuer"`
		Account    string `json:"account"`
		Digits     int    `json:"digits"`
		Period     int    `json:"period"`
		Algorithm  string `json:"algorithm"`
	}
	totpConfirmOut struct {
		Enabled       bool     `json:"enabled"`
		RecoveryCodes []string `json:"recovery_codes"` // shown once
	}
)

// totpCache remembers for a short time whether users have two-factor
// authentication enabled, so that a workspace that requires it costs no
// query per request. Changes made through this instance apply at once;
// another instance sees them within its TTL (KeyCacheTTL).
type totpCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[int64]totpEntry
}

type totpEntry struct {
	on  bool
	exp time.Time
}

const maxTOTPEntries = 100_000

func (p *Platform) totpEnabled(ctx context.Context, userID int64) (bool, error) {
	tc, now := p.totpUsers, p.requestNow(ctx)
	tc.mu.Lock()
	e, ok := tc.m[userID]
	tc.mu.Unlock()
	if ok && now.Before(e.exp) {
		return e.on, nil
	}
	on, err := p.totp.Enabled(ctx, userID)
	if err != nil {
		return false, err
	}
	tc.mu.Lock()
	if len(tc.m) >= maxTOTPEntries {
		clear(tc.m)
	}
	tc.m[userID] = totpEntry{on: on, exp: now.Add(tc.ttl)}
	tc.mu.Unlock()
	return on, nil
}

func (p *Platform) forgetTOTP(userID int64) {
	p.totpUsers.mu.Lock()
	delete(p.totpUsers.m, userID)
	p.totpUsers.mu.Unlock()
}

// initTOTP builds the two-factor service and hooks it into login and into
// workspace access.
func (p *Platform) initTOTP() error {
	tc := p.cfg.TOTP
	svc, err := twofactor.New(twofactor.Config{Store: p.cfg.Store, Issuer: tc.Issuer, Key: tc.EncryptionKey, Now: p.cfg.Now,
		Limit: p.throttleTOTP})
	if err != nil {
		return err
	}
	ttl := p.cfg.KeyCacheTTL
	if ttl == 0 {
		ttl = keys.DefaultCacheTTL
	}
	p.totp, p.totpUsers = svc, &totpCache{ttl: ttl, m: map[int64]totpEntry{}}
	p.login.SetSecondFactor(p.secondFactor)
	p.resolver.SetGate(p.totpGate)
	return nil
}

// throttleTOTP spends one code check of the user's bucket.
func (p *Platform) throttleTOTP(ctx context.Context, userID int64) error {
	pol := p.cfg.TOTP.PerUser
	d, err := p.limiter.Allow(ctx, "totp:user:"+strconv.FormatInt(userID, 10), pol)
	if err != nil {
		return err
	}
	if !d.Allowed {
		// The 429's headers (Retry-After, the rate-limit fields) describe
		// this bucket, replacing the route's own.
		h := http.Header{}
		if c := httpapi.CallFrom(ctx); c != nil && c.W != nil {
			h = c.W.Header()
		}
		return p.rateLimited(h, pol, d)
	}
	return nil
}

// errTOTPEnrollmentRequired is the answer of every workspace-scoped request
// of a user without two-factor authentication in a workspace requiring it.
func errTOTPEnrollmentRequired() error {
	return core.E(core.CodeTOTPEnrollmentRequired, "This workspace requires two-factor authentication; enrol at POST /auth/totp/enroll and confirm at POST /auth/totp/confirm.")
}

// totpGate is the resolver's gate: every request of a user (access token
// or personal key) in a workspace whose policy is "required" needs the
// user to have two-factor authentication enabled. Workspace keys are
// machine credentials and are not asked. The policy comes from the
// workspace cache that rate limiting already fills, the user's state from
// totpCache: no query on the hot path.
func (p *Platform) totpGate(ctx context.Context, pr *auth.Principal, workspaceID int64) error {
	w, err := p.tiers.entry(ctx, workspaceID)
	if err != nil || w.totp != workspace.TOTPRequired {
		return err
	}
	on, err := p.totpEnabled(ctx, pr.UserID)
	if err != nil {
		return err
	}
	if !on {
		return errTOTPEnrollmentRequired()
	}
	return nil
}

// secondFactor is login's hook: a user with two-factor authentication must
// send totp_code (a current code or a recovery code) with the password.
func (p *Platform) secondFactor(ctx context.Context, u *workspace.User, code string) error {
	on, err := p.totp.Enabled(ctx, u.ID)
	if err != nil || !on {
		return err
	}
	if code == "" {
		return errors.Join(core.E(core.CodeTOTPRequired, "Two-factor authentication is enabled for this account: send totp_code, the current code from your authenticator app or a recovery code."),
			&login.Failure{UserID: u.ID, Reason: "totp_required"})
	}
	if !twofactor.WellFormed(code) {
		return errors.Join(twofactor.ErrMalformedCode("totp_code"), &login.Failure{UserID: u.ID, Reason: "malformed_totp_code"})
	}
	m, err := p.totp.Check(ctx, u.ID, code, "totp_code")
	switch {
	case err == nil:
	case errors.Is(err, core.ErrValidation):
		return errors.Join(core.E(core.CodeUnauthorized, "Invalid, expired or already used two-factor code."),
			&login.Failure{UserID: u.ID, Reason: "wrong_totp_code"})
	case core.As(err).Code == core.CodeRateLimited:
		return errors.Join(err, &login.Failure{UserID: u.ID, Reason: "totp_throttled"})
	default:
		return err
	}
	if m == twofactor.MethodRecovery {
		p.recordTOTP(ctx, httpapi.CallFrom(ctx), u, audit.TOTPRecoveryCodeUsed, map[string]any{"during": "login"})
	}
	return nil
}

// recordTOTP audits a two-factor change of user u (outside any workspace).
func (p *Platform) recordTOTP(ctx context.Context, c *Call, u *workspace.User, action string, meta map[string]any) {
	if c == nil {
		p.writeAudit(ctx, &audit.Event{Actor: audit.Actor{Kind: audit.ActorUser, ID: u.ID, Display: u.Email}, Action: action,
			TargetType: "user", TargetID: strconv.FormatInt(u.ID, 10), Metadata: meta})
		return
	}
	if c.Principal != nil {
		p.record(ctx, c, 0, action, target{"user", u.ID}, meta)
		return
	}
	p.recordAs(ctx, c, audit.Actor{Kind: audit.ActorUser, ID: u.ID, Display: u.Email}, action, target{"user", u.ID}, meta)
}

// TOTP returns the two-factor service, for host code.
func (p *Platform) TOTP() *twofactor.Service { return p.totp }

func (p *Platform) totpRoutes() {
	a := p.api
	const tag = "Two-factor"
	user := func(ctx context.Context, c *Call) (*workspace.User, error) {
		if err := needUser(c, "use two-factor authentication"); err != nil {
			return nil, err
		}
		return p.cfg.Store.User(ctx, c.Principal.UserID)
	}
	status := func(ctx context.Context, userID int64) (*totpStatusOut, error) {
		st, err := p.totp.Status(ctx, userID)
		if err != nil {
			return nil, err
		}
		return &totpStatusOut{Enabled: st.Enabled, Pending: st.Pending, EnabledAt: st.EnabledAt, RecoveryCodesRemaining: st.RecoveryRemaining}, nil
	}

	httpapi.Handle(a, httpapi.Route{Method: "GET", Path: "/auth/totp", Tag: tag, Scope: "totp:read",
		Summary: "The signed-in user's two-factor state"},
		func(ctx context.Context, c *Call, _ *NoBody) (*totpStatusOut, error) {
			u, err := user(ctx, c)
			if err != nil {
				return nil, err
			}
			return status(ctx, u.ID)
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/auth/totp/enroll", Tag: tag, Scope: "totp:write", Status: http.StatusCreated,
		Message: "TOTP enrolment created successfully.",
		Summary: "Start two-factor enrolment: a new secret (shown once), its otpauth:// URL and a QR code; confirm it with a code"},
		func(ctx context.Context, c *Call, _ *NoBody) (*totpEnrollOut, error) {
			u, err := user(ctx, c)
			if err != nil {
				return nil, err
			}
			en, err := p.totp.Enroll(ctx, u.ID, u.Email)
			if err != nil {
				return nil, err
			}
			p.recordTOTP(ctx, c, u, audit.TOTPEnrolled, nil)
			return &totpEnrollOut{Secret: en.Secret, OTPAuthURL: en.URL, QRPNG: base64.StdEncoding.EncodeToString(en.QRPNG), Issuer: p.cfg.TOTP.Issuer, Account: u.Email,
				Digits: twofactor.Digits, Period: twofactor.Period, Algorithm: "SHA1"}, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/auth/totp/confirm", Tag: tag, Scope: "totp:write",
		Message: "Two-factor authentication enabled. Store the recovery codes: they are shown only once.",
		Summary: "Confirm the pending enrolment with a current code: enables two-factor authentication and returns ten single-use recovery codes"},
		func(ctx context.Context, c *Call, in *totpCodeIn) (*totpConfirmOut, error) {
			u, err := user(ctx, c)
			if err != nil {
				return nil, err
			}
			codes, err := p.totp.Confirm(ctx, u.ID, in.Code, "code")
			if err != nil {
				return nil, err
			}
			p.forgetTOTP(u.ID)
			p.recordTOTP(ctx, c, u, audit.TOTPEnabled, map[string]any{"recovery_codes": len(codes)})
			return &totpConfirmOut{Enabled: true, RecoveryCodes: codes}, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/auth/totp/recovery-codes", Tag: tag, Scope: "totp:write",
		Message: "New recovery codes issued. Store them: they are shown only once, and the old ones no longer work.",
		Summary: "Replace the recovery codes with ten new ones, with a current code from the authenticator app"},
		func(ctx context.Context, c *Call, in *totpCodeIn) (*totpConfirmOut, error) {
			u, err := user(ctx, c)
			if err != nil {
				return nil, err
			}
			codes, err := p.totp.ReplaceRecoveryCodes(ctx, u.ID, in.Code, "code")
			if err != nil {
				return nil, err
			}
			p.recordTOTP(ctx, c, u, audit.TOTPRecoveryCodesReplaced, map[string]any{"recovery_codes": len(codes)})
			return &totpConfirmOut{Enabled: true, RecoveryCodes: codes}, nil
		})

	httpapi.Handle(a, httpapi.Route{Method: "POST", Path: "/auth/totp/disable", Tag: tag, Scope: "totp:write",
		Message: "Two-factor authentication disabled.",
		Summary: "Disable two-factor authentication with a current code or a recovery code"},
		func(ctx context.Context, c *Call, in *totpCodeIn) (*totpStatusOut, error) {
			u, err := user(ctx, c)
			if err != nil {
				return nil, err
			}
			m, err := p.totp.Disable(ctx, u.ID, in.Code, "code")
			if err != nil {
				return nil, err
			}
			p.forgetTOTP(u.ID)
			if m == twofactor.MethodRecovery {
				p.recordTOTP(ctx, c, u, audit.TOTPRecoveryCodeUsed, map[string]any{"during": "disable"})
			}
			p.recordTOTP(ctx, c, u, audit.TOTPDisabled, map[string]any{"method": string(m)})
			return status(ctx, u.ID)
		})
}
