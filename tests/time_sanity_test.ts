/**
 * Issue 11, finding 7: timestamps are not trusted blindly. A frame's
 * `created_at` outside a plausible window is replaced by the receipt time
 * (and kept in `details`); an observation time in the future stored by a
 * clock that ran ahead neither freezes the streamer nor survives a restart.
 * Real `kickmon start`, real frames, real PostgreSQL.
 */
import assert from "node:assert/strict";
import { waitFor } from "./helpers/database.ts";
import { startRig } from "./helpers/harness.ts";

Deno.test("time sanity: implausible created_at and a future observed-at do not corrupt or freeze", async () => {
  const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "3600" });
  try {
    const { streamer: s, id } = await rig.watch({
      userId: 54_001,
      slug: "timey",
      channelId: 64_001,
    });
    await rig.waitStatus(id, "offline");
    // Livestream ids below the simulator's (80_000_000 up): ids only grow, and the database
    // refuses a transition for an older livestream than the last one written.
    for (
      const [created, livestream] of [["9999-12-31T23:59:59.000000Z", 70_000_001], [
        "0100-01-01T00:00:00.000000Z",
        70_000_002,
      ]] as const
    ) {
      const before = Date.now();
      rig.sim.pusher.publish(`channel.${s.channelId}`, "App\\Events\\StreamerIsLive", {
        livestream: {
          id: livestream,
          channel_id: s.channelId,
          session_title: "time travel",
          source: null,
          created_at: created,
        },
      });
      await rig.waitStatus(id, "online", 3000);
      const [row] = await rig.sql<{ timestamp: Date; details: Record<string, unknown> }[]>`
        SELECT "timestamp", details FROM status_events WHERE streamer_id = ${id}
        ORDER BY id DESC LIMIT 1`;
      const t = row.timestamp.getTime();
      assert.ok(t >= before - 1000 && t <= Date.now() + 1000, `receipt time, not ${created}`);
      assert.equal(typeof row.details.event_time_untrusted, "string");
      rig.sim.pusher.publish(`channel.${s.channelId}`, "App\\Events\\StopStreamBroadcast", {
        livestream: { id: livestream, channel: { id: s.channelId, is_banned: false } },
      });
      await rig.waitStatus(id, "offline", 3000);
    }
    // A clock that ran ahead stored an observation time in 2100.
    await rig.sql`UPDATE kickmon.streamer_state SET status_observed_at = '2100-01-01'
                  WHERE streamer_id = ${id}`;
    rig.sim.world.setLive(s.userId, true);
    await rig.waitStatus(id, "online", 3000); // not frozen
    await rig.sql`UPDATE kickmon.streamer_state SET status_observed_at = '2100-01-01'
                  WHERE streamer_id = ${id}`;
    await rig.restart();
    assert.ok(rig.kickmon.lines.some((l) => /observation time in the future/.test(l)));
    const [k] = await rig.sql`SELECT status_observed_at FROM kickmon.streamer_state
                              WHERE streamer_id = ${id}`;
    assert.ok(k.status_observed_at.getTime() < Date.now() + 60_000, "corrected at start");
    await waitFor(() => rig.sim.pusher.subscriberCount(`channel.${s.channelId}`) === 1, {
      timeoutMs: 5000,
    });
    rig.sim.world.setLive(s.userId, false);
    await rig.waitStatus(id, "offline", 3000);
  } finally {
    await rig.close();
  }
});
