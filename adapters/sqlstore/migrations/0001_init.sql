-- 0001_init: workspaces, users, members, invitations, join codes, icons and
-- API keys. Tokens in double braces are replaced per dialect by migrate.go:
-- {{id}} an auto-increment primary key, {{timestamp}} a time with zone,
-- {{blob}} binary data. Each statement ends with a semicolon at the end of a
-- line. Rows that belong to a workspace reference it ON DELETE CASCADE so
-- that deleting the workspace deletes them.

CREATE TABLE revops_users (
    id {{id}},
    email TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL
);
CREATE UNIQUE INDEX revops_users_email_key ON revops_users (email);

CREATE TABLE revops_workspaces (
    id {{id}},
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    tier TEXT NOT NULL DEFAULT '',
    timezone TEXT NOT NULL DEFAULT '',
    locale TEXT NOT NULL DEFAULT '',
    totp_policy TEXT NOT NULL DEFAULT '',
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL
);
CREATE UNIQUE INDEX revops_workspaces_slug_key ON revops_workspaces (slug);

CREATE TABLE revops_members (
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES revops_users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX revops_members_user_id_idx ON revops_members (user_id);

CREATE TABLE revops_invitations (
    id {{id}},
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    invited_by BIGINT,
    expires_at {{timestamp}} NOT NULL,
    accepted_at {{timestamp}},
    created_at {{timestamp}} NOT NULL
);
CREATE UNIQUE INDEX revops_invitations_token_hash_key ON revops_invitations (token_hash);
CREATE INDEX revops_invitations_workspace_id_idx ON revops_invitations (workspace_id);
-- At most one pending invitation per email and workspace.
CREATE UNIQUE INDEX revops_invitations_pending_email_key ON revops_invitations (workspace_id, email) WHERE accepted_at IS NULL;

CREATE TABLE revops_join_codes (
    id {{id}},
    workspace_id BIGINT NOT NULL REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    hint TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    expires_at {{timestamp}},
    revoked_at {{timestamp}},
    uses BIGINT NOT NULL DEFAULT 0,
    created_by BIGINT,
    created_at {{timestamp}} NOT NULL
);
CREATE UNIQUE INDEX revops_join_codes_code_hash_key ON revops_join_codes (code_hash);
CREATE INDEX revops_join_codes_workspace_id_idx ON revops_join_codes (workspace_id);

CREATE TABLE revops_workspace_icons (
    workspace_id BIGINT NOT NULL PRIMARY KEY REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    content_type TEXT NOT NULL,
    data {{blob}} NOT NULL,
    etag TEXT NOT NULL,
    updated_at {{timestamp}} NOT NULL
);

-- workspace_id is NULL for a personal key; scopes is a JSON array of strings.
CREATE TABLE revops_api_keys (
    id {{id}},
    workspace_id BIGINT REFERENCES revops_workspaces (id) ON DELETE CASCADE,
    user_id BIGINT,
    name TEXT NOT NULL DEFAULT '',
    prefix TEXT NOT NULL DEFAULT '',
    hash TEXT NOT NULL,
    scopes TEXT NOT NULL DEFAULT '[]',
    rate_limit_tier TEXT NOT NULL DEFAULT '',
    expires_at {{timestamp}},
    grace_ends_at {{timestamp}},
    revoked_at {{timestamp}},
    last_used_at {{timestamp}},
    created_at {{timestamp}} NOT NULL,
    updated_at {{timestamp}} NOT NULL
);
CREATE UNIQUE INDEX revops_api_keys_hash_key ON revops_api_keys (hash);
CREATE INDEX revops_api_keys_workspace_id_idx ON revops_api_keys (workspace_id);
CREATE INDEX revops_api_keys_user_id_idx ON revops_api_keys (user_id);
