-- +goose Up

-- The list a message reported sent (POST /v1/sent) belongs to: a scope of
-- the reporting key's tenant, or '' for the tenant's own list (global
-- without a tenant). A bounce or complaint about the message is recorded
-- there (see "Attribution" in docs/operations.md).
ALTER TABLE sent_messages ADD COLUMN scope text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE sent_messages DROP COLUMN scope;
