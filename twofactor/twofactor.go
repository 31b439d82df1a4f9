// Package twofactor is TOTP two-factor authentication (RFC 6238) for users:
// enrolment with a secret, an otpauth:// URL and a QR code, confirmation
// with a first code, single-use recovery codes stored as SHA-256, and the
// check a login or a sensitive change makes.
//
// A code is accepted once: its time step is written to the store with a
// conditional update (the step must be later than the last one used), so a
// replay is refused on every instance that shares the store, and of two
// concurrent uses of one code exactly one succeeds.
package twofactor

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/revopsdev/revops/core"
)

// Parameters of every secret: the defaults authenticator apps assume.
const (
	Period        = 30 // seconds per time step
	Digits        = 6
	SecretBytes   = 20 // 160 bits, RFC 4226's recommendation
	Skew          = 1  // steps accepted either side of now (clock drift)
	RecoveryCodes = 10 // issued at confirmation
	// recoveryLen is the length of a recovery code without its hyphen:
	// 10 characters of a 32-letter alphabet, 50 bits.
	recoveryLen = 10
	qrSize      = 256 // pixels
)

// Secret is a user's enrolment as stored. Secret is the base32 secret, or
// its sealed form when the service has an encryption key ("v1:…").
type Secret struct {
	UserID    int64
	Secret    string
	LastStep  int64 // the last time step accepted (0: none)
	CreatedAt time.Time
	EnabledAt *time.Time // nil while pending confirmation
	// RecoveryRemaining is the number of unused recovery codes (read only).
	RecoveryRemaining int
}

// Store persists enrolments and recovery codes. Contract, checked by
// storetest:
//   - TOTP returns the user's enrolment; none: not found;
//   - PutTOTP inserts a pending enrolment or replaces a pending one; an
//     enabled one is a conflict; a missing user is not found;
//   - EnableTOTP turns a pending enrolment on, sets its last step to step
//     and stores the recovery code hashes, all at once, only if it is
//     pending and step > its last step: otherwise a conflict (of concurrent
//     callers exactly one succeeds); no enrolment: not found;
//   - UseTOTPStep sets an enabled enrolment's last step to step only if step
//     is later than it: an equal or earlier step is a conflict (of
//     concurrent callers with one step exactly one succeeds); no enabled
//     enrolment: not found;
//   - ReplaceRecoveryCodes spends step as UseTOTPStep does and replaces all
//     the user's recovery codes (used or not) with recoveryHashes, at once:
//     an equal or earlier step is a conflict and changes nothing; no
//     enabled enrolment: not found;
//   - UseRecoveryCode marks the user's unused code with this hash used: of
//     concurrent callers exactly one succeeds; unknown, used or another
//     user's: not found;
//   - DeleteTOTP removes the enrolment and its recovery codes; none: not
//     found.
type Store interface {
	TOTP(ctx context.Context, userID int64) (*Secret, error)
	PutTOTP(ctx context.Context, s *Secret) error
	EnableTOTP(ctx context.Context, userID, step int64, recoveryHashes []string, at time.Time) error
	UseTOTPStep(ctx context.Context, userID, step int64) error
	ReplaceRecoveryCodes(ctx context.Context, userID, step int64, recoveryHashes []string, at time.Time) error
	UseRecoveryCode(ctx context.Context, userID int64, hash string, at time.Time) error
	DeleteTOTP(ctx context.Context, userID int64) error
}

// Config configures a Service.
type Config struct {
	Store Store
	// Issuer names the service in authenticator apps (default "revops").
	Issuer string
	// Key, if set (32 bytes), seals secrets at rest with AES-256-GCM; the
	// user id is the associated data, so a sealed secret does not decrypt
	// as another user's. Nil stores them as base32.
	Key []byte
	// Limit spends one attempt of the user's bucket before a code is
	// checked, returning an error (429) when it is empty; nil: no limit.
	Limit func(ctx context.Context, userID int64) error
	Now   func() time.Time
}

// Service enrols users and checks their codes.
type Service struct {
	cfg  Config
	aead cipher.AEAD
}

// New checks cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Now == nil {
		return nil, errors.New("twofactor: New needs a store and a clock")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "revops"
	}
	s := &Service{}
	if cfg.Key != nil {
		var err error
		if s, err = newSealer(cfg.Key); err != nil {
			return nil, err
		}
	}
	s.cfg = cfg
	return s, nil
}

