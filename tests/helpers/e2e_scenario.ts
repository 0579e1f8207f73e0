/**
 * The end-to-end scenario of `tests/e2e_test.ts`: a real `kickmon start`
 * process, the Kick simulator and a real PostgreSQL server, driven with the
 * real captured Kick frames. Shared with `tests/api_move_test.ts`, which
 * runs it with v1 `/livestreams` gone (`helpers/api_modes.ts`).
 *
 * @module
 */
import type { Sql } from "../../src/db/client.ts";
import { insertStreamer } from "../../src/db/streamers_repo.ts";
import assert from "node:assert/strict";
import postgres from "postgres";
import { startSimulator } from "../../dev/simulator/simulator.ts";
import { createTestDatabase, waitFor } from "./database.ts";
import { spawnKickmon } from "../../dev/kickmon_process.ts";
import { type SimApiMode, simApiOptions } from "./api_modes.ts";

const fixture = (name: string) =>
  JSON.parse(Deno.readTextFileSync(new URL(`../fixtures/${name}`, import.meta.url)));

/** The verbatim captured frame (kick-protocol.md §3.1). */
const LIVE_FRAME: string = JSON.stringify(fixture("streamer-is-live-1.json").pusher_frame);
/** Decoded data published for the same livestream (§3.2); framed as Kick frames it. */
const OFFLINE_FRAME = JSON.stringify({
  event: "App\\Events\\StopStreamBroadcast",
  data: JSON.stringify(fixture("stop-stream-broadcast-1.json").pusher_data_decoded),
  channel: "channel.2587387",
});

/**
 * Streamer list → Pusher frames → status rows, in real time (see the module doc).
 *
 * @example
 * ```ts
 * Deno.test("e2e", () => e2eScenario("v1"));
 * ```
 */
export async function e2eScenario(mode: SimApiMode): Promise<void> {
  const sim = await startSimulator({ ...simApiOptions(mode), activityTimeoutSec: 30 });
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  // The captured frame is for channel 2587387; its broadcaster user id is made up.
  const s = sim.world.add({ userId: 9_100_001, slug: "fourhead", channelId: 2587387 });
  const kickmon = spawnKickmon(["start"], {
    ...sim.env(),
    DATABASE_URL: db.url,
    SYSTEM_STATE_DIRECTORY: await Deno.makeTempDir(),
    HEALTH_CHECK_ENABLED: "false",
    MONITORING_RESYNC_INTERVAL: "3600",
  });
  try {
    await kickmon.waitForLine(/kickmon started/, 20_000);
    const row = {
      id: await insertStreamer(sql as unknown as Sql, {
        username: "fourhead",
        kickUserId: s.userId,
        kickChannelId: 2587387,
        status: "offline",
      }),
    };
    await waitFor(() => sim.pusher.subscriberCount("channel.2587387") === 1, {
      timeoutMs: 2000,
      message: "subscribed to channel.2587387 within 2 s of the INSERT",
    });

    // Live: the real captured frame. The API truth agrees (reconciliation must not fight it).
    sim.world.setLive(s.userId, true, { publish: false });
    const t0 = performance.now();
    sim.pusher.publishRaw("channel.2587387", LIVE_FRAME);
    await waitFor(async () => {
      const [r] = await sql`SELECT status FROM streamers WHERE id = ${row.id}`;
      return r.status === "online";
    }, { timeoutMs: 1000, intervalMs: 10, message: "online within 1 s" });
    const liveMs = performance.now() - t0;

    // A repeated live frame writes nothing (FR-013); chat and other events change nothing.
    sim.pusher.publishRaw("channel.2587387", LIVE_FRAME);
    sim.pusher.publishRaw(
      "channel.2587387",
      JSON.stringify(fixture("followers-updated-1.json").pusher_frame),
    );
    sim.pusher.publishRaw(
      "channel.2587387",
      JSON.stringify({
        ...fixture("chat-message-event-1.json").pusher_frame,
        channel: "channel.2587387",
      }),
    );
    sim.pusher.publish("channel.2587387", "App\\Events\\SomethingNew", { livestream: { id: 1 } });

    // Offline: the paired real payload.
    sim.world.setLive(s.userId, false, { publish: false });
    sim.pusher.publishRaw("channel.2587387", OFFLINE_FRAME);
    await waitFor(async () => {
      const [r] = await sql`SELECT status FROM streamers WHERE id = ${row.id}`;
      return r.status === "offline";
    }, { timeoutMs: 1000, intervalMs: 10, message: "offline within 1 s" });

    await new Promise((r) => setTimeout(r, 300)); // let any stray write land
    const events = await sql<
      {
        event_type: string;
        details: Record<string, unknown>;
        timestamp: Date;
      }[]
    >`SELECT event_type, details, "timestamp" FROM status_events
      WHERE streamer_id = ${row.id} ORDER BY id`;
    assert.deepEqual(events.map((e) => e.event_type), ["online", "offline"]);
    assert.equal(events[0].details.source, "pusher");
    assert.equal(events[0].details.event, "App\\Events\\StreamerIsLive");
    assert.equal(events[0].details.livestream_id, 74265904);
    assert.equal(events[0].details.previous_status, "offline");
    // Kick's own time for the live event: created_at of the captured frame.
    assert.equal(events[0].timestamp.toISOString(), "2025-09-14T16:11:18.000Z");
    assert.equal(events[1].details.event, "App\\Events\\StopStreamBroadcast");
    assert.equal(events[1].details.livestream_id, 74265904);

    // A streamer inserted while running is subscribed without restart; a deleted one is dropped.
    const s2 = sim.world.add({ userId: 9_100_002, slug: "xqc-sim", channelId: 668 });
    await insertStreamer(sql as unknown as Sql, {
      username: "xqc-sim",
      kickUserId: s2.userId,
      kickChannelId: 668,
      status: "offline",
    });
    await waitFor(() => sim.pusher.subscriberCount("channel.668") === 1, {
      timeoutMs: 2000,
      message: "new streamer subscribed within 2 s",
    });
    await sql`UPDATE streamers SET is_active = false WHERE username = 'xqc-sim'`;
    await waitFor(() => sim.pusher.subscriberCount("channel.668") === 0, {
      timeoutMs: 2000,
      message: "deactivated streamer unsubscribed within 2 s",
    });
    await sql`UPDATE streamers SET is_active = true WHERE username = 'xqc-sim'`;
    await waitFor(() => sim.pusher.subscriberCount("channel.668") === 1, { timeoutMs: 2000 });
    await sql`DELETE FROM streamers WHERE username = 'xqc-sim'`;
    await waitFor(() => sim.pusher.subscriberCount("channel.668") === 0, {
      timeoutMs: 2000,
      message: "deleted streamer unsubscribed within 2 s",
    });
    // An event for a streamer no longer in the table writes nothing (FR-014).
    sim.pusher.publish("channel.668", "App\\Events\\StreamerIsLive", {
      livestream: {
        id: 1,
        channel_id: 668,
        session_title: "x",
        source: null,
        created_at: "2025-09-14T23:18:20.000000Z",
      },
    });
    await new Promise((r) => setTimeout(r, 200));
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM status_events`;
    assert.equal(n, 2);

    assert.equal(await kickmon.stop(), 0);
    console.log(`live frame -> committed row observed after ${liveMs.toFixed(1)} ms`);
  } finally {
    kickmon.kill("SIGKILL");
    await kickmon.status;
    await sql.end();
    await db.drop();
    await sim.close();
  }
}
