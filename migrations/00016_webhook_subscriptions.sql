-- +goose Up

-- Subscriptions bounced confirmed for a provider (SNS topics): a
-- re-sent SubscriptionConfirmation of a topic already confirmed is not
-- confirmed again, on any replica or after a restart. claimed_at marks a
-- confirmation in progress (confirmed_at NULL); a claim left behind by a
-- process that died is taken over after a minute.
CREATE TABLE webhook_subscriptions (
    provider     text        NOT NULL,
    topic        text        NOT NULL,
    claimed_at   timestamptz NOT NULL,
    confirmed_at timestamptz,
    PRIMARY KEY (provider, topic)
);

-- +goose Down
DROP TABLE webhook_subscriptions;
