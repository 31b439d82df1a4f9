-- 0006_billing_payments: each workspace's subscription with its payment
-- provider, and the provider events applied (deduplication).

-- One row per workspace that has been to checkout. event_at is the provider
-- time of the newest event applied, so that a late older event is not
-- applied over it. A provider's customer belongs to one workspace.
CREATE TABLE revops_billing_subscriptions (
    workspace_id BIGINT NOT NULL PRIMARY KEY REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    provider TEXT NOT NULL DEFAULT '',
    customer_id TEXT NOT NULL DEFAULT '',
    subscription_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT '',
    tier TEXT NOT NULL DEFAULT '',
    current_period_end {{timestamp}},
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    event_at {{timestamp}},
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL
);
CREATE UNIQUE INDEX revops_billing_subscriptions_customer_key ON revops_billing_subscriptions (provider, customer_id) WHERE customer_id <> '';

-- One row per provider event applied, written in the transaction that
-- applies it: a redelivered event finds its row and changes nothing. No
-- foreign key: the record outlives a deleted workspace, and events naming
-- no known workspace are not recorded at all.
CREATE TABLE revops_billing_provider_events (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    workspace_id BIGINT NOT NULL,
    processed_at {{timestamp}} NOT NULL,
    PRIMARY KEY (provider, event_id)
);
