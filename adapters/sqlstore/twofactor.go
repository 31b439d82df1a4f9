package sqlstore

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/revopsdev/revops/core"
	"github.com/revopsdev/revops/twofactor"
)

var _ twofactor.Store = (*Store)(nil)

type totpRow struct {
	UserID            int64      `bun:"user_id"`
	Secret            string     `bun:"secret"`
	LastStep          int64      `bun:"last_step"`
	CreatedAt         time.Time  `bun:"created_at"`
	EnabledAt         *time.Time `bun:"enabled_at"`
	RecoveryRemaining int64      `bun:"recovery_remaining"`
}

// TOTP returns the user's enrolment with its count of unused recovery codes.
func (s *Store) TOTP(ctx context.Context, userID int64) (*twofactor.Secret, error) {
	var r totpRow
	err := s.db.NewRaw(`SELECT t.user_id, t.secret, t.last_step, t.created_at, t.enabled_at,
    (SELECT COUNT(*) FROM revops_totp_recovery_codes c WHERE c.user_id = t.user_id AND c.used_at IS NULL) AS recovery_remaining
FROM revops_totp t WHERE t.user_id = ?`, userID).Scan(ctx, &r)
	if err != nil {
		return nil, fail("get totp", err, "")
	}
	return &twofactor.Secret{UserID: r.UserID, Secret: r.Secret, LastStep: r.LastStep, CreatedAt: utc(r.CreatedAt), EnabledAt: utcp(r.EnabledAt),
		RecoveryRemaining: int(r.RecoveryRemaining)}, nil
}

// PutTOTP inserts a pending enrolment or replaces a pending one, in one
// statement: the upsert's WHERE leaves an enabled enrolment alone, which
// is then a conflict.
func (s *Store) PutTOTP(ctx context.Context, t *twofactor.Secret) error {
	t.CreatedAt = orNow(t.CreatedAt)
	res, err := s.db.NewRaw(`INSERT INTO revops_totp (user_id, secret, last_step, created_at) VALUES (?, ?, 0, ?)
ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, created_at = EXCLUDED.created_at
WHERE revops_totp.enabled_at IS NULL`, t.UserID, t.Secret, t.CreatedAt).Exec(ctx)
	if err != nil {
		return fail("put totp", err, "")
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail("put totp", err, "")
	} else if n == 0 {
		return core.Conflict("Two-factor authentication is already enabled.")
	}
	return nil
}

// EnableTOTP turns a pending enrolment on and replaces its recovery codes,
// in one transaction; the conditional UPDATE decides races.
func (s *Store) EnableTOTP(ctx context.Context, userID, step int64, hashes []string, at time.Time) error {
	at = ts(at)
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewRaw("UPDATE revops_totp SET enabled_at = ?, last_step = ? WHERE user_id = ? AND enabled_at IS NULL AND last_step < ?",
			at, step, userID, step).Exec(ctx)
		if err != nil {
			return fail("enable totp", err, "")
		}
		if n, err := res.RowsAffected(); err != nil {
			return fail("enable totp", err, "")
		} else if n == 0 {
			return s.totpMissOrConflict(ctx, tx, userID, false)
		}
		return putRecoveryCodes(ctx, tx, userID, hashes, at)
	})
}

// ReplaceRecoveryCodes spends step on the enabled enrolment (the WHERE is
// the race, as in UseTOTPStep) and replaces the recovery codes with it.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID, step int64, hashes []string, at time.Time) error {
	at = ts(at)
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := s.useStep(ctx, tx, userID, step); err != nil {
			return err
		}
		return putRecoveryCodes(ctx, tx, userID, hashes, at)
	})
}

// putRecoveryCodes replaces the user's recovery codes, in tx.
func putRecoveryCodes(ctx context.Context, tx bun.Tx, userID int64, hashes []string, at time.Time) error {
	if _, err := tx.NewRaw("DELETE FROM revops_totp_recovery_codes WHERE user_id = ?", userID).Exec(ctx); err != nil {
		return fail("delete recovery codes", err, "")
	}
	for _, h := range hashes {
		if _, err := tx.NewRaw("INSERT INTO revops_totp_recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)", userID, h, at).Exec(ctx); err != nil {
			return fail("insert recovery code", err, "A recovery code is duplicated.")
		}
	}
	return nil
}

// totpMissOrConflict explains a conditional update that changed nothing:
// not found when there is no (enabled, if enabled) enrolment, else conflict.
func (s *Store) totpMissOrConflict(ctx context.Context, db bun.IDB, userID int64, enabled bool) error {
	q := "SELECT COUNT(*) FROM revops_totp WHERE user_id = ?"
	if enabled {
		q += " AND enabled_at IS NOT NULL"
	}
	var n int64
	if err := db.NewRaw(q, userID).Scan(ctx, &n); err != nil {
		return fail("get totp", err, "")
	}
	if n == 0 {
		return core.NotFound()
	}
	return core.Conflict("This code's time step was already used.")
}

// UseTOTPStep moves the last used step forward; the WHERE is the whole race.
func (s *Store) UseTOTPStep(ctx context.Context, userID, step int64) error {
	return s.useStep(ctx, s.db, userID, step)
}

// useStep is UseTOTPStep on db (the database, or a transaction).
func (s *Store) useStep(ctx context.Context, db bun.IDB, userID, step int64) error {
	res, err := db.NewRaw("UPDATE revops_totp SET last_step = ? WHERE user_id = ? AND enabled_at IS NOT NULL AND last_step < ?", step, userID, step).Exec(ctx)
	if err != nil {
		return fail("use totp step", err, "")
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail("use totp step", err, "")
	} else if n == 0 {
		return s.totpMissOrConflict(ctx, db, userID, true)
	}
	return nil
}

// UseRecoveryCode spends an unused recovery code of the user.
func (s *Store) UseRecoveryCode(ctx context.Context, userID int64, hash string, at time.Time) error {
	res, err := s.db.NewRaw("UPDATE revops_totp_recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
		ts(at), userID, hash).Exec(ctx)
	return mustAffect("use recovery code", res, err)
}

// DeleteTOTP removes the enrolment and its recovery codes.
func (s *Store) DeleteTOTP(ctx context.Context, userID int64) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewRaw("DELETE FROM revops_totp_recovery_codes WHERE user_id = ?", userID).Exec(ctx); err != nil {
			return fail("delete recovery codes", err, "")
		}
		res, err := tx.NewRaw("DELETE FROM revops_totp WHERE user_id = ?", userID).Exec(ctx)
		return mustAffect("delete totp", res, err)
	})
}
