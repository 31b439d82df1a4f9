-- 0010_sessions: browser sessions (cookies) and user profiles.

-- A web session is the cookie side of a login session: the cookie token is
-- stored only as its hex SHA-256. Revoking the login session (revoked_at on
-- revops_sessions) ends the cookie; expires_at is the absolute end, and
-- last_seen_at measures the idle timeout.
CREATE TABLE revops_web_sessions (
    session_id BIGINT NOT NULL PRIMARY KEY REFERENCES revops_sessions (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES revops_users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    last_seen_at {{timestamp}} NOT NULL,
    expires_at {{timestamp}} NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX revops_web_sessions_token_hash_key ON revops_web_sessions (token_hash);
CREATE INDEX revops_web_sessions_user_id_idx ON revops_web_sessions (user_id, created_at);

-- A user's preferred locale (spec 002's invite), e.g. "en" or "en_GB".
ALTER TABLE revops_users ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';
