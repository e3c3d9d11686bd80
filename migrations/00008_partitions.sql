-- +goose Up

-- Provider event ids, for webhook idempotency. A unique index on a
-- partitioned table must hold the partition key, so it could no longer
-- refuse the same provider event recorded in another month; this table
-- is not partitioned and keeps every key for as long as events are kept.
CREATE TABLE event_keys (
    source            text        NOT NULL,
    provider          text        NOT NULL,
    provider_event_id text        NOT NULL,
    event_id          bigint      NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, provider, provider_event_id)
);
INSERT INTO event_keys (source, provider, provider_event_id, event_id, created_at)
    SELECT source, provider, provider_event_id, id, created_at FROM events WHERE provider_event_id IS NOT NULL;
-- Keys arrive in created_at order: a BRIN index serves the retention at
-- almost no cost per insert.
CREATE INDEX event_keys_created ON event_keys USING brin (created_at);

-- events becomes partitioned by month of created_at (the database clock,
-- so every insert lands in the current month). The existing table becomes
-- the partition of everything up to the end of this month (UTC), without
-- copying a row; bounced creates the monthly partitions after it and
-- drops old ones under BOUNCED_RETENTION_MONTHS.
ALTER TABLE events RENAME TO events_legacy;
ALTER TABLE events_legacy DROP CONSTRAINT events_pkey;
DROP INDEX events_provider_event;
ALTER INDEX events_address_time RENAME TO events_legacy_address_time;
ALTER INDEX events_time RENAME TO events_legacy_time;
ALTER INDEX events_raw RENAME TO events_legacy_raw;
ALTER TABLE events_legacy RENAME CONSTRAINT events_raw_id_fkey TO events_legacy_raw_id_fkey;
ALTER TABLE events_legacy ALTER COLUMN id DROP IDENTITY;

CREATE TABLE events (
    id                  bigint GENERATED ALWAYS AS IDENTITY,
    raw_id              bigint REFERENCES raw_messages (id),
    address             text        NOT NULL,
    address_key         text        NOT NULL,
    domain              text        NOT NULL,
    type                text        NOT NULL CONSTRAINT events_type_check CHECK (type IN ('bounce', 'delay', 'delivery',
                            'complaint', 'auto_reply', 'unsubscribe', 'suppression_added', 'suppression_removed', 'reset')),
    class               text        NOT NULL CONSTRAINT events_class_check CHECK (class IN ('hard', 'soft', 'sender',
                            'complaint', 'none')),
    reason              text        NOT NULL,
    status              text        NOT NULL DEFAULT '',
    reply_code          text        NOT NULL DEFAULT '',
    diagnostic          text        NOT NULL DEFAULT '',
    reporting_mta       text        NOT NULL DEFAULT '',
    remote_mta          text        NOT NULL DEFAULT '',
    original_message_id text        NOT NULL DEFAULT '',
    source              text        NOT NULL,
    provider            text        NOT NULL DEFAULT '',
    provider_event_id   text,                  -- unique per (source, provider) through event_keys
    scope               text        NOT NULL DEFAULT 'global',
    actor               text        NOT NULL DEFAULT '',
    note                text        NOT NULL DEFAULT '',
    occurred_at         timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    tenant              text        NOT NULL GENERATED ALWAYS AS (bounced_scope_tenant(scope)) STORED,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX events_address_time ON events (address_key, occurred_at DESC, id DESC);
CREATE INDEX events_time ON events (occurred_at, id);
CREATE INDEX events_raw ON events (raw_id);
SELECT setval(pg_get_serial_sequence('events', 'id'), coalesce((SELECT max(id) FROM events_legacy), 0) + 1, false);

-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('ALTER TABLE events ATTACH PARTITION events_legacy FOR VALUES FROM (MINVALUE) TO (%L)',
        (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC');
END
$$;
-- +goose StatementEnd

-- Rows no monthly partition takes (only if partitions could not be made
-- in time); making the missing partition moves them out.
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- +goose Down
CREATE TABLE events_flat (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED);
INSERT INTO events_flat (id, raw_id, address, address_key, domain, type, class, reason, status, reply_code, diagnostic,
        reporting_mta, remote_mta, original_message_id, source, provider, provider_event_id, scope, actor, note,
        occurred_at, created_at)
    SELECT id, raw_id, address, address_key, domain, type, class, reason, status, reply_code, diagnostic,
        reporting_mta, remote_mta, original_message_id, source, provider, provider_event_id, scope, actor, note,
        occurred_at, created_at FROM events;
DROP TABLE events;
ALTER TABLE events_flat RENAME TO events;
ALTER TABLE events ADD PRIMARY KEY (id);
ALTER TABLE events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('events', 'id'), coalesce((SELECT max(id) FROM events), 0) + 1, false);
ALTER TABLE events ADD CONSTRAINT events_raw_id_fkey FOREIGN KEY (raw_id) REFERENCES raw_messages (id);
CREATE UNIQUE INDEX events_provider_event ON events (source, provider, provider_event_id)
    WHERE provider_event_id IS NOT NULL;
CREATE INDEX events_address_time ON events (address_key, occurred_at DESC, id DESC);
CREATE INDEX events_time ON events (occurred_at, id);
CREATE INDEX events_raw ON events (raw_id);
DROP TABLE event_keys;
