-- 0005_billing_accounts: billing accounts, their workspace bindings and the
-- double-entry ledger (spec 003). Money is BIGINT minor units.

-- An account belongs to a user and may be bound to several workspaces. The
-- balance is kept beside the entries and moved in the same transaction; the
-- CHECK is a last line of defence behind the store's own test.
CREATE TABLE revops_billing_accounts (
    id {{id}},
    owner_user_id BIGINT NOT NULL REFERENCES revops_users (id),
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL
);
CREATE INDEX revops_billing_accounts_owner_idx ON revops_billing_accounts (owner_user_id, id);

-- The partial unique index allows one default per workspace.
CREATE TABLE revops_workspace_billing_accounts (
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES revops_billing_accounts (id),
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    created_at {{timestamp}} NOT NULL,
    PRIMARY KEY (workspace_id, account_id)
);
CREATE UNIQUE INDEX revops_workspace_billing_accounts_default_key ON revops_workspace_billing_accounts (workspace_id) WHERE is_default;
CREATE INDEX revops_workspace_billing_accounts_account_idx ON revops_workspace_billing_accounts (account_id);

-- A NULL idempotency key never collides (NULLs are distinct in both
-- databases' unique indexes).
CREATE TABLE revops_billing_transactions (
    id {{id}},
    account_id BIGINT NOT NULL REFERENCES revops_billing_accounts (id),
    type TEXT NOT NULL CHECK (type IN ('credit', 'debit')),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    counter TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT,
    balance_after BIGINT NOT NULL,
    created_at {{timestamp}} NOT NULL
);
CREATE UNIQUE INDEX revops_billing_transactions_key ON revops_billing_transactions (account_id, idempotency_key);
CREATE INDEX revops_billing_transactions_account_idx ON revops_billing_transactions (account_id, id);

-- Two entries per transaction, summing to zero: the billing account's
-- ("billing_account:<id>") and the counter-account's.
CREATE TABLE revops_billing_entries (
    id {{id}},
    transaction_id BIGINT NOT NULL REFERENCES revops_billing_transactions (id),
    ledger_account TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount <> 0),
    currency TEXT NOT NULL
);
CREATE INDEX revops_billing_entries_transaction_idx ON revops_billing_entries (transaction_id);
CREATE INDEX revops_billing_entries_account_idx ON revops_billing_entries (ledger_account);
