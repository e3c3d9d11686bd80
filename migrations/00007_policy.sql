-- +goose Up

-- The tenant of a scope: 'tenant:acme' and 'tenant:acme/list:news' belong
-- to acme; every other scope (global, list:news, ...) to no tenant ('').
-- +goose StatementBegin
CREATE FUNCTION bounced_scope_tenant(scope text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN scope LIKE 'tenant:%' THEN split_part(substr(scope, 8), '/', 1) ELSE '' END;
-- +goose StatementEnd

ALTER TABLE events ADD COLUMN tenant text NOT NULL GENERATED ALWAYS AS (bounced_scope_tenant(scope)) STORED;

ALTER TABLE suppressions ADD COLUMN tenant text NOT NULL GENERATED ALWAYS AS (bounced_scope_tenant(scope)) STORED;
-- The event that last changed what a check answers (class, reason, expiry);
-- an upsert that sets it notifies the replicas' caches.
ALTER TABLE suppressions ADD COLUMN state_event_id bigint;
CREATE INDEX suppressions_tenant ON suppressions (tenant, id);
-- Email order and prefix search compare bytes, whatever the database collation.
CREATE INDEX suppressions_key_c ON suppressions ((address_key COLLATE "C"), id);
CREATE INDEX suppressions_created ON suppressions (created_at, id);

-- Recipient state is kept per tenant, so one tenant's counters never show
-- another's mail.
ALTER TABLE recipients ADD COLUMN tenant text NOT NULL DEFAULT '';
ALTER TABLE recipients DROP CONSTRAINT recipients_pkey;
ALTER TABLE recipients ADD PRIMARY KEY (tenant, address_key);

-- Failures counted towards the soft-bounce threshold: at most one per
-- address and UTC day and one per original message. A delivery or a reset
-- deletes the address's rows up to its time.
CREATE TABLE soft_failures (
    tenant      text        NOT NULL,
    address_key text        NOT NULL,
    day         date        NOT NULL,
    message_key text        NOT NULL, -- original Message-ID, '' when unknown
    event_id    bigint      NOT NULL,
    reason      text        NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX soft_failures_day ON soft_failures (tenant, address_key, day);
CREATE UNIQUE INDEX soft_failures_message ON soft_failures (tenant, address_key, message_key) WHERE message_key <> '';
CREATE INDEX soft_failures_time ON soft_failures (occurred_at);

-- The suppression policy: one document, edited over the API.
CREATE TABLE policy (
    id         integer     PRIMARY KEY CHECK (id = 1),
    doc        jsonb       NOT NULL,
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL DEFAULT ''
);

-- API keys: only the SHA-256 of the token is kept.
CREATE TABLE api_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text        NOT NULL,
    prefix       text        NOT NULL,  -- the token's first characters, to recognise it
    hash         bytea       NOT NULL UNIQUE,
    scopes       text[]      NOT NULL,
    tenant       text        NOT NULL DEFAULT '',
    rate_limit   double precision,      -- requests per second; NULL: the server default
    rate_burst   integer,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text        NOT NULL DEFAULT '',
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;

-- Sent volume reported by senders (POST /v1/sent), per hour.
CREATE TABLE sent_counts (
    tenant   text        NOT NULL,
    hour     timestamptz NOT NULL,
    domain   text        NOT NULL,  -- '' when not broken down by domain
    provider text        NOT NULL,  -- '' when not broken down by provider
    count    bigint      NOT NULL,
    PRIMARY KEY (tenant, hour, domain, provider)
);
-- Report ids already counted, so a retried report is not counted twice.
CREATE TABLE sent_reports (
    tenant      text        NOT NULL,
    report_id   text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, report_id)
);

-- +goose Down
DROP TABLE sent_reports;
DROP TABLE sent_counts;
DROP TABLE api_keys;
DROP TABLE policy;
DROP TABLE soft_failures;
ALTER TABLE recipients DROP CONSTRAINT recipients_pkey;
DELETE FROM recipients WHERE tenant <> '';
ALTER TABLE recipients ADD PRIMARY KEY (address_key);
ALTER TABLE recipients DROP COLUMN tenant;
DROP INDEX suppressions_created;
DROP INDEX suppressions_key_c;
DROP INDEX suppressions_tenant;
ALTER TABLE suppressions DROP COLUMN state_event_id;
ALTER TABLE suppressions DROP COLUMN tenant;
ALTER TABLE events DROP COLUMN tenant;
DROP FUNCTION bounced_scope_tenant(text);
