-- +goose Up
-- What decided each event's reason and class (parse.Evidence as JSON:
-- from, text, rule, note), for events read from a report; NULL for
-- events of actions on the list and for events recorded before.
ALTER TABLE events ADD COLUMN evidence jsonb;

-- +goose Down
ALTER TABLE events DROP COLUMN evidence;
