/**
 * Issue 11: the spool keeps its promise, and one noisy channel cannot starve
 * the others. Real `kickmon start` processes, a real PostgreSQL stopped and
 * started, the simulator's real Pusher frames.
 *
 * The accounting both tests check: for every streamer, the Pusher rows
 * written plus the transitions they say were collapsed into them
 * (`details.collapsed`) equal the frames delivered to kickmon.
 */
import assert from "node:assert/strict";
import { startThrowawayCluster } from "../dev/pg_cluster.ts";
import { waitFor } from "./helpers/database.ts";
import { type Rig, startRig } from "./helpers/harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pusher rows (not inferred) of a streamer, and the frames they account for. */
async function accounted(rig: Rig, id: number) {
  const rows = (await rig.events(id)).filter((r) => r.source === "pusher" && !r.details.inferred);
  for (let i = 1; i < rows.length; i++) {
    assert.notEqual(rows[i].event_type, rows[i - 1].event_type, `streamer ${id}: alternates`);
  }
  return {
    rows: rows.length,
    frames: rows.reduce((n, r) => n + 1 + Number(r.details.collapsed ?? 0), 0),
    collapsedRows: rows.filter((r) => r.details.collapsed !== undefined).length,
  };
}

Deno.test({
  name:
    "spool bound: an outage longer than SYSTEM_SPOOL_MAX_BYTES holds loses no delivered frame unaccounted",
  sanitizeResources: false, // the cluster's postgres is a separate process tree
  fn: async () => {
    const cluster = await startThrowawayCluster();
    const delivered = new Map<string, number>();
    const rig = await startRig(
      {
        MONITORING_RECONCILE_INTERVAL: "3600",
        DATABASE_CONNECT_TIMEOUT: "2",
        SYSTEM_SPOOL_MAX_BYTES: "65536",
      },
      {
        onFrameSent: (channel, _event, _at, _mono, recipients) => {
          if (recipients > 0) delivered.set(channel, (delivered.get(channel) ?? 0) + 1);
        },
      },
      { databaseUrl: cluster.url },
    );
    try {
      const N = 20;
      const ids = new Map<number, number>(); // channel id -> row id
      for (let i = 0; i < N; i++) {
        const channelId = 62_000 + i;
        rig.sim.world.add({ userId: 52_000 + i, slug: `bound${i}`, channelId });
        ids.set(
          channelId,
          await rig.insert({
            username: `bound${i}`,
            userId: 52_000 + i,
            channelId,
            status: "offline",
          }),
        );
      }
      await waitFor(() => rig.sim.pusher.subscribedChannels().length === N, { timeoutMs: 5000 });
      await sleep(1200); // the list snapshot
      await cluster.pgStop();
      // ~60 frames/s for 20 s: ~1,200 transitions of ~250 bytes, far over 64 KiB.
      const end = performance.now() + 20_000;
      while (performance.now() < end) {
        const s = rig.sim.world.byUserId(52_000 + Math.floor(Math.random() * N))!;
        rig.sim.world.setLive(s.userId, !s.live);
        await sleep(16);
      }
      await sleep(500);
      // SIGTERM during the outage: it says exactly what it kept.
      rig.kickmon.kill("SIGTERM");
      const st = await rig.kickmon.status;
      assert.equal(st.code, 0);
      const line = rig.kickmon.lines.find((l) => /transitions not committed; all/.test(l));
      assert.ok(line, "the shutdown line says what was kept");
      const kept = Number(/"count":(\d+)/.exec(line!)?.[1]);
      const spool = (await Deno.readTextFile(`${rig.stateDir}/spool.jsonl`)).trim().split("\n");
      assert.equal(spool.length, kept, "the spool holds exactly what the log says");
      assert.ok(
        (await Deno.stat(`${rig.stateDir}/spool.jsonl`)).size <= 65_536,
        "the spool stays within its bound",
      );
      assert.ok(rig.kickmon.lines.some((l) => /spool reached SYSTEM_SPOOL_MAX_BYTES/.test(l)));

      await cluster.pgStart();
      await rig.restart();
      const truth = () => rig.sim.world.all().map((s) => s.live ? "online" : "offline");
      await waitFor(async () => {
        const rows = await rig.sql<{ status: string }[]>`
          SELECT status FROM streamers ORDER BY kick_user_id`;
        return JSON.stringify(rows.map((r) => r.status)) === JSON.stringify(truth());
      }, { timeoutMs: 30_000, intervalMs: 200, message: "every status equals the truth" });
      let frames = 0, rows = 0, collapsedRows = 0;
      for (const [channelId, rowId] of ids) {
        const a = await accounted(rig, rowId);
        assert.equal(
          a.frames,
          delivered.get(`channel.${channelId}`) ?? 0,
          `streamer ${rowId}: rows + details.collapsed = delivered frames`,
        );
        frames += a.frames;
        rows += a.rows;
        collapsedRows += a.collapsedRows;
      }
      assert.ok(collapsedRows > 0, "the bound was reached and the collapse recorded");
      console.log(
        `${frames} frames delivered during a 20 s outage with a 64 KiB spool: ${rows} rows ` +
          `written (${collapsedRows} of them carry details.collapsed), ${kept} kept at SIGTERM`,
      );
    } finally {
      await rig.close();
      await cluster.stop();
    }
  },
});

/** Peak resident set of a process, MB (VmHWM). */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : NaN;
}

Deno.test("noisy channel: 20,000 transitions of one streamer do not delay another's", async () => {
  const delivered = new Map<string, number>();
  const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "3600" }, {
    onFrameSent: (channel, _event, _at, _mono, recipients) => {
      if (recipients > 0) delivered.set(channel, (delivered.get(channel) ?? 0) + 1);
    },
  });
  try {
    const noisy = await rig.watch({ userId: 53_001, slug: "noisy", channelId: 63_001 });
    const calm = await rig.watch({ userId: 53_002, slug: "calm", channelId: 63_002 });
    await rig.waitStatus(calm.id, "offline");
    const flood = (async () => {
      for (let k = 0; k < 20_000; k++) {
        rig.sim.world.setLive(noisy.streamer.userId, !noisy.streamer.live);
        if (k % 200 === 199) await sleep(20); // ~10,000 frames/s
      }
    })();
    await sleep(700);
    const t0 = performance.now();
    rig.sim.world.setLive(calm.streamer.userId, true);
    await rig.waitStatus(calm.id, "online", 10_000);
    const calmMs = performance.now() - t0;
    await flood;
    const truth = noisy.streamer.live ? "online" : "offline";
    await rig.waitStatus(noisy.id, truth, 30_000);
    await sleep(500);
    const rss = peakRssMb(rig.kickmon.pid);
    const a = await accounted(rig, noisy.id);
    assert.equal(a.frames, delivered.get("channel.63001"), "rows + details.collapsed = frames");
    assert.ok(calmMs < 5000, `the calm streamer waited ${calmMs.toFixed(0)} ms`);
    assert.ok(rss < 256, `peak RSS ${rss.toFixed(0)} MB stays under the unit's MemoryMax`);
    console.log(
      `20,000 frames on one channel: the other streamer's transition landed in ${
        calmMs.toFixed(0)
      } ms; ${a.rows} rows written for the noisy one; kickmon peak RSS ${rss.toFixed(0)} MB`,
    );
  } finally {
    await rig.close();
  }
});
