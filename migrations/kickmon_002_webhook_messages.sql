-- Kick-Event-Message-Id of every webhook delivery kickmon accepted, so that a
-- retried or replayed delivery is written once, across restarts and across
-- instances behind one load balancer. Rows older than two days are purged
-- (Kick gives up retrying a delivery within a day).
CREATE TABLE kickmon.webhook_messages (
    message_id  TEXT PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_messages_received_idx ON kickmon.webhook_messages (received_at);
