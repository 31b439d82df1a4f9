-- 0004_metering: usage events, their rolled-up totals, entitlement
-- overrides and the usage thresholds already announced.

-- Append-only. event_id is the caller's dedupe key (one per workspace).
-- rolled_up marks events already added to revops_usage_counters; a total is
-- the counter plus the events not rolled up, read in one statement.
CREATE TABLE revops_usage_events (
    id {{id}},
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    feature TEXT NOT NULL,
    period_start {{timestamp}} NOT NULL,
    quantity BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    rolled_up BOOLEAN NOT NULL DEFAULT FALSE,
    created_at {{timestamp}} NOT NULL
);
CREATE UNIQUE INDEX revops_usage_events_event_id_key ON revops_usage_events (workspace_id, event_id);
CREATE INDEX revops_usage_events_pending_idx ON revops_usage_events (workspace_id, feature, period_start) WHERE NOT rolled_up;
CREATE INDEX revops_usage_events_created_idx ON revops_usage_events (workspace_id, created_at);

CREATE TABLE revops_usage_counters (
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    feature TEXT NOT NULL,
    period_start {{timestamp}} NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, feature, period_start)
);

CREATE TABLE revops_entitlement_overrides (
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    feature TEXT NOT NULL,
    limit_value BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, feature)
);

CREATE TABLE revops_usage_thresholds (
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    feature TEXT NOT NULL,
    period_start {{timestamp}} NOT NULL,
    percent INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, feature, period_start, percent)
);
