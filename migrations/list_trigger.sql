-- Optional: tell kickmon at once when the streamer list changes
-- (NOTIFY kickmon_streamers '{"op":"INSERT","id":7}'). Installed by
-- `kickmon db migrate --install-trigger`, or by `db migrate` when kickmon
-- created the tables itself. Without it kickmon polls the list
-- (MONITORING_LIST_POLL_INTERVAL). Updates notify only when a column kickmon
-- follows changes, so kickmon's own status writes do not echo back.
CREATE OR REPLACE FUNCTION kickmon.notify_streamers() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('kickmon_streamers', json_build_object(
        'op', TG_OP,
        'id', CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END
    )::text);
    RETURN NULL;
END;
$fn$;

DROP TRIGGER IF EXISTS kickmon_streamers_notify ON streamers;
CREATE TRIGGER kickmon_streamers_notify
    AFTER INSERT OR DELETE ON streamers
    FOR EACH ROW EXECUTE FUNCTION kickmon.notify_streamers();

DROP TRIGGER IF EXISTS kickmon_streamers_notify_update ON streamers;
CREATE TRIGGER kickmon_streamers_notify_update
    AFTER UPDATE ON streamers
    FOR EACH ROW
    WHEN (OLD.username IS DISTINCT FROM NEW.username
       OR OLD.kick_user_id IS DISTINCT FROM NEW.kick_user_id
       OR OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION kickmon.notify_streamers();
