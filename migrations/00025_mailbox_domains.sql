-- +goose Up

-- The mailbox provider (Gmail, Microsoft, Yahoo...) of each recipient
-- domain that an MX lookup placed (internal/mxresolve): one row per
-- domain, written when a lookup's answer is new, changed or a week old,
-- never once per event, so recording an event writes nothing more. Stats
-- by mailbox provider join events to it through their domain; the
-- providers' own domains (gmail.com) are placed by the built-in table and
-- need no row.
CREATE TABLE mailbox_domains (
    domain           text        PRIMARY KEY,
    mailbox_provider text        NOT NULL,
    resolved_at      timestamptz NOT NULL
);

-- +goose Down
DROP TABLE mailbox_domains;
