-- +goose Up

-- Sender-side failures (class sender: authentication, relay, protocol,
-- SPF/DKIM/DMARC) are a small share of all events. GET /v1/sender-health
-- and GET /v1/events?class=sender read them by time through this index
-- instead of every event of the window.
CREATE INDEX events_sender_time ON events (occurred_at) WHERE class = 'sender';

-- +goose Down
DROP INDEX events_sender_time;
