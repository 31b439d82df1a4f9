-- 0009_fosite: the token signing key instances share when the host
-- configures none. One row per name ('default'); the primary key decides
-- which of several instances starting at once stores its key: the others
-- load it. private_key is the base64 Ed25519 seed: a database reader can
-- sign access tokens, so hosts that keep the database less protected than
-- their secrets should configure Config.Tokens.SigningKeys instead.
CREATE TABLE revops_signing_keys (
    name TEXT PRIMARY KEY,
    private_key TEXT NOT NULL,
    created_at {{timestamp}} NOT NULL
);
