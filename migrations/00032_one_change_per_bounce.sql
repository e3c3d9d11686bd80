-- +goose Up

-- Two WAL records less per hard-bounce DSN (issue 15).
--
-- A bounce or complaint that puts its address on a list is one row of
-- the feed of changes, not two: adds_suppression marks the row, which
-- then also stands for the suppression_added change it caused, with id
-- + 1 and the row's reason, class and expiry (the bounce itself reads
-- those from its event, as every bounce change does since 00030). Change
-- ids count up by 2 from here, so id + 1 is never another row's id; rows
-- written before keep theirs, all smaller. Readers expand a row into its
-- changes (internal/store/change.go, changeItemsSQL); deliveries name the
-- change's id, as before.
ALTER TABLE changes ADD COLUMN adds_suppression boolean NOT NULL DEFAULT false;
ALTER TABLE changes ALTER COLUMN id SET INCREMENT BY 2;

-- The list's domain filter and the bulk delete by domain read the table
-- instead of an index of their own, which every suppression paid for
-- with a WAL record and an index entry: a domain with many entries is
-- found along the listing's own index in a millisecond, a rare one on a
-- list of a million entries in about a third of a second
-- (docs/operations.md).
DROP INDEX suppressions_domain;

-- +goose Down
CREATE INDEX suppressions_domain ON suppressions (domain);
ALTER TABLE changes ALTER COLUMN id SET INCREMENT BY 1;
INSERT INTO changes (id, xid, type, scope, address, reason, class, status, reply_code, source, provider,
    event_id, actor, note, expires_at, occurred_at, created_at)
    OVERRIDING SYSTEM VALUE
    SELECT id + 1, xid, 'suppression_added', scope, address, reason, class, status, reply_code, source, provider,
        event_id, actor, note, expires_at, occurred_at, created_at
    FROM changes WHERE adds_suppression;
UPDATE changes SET reason = '', class = '', expires_at = NULL WHERE adds_suppression;
ALTER TABLE changes DROP COLUMN adds_suppression;
