-- 0011_totp: TOTP two-factor authentication (RFC 6238).

-- One enrolment per user. secret is the base32 secret, or "v1:" and its
-- AES-256-GCM sealed form when the platform has an encryption key.
-- enabled_at is NULL while the enrolment waits for its first code.
-- last_step is the last RFC 6238 time step accepted: a code is accepted
-- only by the conditional UPDATE that moves it forward, so a code works
-- once on every instance sharing the database.
CREATE TABLE revops_totp (
    user_id BIGINT NOT NULL PRIMARY KEY REFERENCES revops_users (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    last_step BIGINT NOT NULL DEFAULT 0,
    created_at {{timestamp}} NOT NULL,
    enabled_at {{timestamp}}
);

-- Recovery codes, stored as the hex SHA-256 of the code; used_at is set
-- once, by the one request that spends it.
CREATE TABLE revops_totp_recovery_codes (
    id {{id}},
    user_id BIGINT NOT NULL REFERENCES revops_users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    used_at {{timestamp}}
);
CREATE UNIQUE INDEX revops_totp_recovery_codes_user_hash_key ON revops_totp_recovery_codes (user_id, code_hash);
