-- +goose Up

-- 56 bytes less per event (issue 15): an event's address is stored only
-- where it differs from its key (a local part with capitals; NULL
-- otherwise: readers take coalesce(address, address_key)), and its
-- domain is read from the key instead of stored beside it (the domain of
-- a normalised address is lower-case already, so the key's is the same;
-- parse.NormalizeAddress). Nothing looks events up by either column.
ALTER TABLE events ALTER COLUMN address DROP NOT NULL;
ALTER TABLE events DROP COLUMN domain;

-- +goose Down
ALTER TABLE events ADD COLUMN domain text NOT NULL DEFAULT '';
UPDATE events SET domain = split_part(address_key, '@', -1), address = coalesce(address, address_key);
ALTER TABLE events ALTER COLUMN domain DROP DEFAULT;
ALTER TABLE events ALTER COLUMN address SET NOT NULL;