// newSealer is a Service that seals secrets with key.
func newSealer(key []byte) (*Service, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("twofactor: the encryption key must be 32 bytes (AES-256), got %d", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &Service{aead: aead}, nil
}

// Method is how a code was accepted.
type Method string

// Methods.
const (
	MethodTOTP     Method = "totp"
	MethodRecovery Method = "recovery_code"
)

// Status is a user's two-factor state.
type Status struct {
	Enabled           bool
	Pending           bool // enrolled, not yet confirmed
	EnabledAt         *time.Time
	RecoveryRemaining int
}

// Enrollment is what a user needs to add the secret to an authenticator
// app. The secret is shown here only.
type Enrollment struct {
	Secret string // base32, no padding
	URL    string // otpauth://totp/…
	QRPNG  []byte // the URL as a QR code
}

// ErrAlreadyEnabled refuses a second enrolment.
func ErrAlreadyEnabled() error {
	return core.Conflict("Two-factor authentication is already enabled; disable it first to enrol a new secret.")
}

// ErrNotEnrolled is the answer to a confirmation without an enrolment.
func ErrNotEnrolled() error {
	return core.Conflict("There is no pending two-factor enrolment; start one with POST /auth/totp/enroll.")
}

// ErrNotEnabled is the answer to disabling what is not enabled.
func ErrNotEnabled() error {
	return core.Conflict("Two-factor authentication is not enabled.")
}

// ErrInvalidCode is a wrong, expired or already used code.
func ErrInvalidCode(field string) error {
	return core.Invalid(field, "The code is invalid, expired or was already used.")
}

// ErrMalformedCode is input that is neither a TOTP code nor a recovery code.
func ErrMalformedCode(field string) error {
	return core.Invalid(field, "The code must be the 6-digit code from your authenticator app or a recovery code (xxxxx-xxxxx).")
}

// Status reports the user's state.
func (s *Service) Status(ctx context.Context, userID int64) (*Status, error) {
	sec, err := s.cfg.Store.TOTP(ctx, userID)
	if errors.Is(err, core.ErrNotFound) {
		return &Status{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &Status{Enabled: sec.EnabledAt != nil, Pending: sec.EnabledAt == nil, EnabledAt: sec.EnabledAt, RecoveryRemaining: sec.RecoveryRemaining}, nil
}

// Enabled reports whether the user has confirmed two-factor authentication.
func (s *Service) Enabled(ctx context.Context, userID int64) (bool, error) {
	st, err := s.Status(ctx, userID)
	if err != nil {
		return false, err
	}
	return st.Enabled, nil
}

// Enroll makes a new secret for the user, pending until Confirm. Enrolling
// again before confirming replaces the pending secret; an enabled one is a
// conflict. account labels the secret in the app (the email).
func (s *Service) Enroll(ctx context.Context, userID int64, account string) (*Enrollment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.Issuer, AccountName: account, Period: Period, SecretSize: SecretBytes,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return nil, err
	}
	sealed, err := s.seal(userID, key.Secret())
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Store.PutTOTP(ctx, &Secret{UserID: userID, Secret: sealed, CreatedAt: s.clock()}); err != nil {
		if errors.Is(err, core.ErrConflict) {
			return nil, ErrAlreadyEnabled()
		}
		return nil, err
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return &Enrollment{Secret: key.Secret(), URL: key.URL(), QRPNG: buf.Bytes()}, nil
}

// Confirm checks a code of the pending secret, enables it and returns the
// recovery codes, shown this once. field names the code in errors.
func (s *Service) Confirm(ctx context.Context, userID int64, code, field string) ([]string, error) {
	code = normalize(code)
	if !isTOTPCode(code) {
		return nil, core.Invalid(field, "The code must be the 6-digit code from your authenticator app.")
	}
	sec, err := s.cfg.Store.TOTP(ctx, userID)
	switch {
	case errors.Is(err, core.ErrNotFound):
		return nil, ErrNotEnrolled()
	case err != nil:
		return nil, err
	case sec.EnabledAt != nil:
		return nil, ErrAlreadyEnabled()
	}
	return s.issueRecoveryCodes(ctx, sec, code, field, ErrNotEnrolled, func(step int64, hashes []string) error {
		return s.cfg.Store.EnableTOTP(ctx, userID, step, hashes, s.clock())
	})
}

// issueRecoveryCodes spends code's time step on sec and stores a new set of
// recovery codes with write (which spends the step with them), returned
// this once. A step used concurrently (the store's conflict) is
// ErrInvalidCode(field); a secret gone meanwhile (not found), gone().
func (s *Service) issueRecoveryCodes(ctx context.Context, sec *Secret, code, field string, gone func() error, write func(step int64, hashes []string) error) ([]string, error) {
	step, err := s.newStep(ctx, sec, code, field)
	if err != nil {
		return nil, err
	}
	codes, hashes := newRecoveryCodes()
	err = write(step, hashes)
	switch {
	case errors.Is(err, core.ErrConflict):
		return nil, ErrInvalidCode(field)
	case errors.Is(err, core.ErrNotFound):
		return nil, gone()
	case err != nil:
		return nil, err
	}
	return codes, nil
}

// Check verifies a code of an enabled secret, or a recovery code, and
// spends it. A wrong, replayed or concurrently used code is
// ErrInvalidCode(field); input of neither shape ErrMalformedCode(field);
// a user without two-factor authentication ErrNotEnabled.
func (s *Service) Check(ctx context.Context, userID int64, code, field string) (Method, error) {
	code = normalize(code)
	isRecovery := isRecoveryCode(code)
	if !isTOTPCode(code) && !isRecovery {
		return "", ErrMalformedCode(field)
	}
	sec, err := s.enabled(ctx, userID)
	if err != nil {
		return "", err
	}
	if isRecovery {
		if err := s.limit(ctx, userID); err != nil {
			return "", err
		}
		err := s.cfg.Store.UseRecoveryCode(ctx, userID, HashRecoveryCode(code), s.clock())
		if errors.Is(err, core.ErrNotFound) {
			return "", ErrInvalidCode(field)
		}
		return MethodRecovery, err
	}
	step, err := s.newStep(ctx, sec, code, field)
	if err != nil {
		return "", err
	}
	err = s.cfg.Store.UseTOTPStep(ctx, userID, step)
	if errors.Is(err, core.ErrConflict) || errors.Is(err, core.ErrNotFound) {
		return "", ErrInvalidCode(field) // replayed, or used concurrently
	}
	return MethodTOTP, err
}

// ReplaceRecoveryCodes checks a current code of an enabled secret (not a
// recovery code: a new set proves the authenticator is still at hand) and
// replaces the user's recovery codes with new ones, returned this once; the
// old ones, used or not, stop working. Errors as Check's.
func (s *Service) ReplaceRecoveryCodes(ctx context.Context, userID int64, code, field string) ([]string, error) {
	code = normalize(code)
	if !isTOTPCode(code) {
		return nil, core.Invalid(field, "The code must be the 6-digit code from your authenticator app (a recovery code cannot replace the recovery codes).")
	}
	sec, err := s.enabled(ctx, userID)
	if err != nil {
		return nil, err
	}
	return s.issueRecoveryCodes(ctx, sec, code, field, ErrNotEnabled, func(step int64, hashes []string) error {
		return s.cfg.Store.ReplaceRecoveryCodes(ctx, userID, step, hashes, s.clock())
	})
}

// Disable turns two-factor authentication off after checking a current
// code or a recovery code.
func (s *Service) Disable(ctx context.Context, userID int64, code, field string) (Method, error) {
	m, err := s.Check(ctx, userID, code, field)
	if err != nil {
		return "", err
	}
	if err := s.cfg.Store.DeleteTOTP(ctx, userID); err != nil && !errors.Is(err, core.ErrNotFound) {
		return "", err
	}
	return m, nil
}

// enabled is the user's enrolment if it is enabled, else ErrNotEnabled.
func (s *Service) enabled(ctx context.Context, userID int64) (*Secret, error) {
	sec, err := s.cfg.Store.TOTP(ctx, userID)
	switch {
	case errors.Is(err, core.ErrNotFound):
		return nil, ErrNotEnabled()
	case err != nil:
		return nil, err
	case sec.EnabledAt == nil:
		return nil, ErrNotEnabled()
	}
	return sec, nil
}

// newStep spends one check of the user's allowance and returns the time
// step whose code of sec is code: none, or one not after the last step
// used, is ErrInvalidCode(field). The caller spends the step in the store,
// where a concurrent use of it loses.
func (s *Service) newStep(ctx context.Context, sec *Secret, code, field string) (int64, error) {
	if err := s.limit(ctx, sec.UserID); err != nil {
		return 0, err
	}
	step, ok, err := s.match(sec, code)
	if err != nil {
		return 0, err
	}
	if !ok || step <= sec.LastStep {
		return 0, ErrInvalidCode(field)
	}
	return step, nil
}

// match finds the time step within Skew of now whose code is code.
func (s *Service) match(sec *Secret, code string) (int64, bool, error) {
	secret, err := s.open(sec.UserID, sec.Secret)
	if err != nil {
		return 0, false, err
	}
	now := StepAt(s.cfg.Now())
	found, matched := int64(0), false
	// Every candidate is computed and compared in constant time, so timing
	// does not tell which step matched.
	for _, st := range []int64{now, now - 1, now + 1} {
		want, err := CodeAt(secret, st)
		if err != nil {
			return 0, false, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !matched {
			found, matched = st, true
		}
	}
	return found, matched, nil
}

// StepAt is the RFC 6238 time step of t.
func StepAt(t time.Time) int64 { return t.Unix() / Period }

// CodeAt is the code of a base32 secret at time step step.
func CodeAt(secret string, step int64) (string, error) {
	return totp.GenerateCodeCustom(secret, time.Unix(step*Period, 0), totp.ValidateOpts{Period: Period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

func (s *Service) limit(ctx context.Context, userID int64) error {
	if s.cfg.Limit == nil {
		return nil
	}
	return s.cfg.Limit(ctx, userID)
}

func (s *Service) clock() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// normalize drops spaces and hyphens and lower-cases, so that "123 456",
// "ABCDE-FGHIJ" and "abcdefghij" are accepted.
func normalize(code string) string {
	if len(code) > 64 {
		return code // rejected by shape
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, code)
}

// WellFormed reports whether code has the shape of a TOTP code or of a
// recovery code (spaces, hyphens and case aside).
func WellFormed(code string) bool {
	c := normalize(code)
	return isTOTPCode(c) || isRecoveryCode(c)
}

func isTOTPCode(c string) bool {
	if len(c) != Digits {
		return false
	}
	_, err := strconv.ParseUint(c, 10, 32)
	return err == nil
}

// recoveryAlphabet is base32's lower-case alphabet.
const recoveryAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

func isRecoveryCode(c string) bool {
	if len(c) != recoveryLen {
		return false
	}
	for i := 0; i < len(c); i++ {
		if strings.IndexByte(recoveryAlphabet, c[i]) < 0 {
			return false
		}
	}
	return true
}

// newRecoveryCode is 10 random characters of recoveryAlphabet, shown as
// xxxxx-xxxxx.
// newRecoveryCodes returns a new set of recovery codes and their hashes.
func newRecoveryCodes() (codes, hashes []string) {
	codes, hashes = make([]string, RecoveryCodes), make([]string, RecoveryCodes)
	for i := range codes {
		codes[i] = newRecoveryCode()
		hashes[i] = HashRecoveryCode(codes[i])
	}
	return codes, hashes
}

func newRecoveryCode() string {
	var b [recoveryLen]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = recoveryAlphabet[b[i]&31]
	}
	return string(b[:5]) + "-" + string(b[5:])
}

// HashRecoveryCode is how recovery codes are stored: the hex SHA-256 of the
// normalized code (50 random bits each, behind a per-user rate limit, so a
// fast hash is enough).
func HashRecoveryCode(code string) string {
	sum := sha256.Sum256([]byte(normalize(code)))
	return hex.EncodeToString(sum[:])
}

const sealedPrefix = "v1:"

func (s *Service) seal(userID int64, secret string) (string, error) {
	if s.aead == nil {
		return secret, nil
	}
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	ct := s.aead.Seal(nonce, nonce, []byte(secret), []byte(strconv.FormatInt(userID, 10)))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(ct), nil
}

func (s *Service) open(userID int64, stored string) (string, error) {
	b64, sealed := strings.CutPrefix(stored, sealedPrefix)
	if !sealed {
		return stored, nil
	}
	if s.aead == nil {
		return "", errors.New("twofactor: the secret is encrypted but no encryption key is configured (Config.TOTP.EncryptionKey)")
	}
	ct, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(ct) < s.aead.NonceSize() {
		return "", errors.New("twofactor: malformed sealed secret")
	}
	pt, err := s.aead.Open(nil, ct[:s.aead.NonceSize()], ct[s.aead.NonceSize():], []byte(strconv.FormatInt(userID, 10)))
	if err != nil {
		return "", errors.New("twofactor: the secret does not decrypt with the configured key")
	}
	return string(pt), nil
}
