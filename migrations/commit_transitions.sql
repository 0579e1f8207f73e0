-- kickmon.commit_transitions(): the one statement that writes a transition
-- (src/db/commit_transitions.ts calls it). Part of migration 001_state and
-- re-applied by 004_livestream_guard, which added the livestream guard (so a
-- database migrated before it gets the current definition); CREATE OR REPLACE
-- keeps its signature and grants.
--
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
--
-- plan_cache_mode = force_generic_plan (migration 005_generic_plan): PL/pgSQL
-- would otherwise plan the statement below anew on every call (its custom plan
-- always looks cheaper than the generic one, so the plan cache never settles),
-- and planning it cost more than running it: with 10,000 streamers, one
-- transition per call, pgbench against PostgreSQL 15 on a 2-core machine took
-- 1.42 ms per call back to back and 2.0-2.4 ms at 100 calls/s, against
-- 0.74 ms and 1.2-1.6 ms with the generic plan (the same index scans; at 500
-- transitions per call both take 12-14 ms). Issue 15.
CREATE OR REPLACE FUNCTION kickmon.commit_transitions(
    p_ids INTEGER[], p_status TEXT[], p_observed TIMESTAMPTZ[], p_time TIMESTAMPTZ[],
    p_details JSONB[], p_livestream BIGINT[])
RETURNS TABLE (ord BIGINT, event_id BIGINT, previous_status TEXT)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $fn$
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
          -- Another instance's copy of an older frame, which it received later than
          -- this one committed a newer frame of the same streamer (issue 14): refused
          -- by the livestream id, which only grows (docs/kick-protocol.md §10.3). A
          -- transition for an older livestream is stale whatever its observation time
          -- says; so is `online` for the livestream that ended, when it was received
          -- within 10 s of that end (a copy; a later one is left to the time guard).
          AND (i.livestream_id IS NULL OR k.last_livestream_id IS NULL
               OR i.livestream_id > k.last_livestream_id
               OR (i.livestream_id = k.last_livestream_id
                   AND NOT (k.last_livestream_status = 'offline' AND i.status = 'online'
                            AND i.observed_at < k.status_observed_at + interval '10 seconds')))
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
