-- 0004_metering: usage events, their totals (counters and deltas), entitlement
-- overrides and the usage thresholds already announced.

-- Append-only, never updated: the record that an event id was counted
-- (one per workspace) and what it said. A total is its counter plus the
-- deltas not yet folded into it, read in one statement: a bulk append adds
-- one delta row per counter it touches, so folding reads a few rows, not
-- every event.
CREATE TABLE revops_usage_events (
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    feature TEXT NOT NULL,
    period_start {{timestamp}} NOT NULL,
    quantity BIGINT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at {{timestamp}} NOT NULL,
    PRIMARY KEY (workspace_id, event_id)
);

CREATE TABLE revops_usage_deltas (
    id {{id}},
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    feature TEXT NOT NULL,
    period_start {{timestamp}} NOT NULL,
    quantity BIGINT NOT NULL
);
CREATE INDEX revops_usage_deltas_counter_idx ON revops_usage_deltas (workspace_id, feature, period_start);

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
