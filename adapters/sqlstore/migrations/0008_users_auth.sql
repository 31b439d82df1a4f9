-- 0008_users_auth: passwords and login sessions.

-- password_hash is an argon2id PHC string; '' means the user has no
-- password (it cannot log in with one).
ALTER TABLE revops_users ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';

-- A session is one login and its refresh-token rotations; revoking it
-- revokes every refresh and access token issued in it.
CREATE TABLE revops_sessions (
    id {{id}},
    user_id BIGINT NOT NULL REFERENCES revops_users (id) ON DELETE CASCADE,
    created_at {{timestamp}} NOT NULL,
    revoked_at {{timestamp}}
);
CREATE INDEX revops_sessions_user_id_idx ON revops_sessions (user_id);

-- Refresh tokens, stored as the hex SHA-256 of the token; used_at is set
-- once, by the one request that rotates it.
CREATE TABLE revops_refresh_tokens (
    id {{id}},
    session_id BIGINT NOT NULL REFERENCES revops_sessions (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES revops_users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    expires_at {{timestamp}} NOT NULL,
    used_at {{timestamp}}
);
CREATE UNIQUE INDEX revops_refresh_tokens_token_hash_key ON revops_refresh_tokens (token_hash);
CREATE INDEX revops_refresh_tokens_session_id_idx ON revops_refresh_tokens (session_id);
