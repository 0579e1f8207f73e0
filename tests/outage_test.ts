/**
 * Issue 4: PostgreSQL is really stopped while events flow, and the monitor is
 * SIGKILLed in the middle of the outage. Nothing delivered may be lost,
 * duplicated or reordered.
 */
import assert from "node:assert/strict";
import { startThrowawayCluster } from "../dev/pg_cluster.ts";
import { waitFor } from "./helpers/database.ts";
import { startRig } from "./helpers/harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "outage: PostgreSQL down 20 s + SIGKILL mid-outage loses nothing, writes once, in order",
  sanitizeResources: false, // the cluster's postgres is a separate process tree
  fn: async () => {
    const cluster = await startThrowawayCluster();
    const delivered: Array<{ channel: string; event: string }> = [];
    const rig = await startRig(
      { MONITORING_RECONCILE_INTERVAL: "3600", DATABASE_CONNECT_TIMEOUT: "2" },
      {
        onFrameSent: (channel, event, _at, _mono, recipients) => {
          if (recipients > 0) delivered.push({ channel, event });
        },
      },
      { databaseUrl: cluster.url },
    );
    try {
      const N = 20;
      const ids = new Map<number, number>(); // channel id -> row id
      for (let i = 0; i < N; i++) {
        const channelId = 61_000 + i;
        rig.sim.world.add({ userId: 51_000 + i, slug: `outage${i}`, channelId });
        ids.set(
          channelId,
          await rig.insert({
            username: `outage${i}`,
            userId: 51_000 + i,
            channelId,
            status: "offline",
          }),
        );
      }
      await waitFor(() => rig.sim.pusher.subscribedChannels().length === N, {
        timeoutMs: 5000,
        message: "all channels subscribed",
      });
      // 50 events/s: each flips one random streamer, so every frame is a real transition.
      let running = true;
      const stream = (async () => {
        while (running) {
          const i = Math.floor(Math.random() * N);
          const s = rig.sim.world.byUserId(51_000 + i)!;
          rig.sim.world.setLive(s.userId, !s.live);
          await sleep(20);
        }
      })();
      const pause = async (ms: number) => {
        running = false;
        await stream;
        await sleep(ms);
      };
      await sleep(2000);
      await sleep(1200); // the list snapshot is saved at most once a second
      await cluster.pgStop();
      const outageStart = performance.now();
      await sleep(7000);
      // The stream pauses 2 s; the monitor is killed and restarted meanwhile. The
      // kill comes half a second into the pause, so the frames delivered just before
      // it were delivered to a running monitor (a frame still in the socket buffer
      // of a SIGKILLed process was never delivered to one).
      const pauseStart = performance.now();
      await pause(500);
      await rig.restart({ kill: true });
      await rig.kickmon.waitForLine(/kickmon started: 20 streamers, 20 Pusher channels/, 10_000);
      await waitFor(() => rig.sim.pusher.subscribedChannels().length === N, {
        timeoutMs: 10_000,
        message: "restarted monitor resubscribed while the database is still down",
      });
      await sleep(Math.max(0, 2000 - (performance.now() - pauseStart)));
      running = true;
      const stream2 = (async () => {
        while (running) {
          const i = Math.floor(Math.random() * N);
          const s = rig.sim.world.byUserId(51_000 + i)!;
          rig.sim.world.setLive(s.userId, !s.live);
          await sleep(20);
        }
      })();
      await sleep(Math.max(0, 20_000 - (performance.now() - outageStart)));
      await cluster.pgStart();
      await sleep(2000);
      running = false;
      await stream2;

      // Everything converges once PostgreSQL is back.
      const truth = () => rig.sim.world.all().map((s) => s.live ? "online" : "offline");
      let last = "";
      await waitFor(async () => {
        const rows = await rig.sql<{ status: string }[]>`
          SELECT status FROM streamers ORDER BY kick_user_id`;
        last = `db ${rows.map((r) => r.status[1]).join("")} truth ${
          truth().map((s) => s[1]).join("")
        }`;
        return JSON.stringify(rows.map((r) => r.status)) === JSON.stringify(truth());
      }, { timeoutMs: 30_000, intervalMs: 200, message: "every status equals the truth" })
        .catch((e) => {
          throw new Error(`${e.message}: ${last}`, { cause: e });
        });

      let totalRows = 0;
      for (const [channelId, rowId] of ids) {
        const expected = delivered.filter((d) => d.channel === `channel.${channelId}`)
          .map((d) => d.event.endsWith("StreamerIsLive") ? "online" : "offline");
        const rows = await rig.events(rowId);
        totalRows += rows.length;
        assert.deepEqual(
          rows.map((r) => r.event_type),
          expected,
          `streamer ${rowId}: every delivered transition, in order, exactly once`,
        );
        assert.ok(rows.every((r) => r.source === "pusher"));
      }
      assert.equal(totalRows, delivered.length);
      console.log(`${delivered.length} transitions delivered, all committed exactly once`);
    } finally {
      await rig.close();
      await cluster.stop();
    }
  },
});
