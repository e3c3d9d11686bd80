-- +goose Up

-- Where an IMAP ingester got to in a mailbox. identity (host, port, user,
-- folder) guards against a renamed config reusing another folder's UIDs:
-- a mismatch, like a UIDVALIDITY change, starts the folder over (raw
-- sha256 dedupe makes that safe).
CREATE TABLE mailbox_checkpoints (
    mailbox      text PRIMARY KEY,
    identity     text        NOT NULL,
    uid_validity bigint      NOT NULL,
    last_uid     bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One replica reads a mailbox at a time. The holder renews its lease well
-- before expires_at; when it dies, another takes the row over after expiry.
-- Times come from the database clock so replicas' clocks never matter.
CREATE TABLE mailbox_leases (
    mailbox     text PRIMARY KEY,
    holder      text        NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE mailbox_leases;
DROP TABLE mailbox_checkpoints;
