-- +goose Up

-- A recipient's domain is the part of its address after the last "@"
-- (lower-cased, as parse.NormalizeAddress leaves it): read from
-- the address instead of stored beside it, 20 bytes less per recipient.
-- Nothing looks recipients up by domain.
ALTER TABLE recipients DROP COLUMN domain;

-- +goose Down
ALTER TABLE recipients ADD COLUMN domain text NOT NULL DEFAULT '';
UPDATE recipients SET domain = lower(split_part(address, '@', -1));
ALTER TABLE recipients ALTER COLUMN domain DROP DEFAULT;
