-- 0002_pipeline: the shared rate limiter, Idempotency-Key results and pixel
-- tracking.

-- One row per busy rate-limit bucket: tat is the GCRA theoretical arrival
-- time in Unix microseconds; allowed is the outcome of the last request,
-- written by the same statement that moves tat. Rows whose tat has passed
-- hold no information and are swept.
CREATE TABLE revops_rate_limits (
    bucket TEXT NOT NULL PRIMARY KEY,
    tat BIGINT NOT NULL,
    allowed BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX revops_rate_limits_tat_idx ON revops_rate_limits (tat);

-- One row per Idempotency-Key within its scope (workspace and principal).
-- claim is the token of the request running it ('' once it completed);
-- a claim past locked_until is stale and may be taken over.
CREATE TABLE revops_idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    claim TEXT NOT NULL DEFAULT '',
    locked_until {{timestamp}} NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,
    header TEXT NOT NULL DEFAULT '{}',
    body {{blob}},
    created_at {{timestamp}} NOT NULL,
    expires_at {{timestamp}} NOT NULL,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX revops_idempotency_keys_expires_at_idx ON revops_idempotency_keys (expires_at);

-- A workspace's tracking pixel: site_key is public (it goes in web pages).
CREATE TABLE revops_pixel_sites (
    workspace_id BIGINT NOT NULL PRIMARY KEY REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    site_key TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    pageviews BOOLEAN NOT NULL DEFAULT TRUE,
    events BOOLEAN NOT NULL DEFAULT TRUE,
    sessions BOOLEAN NOT NULL DEFAULT TRUE,
    sample_rate DOUBLE PRECISION NOT NULL DEFAULT 1,
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL
);
CREATE UNIQUE INDEX revops_pixel_sites_site_key_key ON revops_pixel_sites (site_key);

-- properties is a JSON object.
CREATE TABLE revops_pixel_events (
    id {{id}},
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    referrer TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    properties TEXT NOT NULL DEFAULT '{}',
    created_at {{timestamp}} NOT NULL
);
CREATE INDEX revops_pixel_events_workspace_id_idx ON revops_pixel_events (workspace_id, created_at);
