-- kickmon schema v1: the streamer list (managed by another system), the status
-- history kickmon writes, and a small key/value table for operators.
-- Applied by `kickmon db migrate` (and at `kickmon start`) under an advisory lock.

CREATE TABLE IF NOT EXISTS streamers (
    id                  SERIAL PRIMARY KEY,
    -- Kick channel slug (kick.com/<username>). May be NULL when only kick_user_id is known.
    username            VARCHAR(255),
    -- Kick's broadcaster user id (official API and webhooks).
    kick_user_id        BIGINT,
    -- Kick's channel id (Pusher channel `channel.{id}`); NOT the user id (kick-protocol.md §2).
    kick_channel_id     BIGINT,
    display_name        VARCHAR(255),
    status              VARCHAR(20) NOT NULL DEFAULT 'unknown'
                        CHECK (status IN ('online', 'offline', 'unknown')),
    last_seen_online    TIMESTAMPTZ,
    last_status_update  TIMESTAMPTZ,
    -- When kickmon observed the current status (guards against older observations).
    status_observed_at  TIMESTAMPTZ,
    is_active           BOOLEAN NOT NULL DEFAULT TRUE,
    -- Why identity resolution failed, if it did (NULL when resolved or not tried).
    resolve_error       TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT streamers_identity_present CHECK (username IS NOT NULL OR kick_user_id IS NOT NULL)
);

CREATE UNIQUE INDEX IF NOT EXISTS streamers_username_key ON streamers (lower(username));
CREATE UNIQUE INDEX IF NOT EXISTS streamers_kick_user_id_key ON streamers (kick_user_id);
CREATE UNIQUE INDEX IF NOT EXISTS streamers_kick_channel_id_key ON streamers (kick_channel_id);
CREATE INDEX IF NOT EXISTS streamers_status_idx ON streamers (status) WHERE is_active;

CREATE TABLE IF NOT EXISTS status_events (
    id              BIGSERIAL PRIMARY KEY,
    streamer_id     INTEGER NOT NULL REFERENCES streamers (id) ON DELETE CASCADE,
    -- The new status.
    event_type      VARCHAR(20) NOT NULL CHECK (event_type IN ('online', 'offline', 'unknown')),
    previous_status VARCHAR(20) CHECK (previous_status IN ('online', 'offline', 'unknown')),
    -- When Kick says it happened, else when kickmon received it.
    "timestamp"     TIMESTAMPTZ NOT NULL,
    -- When kickmon observed it (for reconciliation: when the API request was sent).
    observed_at     TIMESTAMPTZ NOT NULL,
    -- {"source": "pusher"|"reconcile"|"webhook", "previous_status", "event", "livestream_id", ...}
    details         JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS status_events_streamer_time_idx
    ON status_events (streamer_id, "timestamp" DESC);
CREATE INDEX IF NOT EXISTS status_events_created_idx ON status_events (created_at);

CREATE TABLE IF NOT EXISTS configurations (
    key         VARCHAR(255) PRIMARY KEY,
    value       TEXT NOT NULL,
    description TEXT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Keep updated_at honest for writes from the other system too.
CREATE OR REPLACE FUNCTION kickmon_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS streamers_touch_updated_at ON streamers;
CREATE TRIGGER streamers_touch_updated_at
    BEFORE UPDATE ON streamers
    FOR EACH ROW EXECUTE FUNCTION kickmon_touch_updated_at();

-- Tell the monitor when the list changes: NOTIFY kickmon_streamers '{"op":"INSERT","id":7}'.
-- Updates notify only when a column the monitor follows changes, so kickmon's
-- own status writes do not echo back.
CREATE OR REPLACE FUNCTION kickmon_notify_streamers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kickmon_streamers', json_build_object(
        'op', TG_OP,
        'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END
    )::text);
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS streamers_notify_insert_delete ON streamers;
CREATE TRIGGER streamers_notify_insert_delete
    AFTER INSERT OR DELETE ON streamers
    FOR EACH ROW EXECUTE FUNCTION kickmon_notify_streamers();

DROP TRIGGER IF EXISTS streamers_notify_update ON streamers;
CREATE TRIGGER streamers_notify_update
    AFTER UPDATE ON streamers
    FOR EACH ROW
    WHEN (OLD.username IS DISTINCT FROM NEW.username
       OR OLD.kick_user_id IS DISTINCT FROM NEW.kick_user_id
       OR OLD.kick_channel_id IS DISTINCT FROM NEW.kick_channel_id
       OR OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION kickmon_notify_streamers();
