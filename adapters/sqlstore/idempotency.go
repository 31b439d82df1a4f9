package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/revopsdev/revops/idempotency"
)

var _ idempotency.Store = (*Store)(nil)

type idemRow struct {
	Scope       string    `bun:"scope"`
	Key         string    `bun:"idem_key"`
	Fingerprint string    `bun:"fingerprint"`
	Claim       string    `bun:"claim"`
	LockedUntil time.Time `bun:"locked_until"`
	Status      int       `bun:"status"`
	Header      string    `bun:"header"`
	Body        []byte    `bun:"body"`
	CreatedAt   time.Time `bun:"created_at"`
	ExpiresAt   time.Time `bun:"expires_at"`
}

const idemColumns = "scope, idem_key, fingerprint, claim, locked_until, status, header, body, created_at, expires_at"

// ClaimIdempotencyKey claims rec's key without any lock statement, so that
// it is portable: an insert that does nothing on conflict, else a takeover
// whose WHERE only matches a dead record (each is atomic on its own), else
// a read of the live record. A record released between the steps makes
// it start over.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, rec *idempotency.Record, now time.Time) (*idempotency.Record, error) {
	const op = "claim idempotency key"
	now = ts(now)
	for range 5 {
		res, err := s.db.ExecContext(ctx, "INSERT INTO revops_idempotency_keys ("+idemColumns+") VALUES (?, ?, ?, ?, ?, 0, '{}', NULL, ?, ?) ON CONFLICT (scope, idem_key) DO NOTHING",
			rec.Scope, rec.Key, rec.Fingerprint, rec.Claim, ts(rec.LockedUntil), ts(rec.CreatedAt), ts(rec.ExpiresAt))
		if claimed, err := affected(res, err); err != nil || claimed {
			return nil, fail(op, err, "")
		}
		res, err = s.db.ExecContext(ctx, `UPDATE revops_idempotency_keys
SET fingerprint = ?, claim = ?, locked_until = ?, status = 0, header = '{}', body = NULL, created_at = ?, expires_at = ?
WHERE scope = ? AND idem_key = ? AND (expires_at <= ? OR (claim <> '' AND locked_until <= ?))`,
			rec.Fingerprint, rec.Claim, ts(rec.LockedUntil), ts(rec.CreatedAt), ts(rec.ExpiresAt), rec.Scope, rec.Key, now, now)
		if claimed, err := affected(res, err); err != nil || claimed {
			return nil, fail(op, err, "")
		}
		var rows []idemRow
		if err := s.db.NewRaw("SELECT "+idemColumns+" FROM revops_idempotency_keys WHERE scope = ? AND idem_key = ?", rec.Scope, rec.Key).Scan(ctx, &rows); err != nil {
			return nil, fail(op, err, "")
		}
		if len(rows) == 1 {
			return rows[0].record()
		}
	}
	return nil, fmt.Errorf("sqlstore: %s: the record kept changing under concurrent claims", op)
}

func affected(res interface{ RowsAffected() (int64, error) }, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (r *idemRow) record() (*idempotency.Record, error) {
	rec := &idempotency.Record{Scope: r.Scope, Key: r.Key, Fingerprint: r.Fingerprint, Claim: r.Claim,
		LockedUntil: r.LockedUntil.UTC(), Status: r.Status, Body: r.Body, CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC()}
	if err := json.Unmarshal([]byte(r.Header), &rec.Header); err != nil {
		return nil, fmt.Errorf("sqlstore: idempotency record %q: header: %w", r.Key, err)
	}
	return rec, nil
}

// CompleteIdempotencyKey stores the response while claim still holds the key.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, scope, key, claim string, status int, header map[string][]string, body []byte) (bool, error) {
	if claim == "" {
		return false, errors.New("sqlstore: complete idempotency key: empty claim")
	}
	h, err := json.Marshal(header)
	if err != nil {
		return false, fmt.Errorf("sqlstore: complete idempotency key: %w", err)
	}
	if body == nil {
		body = []byte{}
	}
	res, err := s.db.ExecContext(ctx, "UPDATE revops_idempotency_keys SET claim = '', status = ?, header = ?, body = ? WHERE scope = ? AND idem_key = ? AND claim = ?",
		status, string(h), body, scope, key, claim)
	ok, err := affected(res, err)
	return ok, fail("complete idempotency key", err, "")
}

// ReleaseIdempotencyKey deletes the record while claim still holds it.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, scope, key, claim string) error {
	if claim == "" {
		return errors.New("sqlstore: release idempotency key: empty claim")
	}
	_, err := s.db.ExecContext(ctx, "DELETE FROM revops_idempotency_keys WHERE scope = ? AND idem_key = ? AND claim = ?", scope, key, claim)
	return fail("release idempotency key", err, "")
}

// DeleteExpiredIdempotencyKeys removes records that expired by now.
func (s *Store) DeleteExpiredIdempotencyKeys(ctx context.Context, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM revops_idempotency_keys WHERE expires_at <= ?", ts(now))
	if err != nil {
		return 0, fail("delete expired idempotency keys", err, "")
	}
	n, err := res.RowsAffected()
	return int(n), fail("delete expired idempotency keys", err, "")
}
