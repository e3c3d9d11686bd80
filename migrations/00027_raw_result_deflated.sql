-- +goose Up

-- Raw bodies are compressed with a preset dictionary (deflate_dict names
-- it; NULL: none, as every body compressed before), and the parse result
-- of a compressed body is compressed after it, in the same DEFLATE stream
-- (internal/store/body.go): result_deflated holds what the result added to
-- the stream, and result is then NULL. Rows stored before keep their body
-- and result as they were. PostgreSQL does not try to compress the bytes
-- again.
ALTER TABLE raw_messages ADD COLUMN deflate_dict smallint;
ALTER TABLE raw_messages ADD COLUMN result_deflated bytea;
ALTER TABLE raw_messages ALTER COLUMN result_deflated SET STORAGE EXTERNAL;

-- +goose Down
-- Bodies compressed with a dictionary and compressed results cannot go
-- back down as they are: refuse rather than keep bytes no older binary can
-- read.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM raw_messages WHERE deflate_dict IS NOT NULL OR result_deflated IS NOT NULL) THEN
        RAISE EXCEPTION 'raw_messages holds bodies compressed with a dictionary (deflate_dict) or compressed results (result_deflated); they cannot be migrated down';
    END IF;
END
$$;
-- +goose StatementEnd
ALTER TABLE raw_messages DROP COLUMN result_deflated;
ALTER TABLE raw_messages DROP COLUMN deflate_dict;
