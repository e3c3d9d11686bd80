-- +goose Up

-- Changes of the suppression lists (an address added to a list, taken off
-- it, or expired) and the bounces and complaints recorded, each written in
-- the same transaction as the change itself: the transactional outbox
-- that outbound webhooks and the stream (GET /v1/stream) deliver. One row
-- per change of an entry, and one per bounce or complaint event (other
-- events, such as deliveries, are not in the feed).
--
-- Order: ids come from a sequence, and concurrent transactions commit in
-- any order, so a reader that had read up to id N could later see a row
-- below N commit. Each row keeps the id of the transaction that wrote it
-- (xid); readers take rows in (xid, id) order and only those whose
-- transaction is older than every transaction still running (the
-- snapshot's xmin): no row can ever appear before what such a reader has
-- read. Both are read through BRIN indexes: rows arrive in xid and id
-- order, so a block range covers few of either, and an insert costs the
-- indexes almost nothing.
CREATE TABLE changes (
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    xid         bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    type        text        NOT NULL CHECK (type IN ('suppression_added', 'suppression_removed', 'bounce', 'complaint')),
    scope       text        NOT NULL,
    tenant      text        NOT NULL GENERATED ALWAYS AS (bounced_scope_tenant(scope)) STORED,
    address     text        NOT NULL,
    reason      text        NOT NULL,
    class       text        NOT NULL,
    status      text        NOT NULL DEFAULT '',
    reply_code  text        NOT NULL DEFAULT '',
    source      text        NOT NULL,
    provider    text        NOT NULL DEFAULT '',
    event_id    bigint,
    actor       text        NOT NULL DEFAULT '',
    note        text        NOT NULL DEFAULT '',
    expires_at  timestamptz,
    occurred_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_position ON changes USING brin (xid) WITH (pages_per_range = 8, autosummarize = on);
CREATE INDEX changes_id ON changes USING brin (id) WITH (pages_per_range = 8, autosummarize = on);
CREATE INDEX changes_created ON changes USING brin (created_at) WITH (pages_per_range = 8, autosummarize = on);

-- The newest change the retention deleted, so a stream resumed from a
-- deleted change is told that it missed some (410) instead of an unknown id.
CREATE TABLE changes_pruned (
    id        integer PRIMARY KEY CHECK (id = 1),
    change_id bigint  NOT NULL
);

-- Outbound webhook subscriptions (POST /v1/subscriptions): where to send
-- which changes. A subscription of a tenant's key gets that tenant's
-- changes only; scopes, when not empty, are the exact scopes it wants.
-- The secret signs deliveries (Standard Webhooks, whsec_...); the API
-- shows it once.
CREATE TABLE subscriptions (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             text        NOT NULL,
    secret          text        NOT NULL,
    event_types     text[]      NOT NULL,
    scopes          text[]      NOT NULL DEFAULT '{}',
    tenant          text        NOT NULL DEFAULT '',
    description     text        NOT NULL DEFAULT '',
    enabled         boolean     NOT NULL DEFAULT true,
    disabled_reason text        NOT NULL DEFAULT '',
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text        NOT NULL DEFAULT '',
    last_success_at timestamptz,
    created_by      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One delivery per change and subscription that wants it, written with
-- the change. A deliverer claims due pending rows (FOR UPDATE SKIP LOCKED)
-- by moving next_attempt_at past the attempt's deadline, so a deliverer
-- that dies mid-attempt leaves the row to be claimed again: at least once.
CREATE TABLE deliveries (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id bigint      NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    change_id       bigint      NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text        NOT NULL DEFAULT '',
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_subscription ON deliveries (subscription_id, id);
-- Dead deliveries are few: counted per subscription and in metrics.
CREATE INDEX deliveries_dead ON deliveries (subscription_id) WHERE state = 'dead';
CREATE INDEX deliveries_created ON deliveries USING brin (created_at) WITH (pages_per_range = 8, autosummarize = on);

-- Readers of changes and deliverers are woken after commit; one
-- notification per statement that wrote rows.
-- +goose StatementBegin
CREATE FUNCTION bounced_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM written) THEN
        PERFORM pg_notify(TG_ARGV[0], '');
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER changes_notify AFTER INSERT ON changes REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION bounced_notify_changes('bounced_changes');
CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION bounced_notify_changes('bounced_deliveries');

-- +goose Down
DROP TABLE deliveries;
DROP TABLE subscriptions;
DROP TABLE changes_pruned;
DROP TABLE changes;
DROP FUNCTION bounced_notify_changes();
