-- +goose Up

-- Every input exactly as received, stored before anything is acknowledged.
CREATE TABLE raw_messages (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256        bytea       NOT NULL UNIQUE,
    source        text        NOT NULL,          -- http, webhook, imap, maildir, smtp
    provider      text        NOT NULL DEFAULT '', -- sendgrid, ses, mailbox name, ...
    content_type  text        NOT NULL,
    body          bytea       NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    parse_status  text        NOT NULL CHECK (parse_status IN ('pending', 'parsed', 'failed')),
    parse_error   text        NOT NULL DEFAULT '',
    kind          text        NOT NULL DEFAULT '',
    result        jsonb
);
CREATE INDEX raw_messages_received_at ON raw_messages (received_at);
CREATE INDEX raw_messages_pending ON raw_messages (id) WHERE parse_status = 'pending';

-- Append-only history of everything that happened to an address.
CREATE TABLE events (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    raw_id              bigint REFERENCES raw_messages (id),
    address             text        NOT NULL,
    address_key         text        NOT NULL,  -- lower(address): comparisons are case-insensitive
    domain              text        NOT NULL,
    type                text        NOT NULL CHECK (type IN ('bounce', 'delay', 'delivery', 'complaint',
                            'auto_reply', 'unsubscribe', 'suppression_added', 'suppression_removed', 'reset')),
    class               text        NOT NULL CHECK (class IN ('hard', 'soft', 'sender', 'complaint', 'none')),
    reason              text        NOT NULL,
    status              text        NOT NULL DEFAULT '',
    reply_code          text        NOT NULL DEFAULT '',
    diagnostic          text        NOT NULL DEFAULT '',
    reporting_mta       text        NOT NULL DEFAULT '',
    remote_mta          text        NOT NULL DEFAULT '',
    original_message_id text        NOT NULL DEFAULT '',
    source              text        NOT NULL,
    provider            text        NOT NULL DEFAULT '',
    provider_event_id   text,                  -- the provider's own id, for idempotency
    scope               text        NOT NULL DEFAULT 'global',
    actor               text        NOT NULL DEFAULT '', -- API key name or "system"
    note                text        NOT NULL DEFAULT '',
    occurred_at         timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX events_provider_event ON events (source, provider, provider_event_id)
    WHERE provider_event_id IS NOT NULL;
CREATE INDEX events_address_time ON events (address_key, occurred_at DESC, id DESC);
CREATE INDEX events_time ON events (occurred_at, id);
CREATE INDEX events_raw ON events (raw_id);

-- Current state per address, derived from events in the same transaction.
CREATE TABLE recipients (
    address_key        text PRIMARY KEY,
    address            text        NOT NULL,
    domain             text        NOT NULL,
    soft_count         integer     NOT NULL DEFAULT 0, -- soft failures since the last delivery or reset
    soft_first_at      timestamptz,                     -- first soft failure counted in soft_count
    hard_count         integer     NOT NULL DEFAULT 0,
    complaint_count    integer     NOT NULL DEFAULT 0,
    sender_error_count integer     NOT NULL DEFAULT 0,
    last_event_id      bigint,
    last_event_type    text        NOT NULL DEFAULT '',
    last_event_at      timestamptz,
    last_bounce_at     timestamptz,
    last_delivery_at   timestamptz,
    reset_at           timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recipients_domain ON recipients (domain);

-- Addresses that must not be mailed, per scope ('global' or a named scope).
CREATE TABLE suppressions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope         text        NOT NULL DEFAULT 'global',
    address       text        NOT NULL,
    address_key   text        NOT NULL,
    domain        text        NOT NULL,
    reason        text        NOT NULL,
    class         text        NOT NULL,
    status        text        NOT NULL DEFAULT '',
    reply_code    text        NOT NULL DEFAULT '',
    diagnostic    text        NOT NULL DEFAULT '',
    source        text        NOT NULL,
    provider      text        NOT NULL DEFAULT '',
    first_event_id bigint,
    last_event_id  bigint,
    event_count   integer     NOT NULL DEFAULT 1,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    expires_at    timestamptz,
    created_by    text        NOT NULL DEFAULT '',
    note          text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (scope, address_key)
);
CREATE INDEX suppressions_address ON suppressions (address_key);
CREATE INDEX suppressions_domain ON suppressions (domain);
CREATE INDEX suppressions_expires ON suppressions (expires_at) WHERE expires_at IS NOT NULL;

-- +goose Down
DROP TABLE suppressions;
DROP TABLE recipients;
DROP TABLE events;
DROP TABLE raw_messages;
