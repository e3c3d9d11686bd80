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

-- Messages a mailbox (IMAP, Maildir, SMTP/LMTP) could not record, by the
-- SHA-256 of their bytes: how often it tried and why it failed. A message
-- still failing after BOUNCED_MAILBOX_MAX_ATTEMPTS tries is quarantined:
-- its bytes are stored as a raw input that failed (raw_id), nothing is
-- read from it, and the mailbox moves on. A success deletes the row.
CREATE TABLE mail_attempts (
    id             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    mailbox        text        NOT NULL,
    sha256         bytea       NOT NULL,
    attempts       integer     NOT NULL DEFAULT 0,
    last_error     text        NOT NULL DEFAULT '',
    first_at       timestamptz NOT NULL,
    last_at        timestamptz NOT NULL,
    quarantined_at timestamptz,
    raw_id         bigint REFERENCES raw_messages (id) ON DELETE SET NULL,
    PRIMARY KEY (mailbox, sha256)
);
CREATE INDEX mail_attempts_quarantined ON mail_attempts (id) WHERE quarantined_at IS NOT NULL;
CREATE INDEX mail_attempts_raw ON mail_attempts (raw_id) WHERE raw_id IS NOT NULL;

-- Messages senders reported sending (POST /v1/sent): their Message-ID or
-- VERP token, and the recipient when given ('' for any). With
-- BOUNCED_MAIL_TRUST=sent only a bounce about one of them suppresses.
CREATE TABLE sent_messages (
    message_key text        NOT NULL,
    address_key text        NOT NULL DEFAULT '',
    tenant      text        NOT NULL DEFAULT '',
    sent_at     timestamptz NOT NULL,
    PRIMARY KEY (message_key, address_key, tenant)
);
CREATE INDEX sent_messages_sent_at ON sent_messages (sent_at);

-- A bounce that matched nothing we sent, under BOUNCED_MAIL_TRUST=sent: it
-- is recorded and counted, and suppresses nothing.
ALTER TABLE events ADD COLUMN unverified boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE events DROP COLUMN unverified;
DROP TABLE sent_messages;
DROP TABLE mail_attempts;
DROP TABLE webhook_nonces;
