-- Upgrades a database created by kickmon 0.1.0 (its own tables, with
-- kickmon's columns inside `streamers` and `status_events`) to the layout of
-- the specification plus kickmon's schema. Runs after kickmon_001_state.sql,
-- in the same transaction; history is kept.

-- 1. kickmon's per-streamer facts move to kickmon.streamer_state.
INSERT INTO kickmon.streamer_state
    (streamer_id, source_username, source_kick_user_id, kick_channel_id,
     status_observed_at, resolve_error, last_livestream_id, last_livestream_status)
SELECT s.id, s.username, s.kick_user_id::text, s.kick_channel_id,
       s.status_observed_at, s.resolve_error,
       CASE WHEN e.event_type = s.status AND jsonb_typeof(e.details->'livestream_id') = 'number'
            THEN (e.details->>'livestream_id')::bigint END,
       CASE WHEN e.event_type = s.status AND jsonb_typeof(e.details->'livestream_id') = 'number'
            THEN s.status END
FROM streamers s
LEFT JOIN LATERAL (
    SELECT event_type, details FROM status_events
    WHERE streamer_id = s.id ORDER BY "timestamp" DESC, id DESC LIMIT 1
) e ON true
ON CONFLICT (streamer_id) DO NOTHING;

-- 2. History: previous_status and observed_at go into details.
UPDATE status_events
SET details = details || jsonb_build_object('previous_status', previous_status,
                                            'observed_at', observed_at)
WHERE NOT details ? 'observed_at';

ALTER TABLE status_events
    DROP CONSTRAINT IF EXISTS status_events_event_type_check,
    DROP CONSTRAINT IF EXISTS status_events_previous_status_check,
    DROP COLUMN previous_status,
    DROP COLUMN observed_at,
    ALTER COLUMN event_type TYPE VARCHAR(100),
    ALTER COLUMN details DROP NOT NULL,
    ALTER COLUMN details DROP DEFAULT;

-- 3. streamers: kickmon's columns and triggers go; kick_user_id becomes text.
DROP TRIGGER IF EXISTS streamers_notify_insert_delete ON streamers;
DROP TRIGGER IF EXISTS streamers_notify_update ON streamers;
DROP TRIGGER IF EXISTS streamers_touch_updated_at ON streamers;
DROP FUNCTION IF EXISTS kickmon_notify_streamers();
DROP FUNCTION IF EXISTS kickmon_touch_updated_at();

ALTER TABLE streamers
    DROP CONSTRAINT IF EXISTS streamers_identity_present,
    DROP CONSTRAINT IF EXISTS streamers_status_check,
    DROP COLUMN kick_channel_id,
    DROP COLUMN status_observed_at,
    DROP COLUMN resolve_error,
    ALTER COLUMN kick_user_id TYPE VARCHAR(255) USING kick_user_id::text,
    ALTER COLUMN status TYPE VARCHAR(50);

-- 0.1.0 allowed a row with only one of the two; the specification requires
-- both. Tighten only when every row already has them (kickmon copes with a
-- blank one either way: it resolves it and keeps the result in its schema).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM streamers WHERE username IS NULL) THEN
        ALTER TABLE streamers ALTER COLUMN username SET NOT NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM streamers WHERE kick_user_id IS NULL) THEN
        ALTER TABLE streamers ALTER COLUMN kick_user_id SET NOT NULL;
    END IF;
END;
$$;

-- 4. configurations: the specification's columns (0.1.0 had key/value only).
ALTER TABLE configurations
    ADD COLUMN id SERIAL,
    ADD COLUMN category VARCHAR(100) NOT NULL DEFAULT 'general',
    ADD COLUMN type VARCHAR(50) NOT NULL DEFAULT 'string',
    ADD COLUMN is_encrypted BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW();
ALTER TABLE configurations
    DROP CONSTRAINT configurations_pkey,
    ADD PRIMARY KEY (id),
    ADD CONSTRAINT configurations_key_key UNIQUE (key),
    ALTER COLUMN key TYPE VARCHAR(255),
    ALTER COLUMN category DROP DEFAULT,
    ALTER COLUMN type DROP DEFAULT;

-- 5. 0.1.0's bookkeeping table in the application schema.
DROP TABLE schema_migrations;
