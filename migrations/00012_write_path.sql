-- +goose Up

-- Half the database work per stored event: every index here is one that an
-- API query or the write path reads (docs/operations.md, "Capacity", lists
-- which), and the rows are written without speculative insertion (the write
-- path inserts where no row exists yet and retries on a unique violation).

-- BRIN indexes summarise 8 pages per range, each as soon as it fills
-- (autosummarize): a lookup reads few unsummarised pages, and a fresh table
-- pays little for the summary of its first range.

-- events: no primary key, no foreign key to raw_messages, and the raw input
-- found through a BRIN index (events are inserted in raw_id order, so a
-- block range covers few raw inputs). The provider's event id is unique in
-- each partition (a unique index on a partitioned table would have to hold
-- created_at); the write path looks a key up in this month's and the last
-- month's partitions before inserting it, so event_keys goes.
ALTER TABLE events DROP CONSTRAINT events_raw_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_pkey;
DROP INDEX events_raw;
CREATE INDEX events_raw ON events USING brin (raw_id) WITH (pages_per_range = 8, autosummarize = on);
-- +goose StatementBegin
DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'events'::regclass LOOP
        EXECUTE format('CREATE UNIQUE INDEX %I ON %s (source, provider, provider_event_id) WHERE provider_event_id IS NOT NULL',
            p::text || '_provider_event', p);
    END LOOP;
END
$$;
-- +goose StatementEnd
DROP TABLE event_keys;
-- The event id only breaks ties between events of the same time: a listing
-- sorts those few, and the entries are a quarter smaller without it.
DROP INDEX events_address_time;
CREATE INDEX events_address_time ON events (address_key, occurred_at DESC);
DROP INDEX events_time;
CREATE INDEX events_time ON events (occurred_at);

-- raw_messages: found by id through a BRIN index (ids grow with the table),
-- by its bytes through the unique sha256 index; the retention reads
-- received_at in block ranges too. A body of 1 KiB or more is kept
-- compressed (raw DEFLATE, RFC 1951) when that saves a tenth or more:
-- deflated_size is then the length of the bytes as received (NULL: body is
-- as received), and PostgreSQL does not try to compress it again.
ALTER TABLE raw_messages ADD COLUMN deflated_size integer;
ALTER TABLE raw_messages ALTER COLUMN body SET STORAGE EXTERNAL;
-- No foreign key to raw ids either: the retention clears the raw_id of a
-- quarantined message whose bytes it deletes, as ON DELETE SET NULL did.
ALTER TABLE mail_attempts DROP CONSTRAINT mail_attempts_raw_id_fkey;
ALTER TABLE raw_messages DROP CONSTRAINT raw_messages_pkey;
CREATE INDEX raw_messages_id ON raw_messages USING brin (id) WITH (pages_per_range = 8, autosummarize = on);
DROP INDEX raw_messages_received_at;
CREATE INDEX raw_messages_received_at ON raw_messages USING brin (received_at) WITH (pages_per_range = 8, autosummarize = on);

-- recipients: nothing reads them by domain. Counters are updated in place:
-- room on each page keeps those updates HOT (no index entry).
DROP INDEX recipients_domain;
ALTER TABLE recipients SET (fillfactor = 90);

-- suppressions: one unique index, byte-ordered, serves the conflict, every
-- lookup by address and the email order and prefix search; the tenant index
-- only holds tenants' entries; created_at is read in block ranges.
ALTER TABLE suppressions DROP CONSTRAINT suppressions_scope_address_key_key;
DROP INDEX suppressions_address;
DROP INDEX suppressions_key_c;
CREATE UNIQUE INDEX suppressions_key ON suppressions (address_key COLLATE "C", scope);
DROP INDEX suppressions_tenant;
CREATE INDEX suppressions_tenant ON suppressions (tenant, id) WHERE tenant <> '';
DROP INDEX suppressions_created;
CREATE INDEX suppressions_created ON suppressions USING brin (created_at) WITH (pages_per_range = 8, autosummarize = on);
ALTER TABLE suppressions SET (fillfactor = 90);

-- soft_failures: the cleanup reads old rows in block ranges.
DROP INDEX soft_failures_time;
CREATE INDEX soft_failures_time ON soft_failures USING brin (occurred_at) WITH (pages_per_range = 8, autosummarize = on);

-- +goose Down
DROP INDEX soft_failures_time;
CREATE INDEX soft_failures_time ON soft_failures (occurred_at);

ALTER TABLE suppressions RESET (fillfactor);
DROP INDEX suppressions_created;
CREATE INDEX suppressions_created ON suppressions (created_at, id);
DROP INDEX suppressions_tenant;
CREATE INDEX suppressions_tenant ON suppressions (tenant, id);
DROP INDEX suppressions_key;
CREATE INDEX suppressions_key_c ON suppressions ((address_key COLLATE "C"), id);
CREATE INDEX suppressions_address ON suppressions (address_key);
ALTER TABLE suppressions ADD CONSTRAINT suppressions_scope_address_key_key UNIQUE (scope, address_key);

ALTER TABLE recipients RESET (fillfactor);
CREATE INDEX recipients_domain ON recipients (domain);

DROP INDEX raw_messages_received_at;
CREATE INDEX raw_messages_received_at ON raw_messages (received_at);
DROP INDEX raw_messages_id;
ALTER TABLE raw_messages ADD PRIMARY KEY (id);
-- Compressed bodies cannot go back down as they are: refuse rather than
-- keep bytes no older binary can read.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM raw_messages WHERE deflated_size IS NOT NULL) THEN
        RAISE EXCEPTION 'raw_messages holds compressed bodies (deflated_size); they cannot be migrated down';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE raw_messages ALTER COLUMN body SET STORAGE EXTENDED;
ALTER TABLE raw_messages DROP COLUMN deflated_size;
UPDATE mail_attempts a SET raw_id = NULL WHERE NOT EXISTS (SELECT 1 FROM raw_messages r WHERE r.id = a.raw_id);
ALTER TABLE mail_attempts ADD CONSTRAINT mail_attempts_raw_id_fkey FOREIGN KEY (raw_id) REFERENCES raw_messages (id) ON DELETE SET NULL;

CREATE TABLE event_keys (
    source            text        NOT NULL,
    provider          text        NOT NULL,
    provider_event_id text        NOT NULL,
    event_id          bigint      NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, provider, provider_event_id)
);
INSERT INTO event_keys (source, provider, provider_event_id, event_id, created_at)
    SELECT DISTINCT ON (source, provider, provider_event_id) source, provider, provider_event_id, id, created_at
    FROM events WHERE provider_event_id IS NOT NULL ORDER BY source, provider, provider_event_id, created_at;
CREATE INDEX event_keys_created ON event_keys USING brin (created_at);
-- +goose StatementBegin
DO $$
DECLARE
    p regclass;
BEGIN
    FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'events'::regclass LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I', p::text || '_provider_event');
    END LOOP;
END
$$;
-- +goose StatementEnd
DROP INDEX events_time;
CREATE INDEX events_time ON events (occurred_at, id);
DROP INDEX events_address_time;
CREATE INDEX events_address_time ON events (address_key, occurred_at DESC, id DESC);
DROP INDEX events_raw;
CREATE INDEX events_raw ON events (raw_id);
ALTER TABLE events ADD PRIMARY KEY (id, created_at);
ALTER TABLE events ADD CONSTRAINT events_raw_id_fkey FOREIGN KEY (raw_id) REFERENCES raw_messages (id);
