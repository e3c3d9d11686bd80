-- +goose Up

-- The parse result of a compressed raw body is compressed after it, in the
-- same DEFLATE stream (internal/store/body.go): result_deflated holds what
-- the result added to the stream, and result is then NULL. Rows stored
-- before keep their result as it was. PostgreSQL does not try to compress
-- the bytes again.
ALTER TABLE raw_messages ADD COLUMN result_deflated bytea;
ALTER TABLE raw_messages ALTER COLUMN result_deflated SET STORAGE EXTERNAL;

-- +goose Down
-- Compressed results cannot go back down as they are: refuse rather than
-- lose them.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM raw_messages WHERE result_deflated IS NOT NULL) THEN
        RAISE EXCEPTION 'raw_messages holds compressed results (result_deflated); they cannot be migrated down';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE raw_messages DROP COLUMN result_deflated;
