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

-- kickmon.commit_transitions(): migrations/commit_transitions.sql, appended to this
-- migration by src/db/migrate.ts (and applied again by 004_livestream_guard).
