-- 0003_webhooks: webhook endpoints, published events and their deliveries.

-- events is a JSON array of event types and patterns. The unique index on
-- (workspace_id, id) lists a workspace's endpoints and is the target of the
-- deliveries' foreign key, which thereby also keeps a delivery in the
-- workspace of its endpoint.
CREATE TABLE revops_webhook_endpoints (
    id {{id}},
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    events TEXT NOT NULL DEFAULT '[]',
    secret TEXT NOT NULL,
    prev_secret TEXT NOT NULL DEFAULT '',
    prev_secret_until {{timestamp}},
    is_active BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason TEXT NOT NULL DEFAULT '',
    success_count BIGINT NOT NULL DEFAULT 0,
    failure_count BIGINT NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    failing_since {{timestamp}},
    last_delivery_at {{timestamp}},
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL
);
CREATE UNIQUE INDEX revops_webhook_endpoints_workspace_id_key ON revops_webhook_endpoints (workspace_id, id);

-- id is the event id ("evt_…"); payload is the JSON body, as published.
CREATE TABLE revops_webhook_events (
    id TEXT NOT NULL PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL
);
CREATE INDEX revops_webhook_events_workspace_id_idx ON revops_webhook_events (workspace_id, created_at);

-- One event to one endpoint. locked_until is the lease of the worker
-- attempting it; response_body is binary (a receiver may answer anything).
CREATE TABLE revops_webhook_deliveries (
    id {{id}},
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    endpoint_id BIGINT NOT NULL,
    event_id TEXT NOT NULL REFERENCES revops_webhook_events (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    next_attempt_at {{timestamp}},
    locked_until {{timestamp}},
    response_code INTEGER NOT NULL DEFAULT 0,
    response_body {{blob}},
    response_time_ms INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    delivered_at {{timestamp}},
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL,
    FOREIGN KEY (workspace_id, endpoint_id) REFERENCES revops_webhook_endpoints (workspace_id, id) ON DELETE CASCADE
);
CREATE INDEX revops_webhook_deliveries_endpoint_idx ON revops_webhook_deliveries (workspace_id, endpoint_id, id);
CREATE INDEX revops_webhook_deliveries_due_idx ON revops_webhook_deliveries (status, next_attempt_at);
CREATE INDEX revops_webhook_deliveries_event_id_idx ON revops_webhook_deliveries (event_id);
