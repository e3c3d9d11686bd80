-- +goose Up

-- Nonces of webhook providers whose signature does not cover the body
-- (Mailgun signs a timestamp and a token), each with the SHA-256 of the
-- body it first came with, for as long as its timestamp is acceptable.
-- Kept here, not in one process, so a captured signature stays refused on
-- another payload after a restart and on every replica.
CREATE TABLE webhook_nonces (
    provider    text        NOT NULL,
    nonce       text        NOT NULL,
    body_sha256 bytea       NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (provider, nonce)
);
CREATE INDEX webhook_nonces_expires ON webhook_nonces (expires_at);

-- +goose Down
DROP TABLE webhook_nonces;
