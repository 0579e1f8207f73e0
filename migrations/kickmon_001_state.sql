-- kickmon's own bookkeeping, in its own schema `kickmon`, keyed by streamers.id.
-- Nothing here changes the shape of the other system's tables.

-- What kickmon knows about each streamer beyond the columns the other system
-- defines. No foreign key: that would need REFERENCES on `streamers` and would
-- put a trigger on the other system's table. Rows of deleted streamers are
-- removed by the monitor's list sync.
CREATE TABLE kickmon.streamer_state (
    streamer_id          INTEGER PRIMARY KEY,
    -- `streamers.username` / `streamers.kick_user_id` (as text) when the ids
    -- below were learned. When the other system changes either, the learned
    -- ids are stale: kickmon ignores them and resolves the row again.
    source_username      TEXT,
    source_kick_user_id  TEXT,
    -- Resolved by kickmon when the row leaves them blank.
    username             TEXT,
    kick_user_id         BIGINT,
    -- Kick's channel id (Pusher channel `channel.{id}`); NOT the user id
    -- (docs/kick-protocol.md §2). Learned from payloads, /livestreams, the
    -- unofficial lookup, or given by the operator (`kickmon streamers add`).
    kick_channel_id      BIGINT UNIQUE,
    -- When kickmon observed the current status (newer-observation guard).
    status_observed_at   TIMESTAMPTZ,
    -- Why identity resolution failed, if it did (NULL when resolved or not tried).
    resolve_error        TEXT,
    -- The Kick livestream id named by the last transition kickmon wrote, and
    -- that transition's status (lets a restarted monitor infer a missed
    -- stream boundary; NULL when the last transition named none).
    last_livestream_id     BIGINT,
    last_livestream_status TEXT,
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Commits status transitions in one call (one round trip): the guarded UPDATE
-- of `streamers`, one `status_events` row per transition, kickmon's state,
-- and NOTIFY kickmon_status. Arrays are parallel, one element per streamer
-- (each streamer at most once per call). Returns the committed transitions
-- by their 1-based position in the input.
--
-- The rows are locked first, in id order, so that instances writing the same
-- streamers serialise without deadlock; the statement after the lock runs on
-- a fresh snapshot (READ COMMITTED), so its guards see every commit made
-- before the lock was granted.
CREATE FUNCTION kickmon.commit_transitions(
    p_ids INTEGER[], p_status TEXT[], p_observed TIMESTAMPTZ[], p_time TIMESTAMPTZ[],
    p_details JSONB[], p_livestream BIGINT[])
RETURNS TABLE (ord BIGINT, event_id BIGINT, previous_status TEXT)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM streamers s WHERE s.id = ANY (p_ids) ORDER BY s.id FOR UPDATE;
    RETURN QUERY
    WITH input AS (
        SELECT * FROM unnest(p_ids, p_status, p_observed, p_time, p_details, p_livestream)
            WITH ORDINALITY AS t(streamer_id, status, observed_at, event_time, details,
                                 livestream_id, ord)
    ), upd AS (
        UPDATE streamers s SET
            status = i.status,
            last_status_update = i.event_time,
            last_seen_online = CASE WHEN i.status = 'online' THEN i.event_time
                                    ELSE s.last_seen_online END,
            updated_at = now()
        FROM input i
            JOIN streamers old ON old.id = i.streamer_id
            LEFT JOIN kickmon.streamer_state k ON k.streamer_id = i.streamer_id
        WHERE s.id = i.streamer_id
          AND s.is_active
          AND s.status IS DISTINCT FROM i.status
          AND (k.status_observed_at IS NULL OR k.status_observed_at <= i.observed_at
               -- a stored time in the future (a clock that ran ahead) is not trusted
               OR k.status_observed_at > now() + interval '5 minutes')
        RETURNING s.id, s.username::text AS username, s.kick_user_id::text AS kick_user_id,
                  s.status::text AS status, old.status::text AS previous_status,
                  i.event_time, i.observed_at, i.details, i.livestream_id, i.ord
    ), ins AS (
        INSERT INTO status_events (streamer_id, event_type, "timestamp", details)
        SELECT u.id, u.status, u.event_time,
               u.details || jsonb_build_object('previous_status', u.previous_status,
                                               'observed_at', u.observed_at)
        FROM upd u ORDER BY u.ord
        RETURNING id, streamer_id
    ), st AS (
        INSERT INTO kickmon.streamer_state AS k
            (streamer_id, source_username, source_kick_user_id, status_observed_at,
             last_livestream_id, last_livestream_status)
        SELECT u.id, u.username, u.kick_user_id, u.observed_at, u.livestream_id,
               CASE WHEN u.livestream_id IS NOT NULL THEN u.status END
        FROM upd u
        ON CONFLICT (streamer_id) DO UPDATE SET
            status_observed_at = EXCLUDED.status_observed_at,
            last_livestream_id = EXCLUDED.last_livestream_id,
            last_livestream_status = EXCLUDED.last_livestream_status,
            updated_at = now()
    )
    SELECT u.ord, ins.id::bigint, u.previous_status
    FROM upd u
        JOIN ins ON ins.streamer_id = u.id
        CROSS JOIN LATERAL (SELECT pg_notify('kickmon_status', json_build_object(
            'streamer_id', u.id, 'username', u.username, 'status', u.status,
            'previous_status', u.previous_status, 'source', u.details->>'source',
            'timestamp', u.event_time, 'event_id', ins.id)::text)) n
    ORDER BY u.ord;
END;
$fn$;
