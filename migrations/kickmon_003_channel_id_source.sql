-- Who set `kick_channel_id`: 'operator' when given with
-- `kickmon streamers set-channel-id` (an operator-provided value, kept as it
-- is: kickmon never replaces it with one it learned); NULL when kickmon
-- learned it (Pusher payloads, /livestreams, the unofficial lookup) or
-- `kickmon streamers add` wrote what Kick reported.
ALTER TABLE kickmon.streamer_state ADD COLUMN kick_channel_id_source TEXT
    CHECK (kick_channel_id_source IN ('operator'));
