/**
 * Issue 14, high availability: three real `kickmon start` processes on one
 * PostgreSQL and one simulated Kick. Each instance has its own OAuth client
 * (`ApiServer.addClient`), so the simulator counts every instance's
 * official-API requests apart (`requestsBy`).
 *
 * One scenario, with 100 frames/s flowing from start to end: exactly one
 * leader, standbys send no API request; SIGKILL of the leader → a standby
 * leads within the takeover bound and corrects a transition nobody heard;
 * PostgreSQL restarted → one leader again, never two; a webhook delivered to
 * two instances is written once; and afterwards every delivered frame is
 * exactly one history row, in order. A second test: two instances on one
 * state directory, the second exits 2 naming it, the first is unharmed.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { startThrowawayCluster } from "../dev/pg_cluster.ts";
import { type KickmonProcess, spawnKickmon } from "../dev/kickmon_process.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import type { Sql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { insertStreamer } from "../src/db/streamers_repo.ts";
import { EXIT } from "../src/cli/errors.ts";
import { createTestDatabase, freePort, waitFor } from "./helpers/database.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `MONITORING_LEADER_TAKEOVER` of the test, s (the smallest allowed). */
const TAKEOVER_S = 5;
/** The official-API endpoints that spend the app's budget. */
const BUDGET_PATHS = [
  "/public/v1/channels",
  "/public/v1/livestreams",
  "/public/v1/users/livestreams",
  "/public/v1/events/subscriptions",
];

interface Instance {
  readonly name: string;
  readonly clientId: string;
  readonly healthPort: number;
  readonly webhookPort: number;
  readonly stateDir: string;
  proc: KickmonProcess;
  dead: boolean;
}

/** The role an instance's /health reports, or null when it does not answer. */
async function roleOf(i: Instance): Promise<string | null> {
  if (i.dead) return null;
  try {
    const r = await fetch(`http://127.0.0.1:${i.healthPort}/health`, {
      signal: AbortSignal.timeout(3000),
    });
    const body = await r.json();
    return body?.leadership?.role ?? null;
  } catch {
    return null;
  }
}

async function metric(i: Instance, line: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${i.healthPort}/metrics`)).text();
  const m = text.split("\n").find((l) => line.test(l));
  return m ? Number(m.split(" ").at(-1)) : 0;
}

Deno.test({
  name: "ha: three instances, one leader spends the API budget; failover, PostgreSQL restart, " +
    "webhooks to two instances; 100 frames/s: 0 lost, 0 duplicate rows",
  sanitizeResources: false, // the cluster's postgres is a separate process tree
  sanitizeOps: false,
  fn: async () => {
    const cluster = await startThrowawayCluster();
    const delivered: Array<{ channel: string; event: string }> = [];
    const sim = await startSimulator({
      onFrameSent: (channel, event, _at, _mono, recipients) => {
        if (recipients > 0) delivered.push({ channel, event });
      },
    });
    const sql = postgres(cluster.url, { max: 3, onnotice: () => {} });
    const instances: Instance[] = [];
    let running = false;
    let stream: Promise<void> = Promise.resolve();
    let sampler: Promise<void> = Promise.resolve();
    let sampling = false;
    try {
      await migrate(sql as unknown as Sql, { appSchema: "public" });
      // 50 streamers in rotation (each flips every 0.5 s on average), and two
      // that change only silently: "ghost" (a missed transition) and "hook" (webhooks).
      const N = 50;
      const rows = new Map<number, number>(); // channel id -> row id
      for (let i = 0; i < N + 2; i++) {
        const s = sim.world.add({ userId: 71_000 + i, slug: `ha${i}`, channelId: 81_000 + i });
        rows.set(
          s.channelId,
          await insertStreamer(sql as unknown as Sql, {
            username: s.slug,
            kickUserId: s.userId,
            kickChannelId: s.channelId,
            status: "offline",
          }),
        );
      }
      const ghost = sim.world.byUserId(71_000 + N)!;
      const hook = sim.world.byUserId(71_000 + N + 1)!;

      for (const name of ["a", "b", "c"]) {
        const clientId = `ha-client-${name}`;
        sim.api.addClient(clientId, `ha-secret-${name}`);
        const inst: Instance = {
          name,
          clientId,
          healthPort: freePort(),
          webhookPort: freePort(),
          stateDir: await Deno.makeTempDir({ prefix: `kickmon-ha-${name}-` }),
          proc: undefined as unknown as KickmonProcess,
          dead: false,
        };
        inst.proc = spawnKickmon(["start"], {
          ...sim.env(),
          KICK_CLIENT_ID: clientId,
          KICK_CLIENT_SECRET: `ha-secret-${name}`,
          DATABASE_URL: cluster.url,
          DATABASE_CONNECT_TIMEOUT: "2",
          SYSTEM_STATE_DIRECTORY: inst.stateDir,
          HEALTH_CHECK_ENABLED: "true",
          HEALTH_CHECK_LISTEN: `127.0.0.1:${inst.healthPort}`,
          KICK_WEBHOOK_ENABLED: "true",
          KICK_WEBHOOK_LISTEN: `127.0.0.1:${inst.webhookPort}`,
          MONITORING_LEADER_TAKEOVER: String(TAKEOVER_S),
          MONITORING_RECONCILE_INTERVAL: "2",
          MONITORING_RECONNECT_DELAY: "100",
          MONITORING_MAX_RECONNECT_DELAY: "1000",
        });
        instances.push(inst);
      }
      await Promise.all(instances.map((i) => i.proc.waitForLine(/kickmon started/, 60_000)));
      await waitFor(
        () => [...rows.keys()].every((ch) => sim.pusher.subscriberCount(`channel.${ch}`) === 3),
        { timeoutMs: 20_000, message: "every instance subscribed every channel" },
      );

      // Leaders seen at once, sampled all through the test.
      let maxLeaders = 0;
      sampling = true;
      sampler = (async () => {
        while (sampling) {
          const roles = await Promise.all(instances.map(roleOf));
          maxLeaders = Math.max(maxLeaders, roles.filter((r) => r === "leader").length);
          await sleep(100);
        }
      })();
      const leaders = async () => {
        const roles = await Promise.all(instances.map(roleOf));
        return instances.filter((_, k) => roles[k] === "leader");
      };
      const oneLeader = async (timeoutMs: number, message: string) => {
        let found: Instance | undefined;
        await waitFor(async () => {
          const l = await leaders();
          found = l.length === 1 ? l[0] : undefined;
          return found !== undefined;
        }, { timeoutMs, intervalMs: 50, message });
        return found!;
      };
      const budget = (i: Instance) =>
        BUDGET_PATHS.reduce((n, p) => n + sim.api.requestsBy(i.clientId, p), 0);
      const budgets = () => instances.map(budget);

      // 100 frames/s, each flipping a random streamer of the rotation (every frame a real
      // transition; now and then one streamer twice within milliseconds, which the slower
      // instance's copies must not turn into extra rows).
      running = true;
      const streamStart = performance.now();
      let flips = 0;
      stream = (async () => {
        while (running) {
          const due = Math.floor((performance.now() - streamStart) / 10);
          for (; flips < due; flips++) {
            const s = sim.world.byUserId(71_000 + Math.floor(Math.random() * N))!;
            sim.world.setLive(s.userId, !s.live);
          }
          await sleep(5);
        }
      })();

      // 1. One leader; only it spends the budget (a pass every 2 s).
      const first = await oneLeader(10_000, "one leader after start");
      const before = budgets();
      await sleep(4500);
      const after = budgets();
      for (const [k, i] of instances.entries()) {
        if (i === first) {
          assert.ok(after[k] > before[k], `leader ${i.name} reconciles: ${before} → ${after}`);
        } else assert.equal(after[k], 0, `standby ${i.name} sent no API request`);
      }
      assert.equal(
        await metric(first, /^kickmon_leader /),
        1,
        "the leader's kickmon_leader gauge",
      );
      const standby = instances.find((i) => i !== first)!;
      assert.equal(await metric(standby, /^kickmon_leader /), 0, "a standby's gauge");

      // 2. SIGKILL of the leader; meanwhile Kick changes a streamer without a frame.
      first.proc.kill("SIGKILL");
      await first.proc.status;
      first.dead = true;
      const killedAt = performance.now();
      sim.world.setLive(ghost.userId, true, { publish: false });
      const second = await oneLeader(
        TAKEOVER_S * 1000 + 5000,
        `a new leader within ${TAKEOVER_S} s`,
      );
      const takeoverMs = Math.round(performance.now() - killedAt);
      console.log(`ha: takeover after SIGKILL of the leader: ${takeoverMs} ms`);
      assert.ok(takeoverMs <= TAKEOVER_S * 1000 + 1000, `takeover in ${takeoverMs} ms`);
      await waitFor(
        async () =>
          (await sql`SELECT status FROM streamers WHERE id = ${rows.get(ghost.channelId)!}`)[0]
            ?.status === "online",
        { timeoutMs: 10_000, intervalMs: 50, message: "the missed transition corrected" },
      );
      const ghostRows = await sql<{ source: string }[]>`
        SELECT details->>'source' AS source FROM status_events
        WHERE streamer_id = ${rows.get(ghost.channelId)!}`;
      assert.deepEqual(ghostRows.map((r) => r.source), ["reconcile"]);
      const b2 = budgets();
      await sleep(3000);
      const a2 = budgets();
      for (const [k, i] of instances.entries()) {
        if (i === second) assert.ok(a2[k] > b2[k], `new leader ${i.name} reconciles`);
        else assert.equal(a2[k], b2[k], `${i.name} (killed or standby) sent nothing`);
      }

      // 3. PostgreSQL restarted: at most one leader at any time, one again afterwards.
      await cluster.pgStop();
      const stoppedAt = performance.now();
      // A leader that lost the database gives up leadership (within its lease).
      await waitFor(async () => (await leaders()).length === 0, {
        timeoutMs: TAKEOVER_S * 1000,
        intervalMs: 50,
        message: "no leader while PostgreSQL is down",
      });
      console.log(
        `ha: leader stood down ${
          Math.round(performance.now() - stoppedAt)
        } ms after PostgreSQL stopped`,
      );
      await sleep(Math.max(0, 3000 - (performance.now() - stoppedAt)));
      await cluster.pgStart();
      const startedAt = performance.now();
      const third = await oneLeader(TAKEOVER_S * 1000 + 15_000, "one leader after the restart");
      console.log(
        `ha: a leader ${Math.round(performance.now() - startedAt)} ms after PostgreSQL came back`,
      );
      console.log(
        `ha: leader after the PostgreSQL restart: ${third.name} (before: ${second.name})`,
      );
      const b3 = budgets();
      await sleep(3000);
      const a3 = budgets();
      for (const [k, i] of instances.entries()) {
        if (i === third) assert.ok(a3[k] > b3[k], `leader ${i.name} reconciles again`);
        else assert.equal(a3[k], b3[k], `${i.name} sends nothing while ${third.name} leads`);
      }

      // 4. One webhook delivered to both live instances at once: written once.
      running = false;
      await stream;
      const rate = flips / ((performance.now() - streamStart) / 1000);
      console.log(`ha: ${flips} frames at ${rate.toFixed(0)}/s`);
      assert.ok(rate >= 90, `frames at ${rate}/s`);
      const live = sim.world.setLive(hook.userId, true, { publish: false });
      const change = { kind: "live" as const, streamer: { ...live } };
      const alive = instances.filter((i) => !i.dead);
      const messageId = "01JHA0000000000000000000AB";
      const answers = await Promise.all(
        alive.map((i) =>
          sim.webhooks.deliver(`http://127.0.0.1:${i.webhookPort}/webhooks/kick`, change, {
            messageId,
          })
        ),
      );
      assert.deepEqual(answers.map((a) => a.status), alive.map(() => 200));
      const hookId = rows.get(hook.channelId)!;
      await waitFor(
        async () =>
          (await sql`SELECT status FROM streamers WHERE id = ${hookId}`)[0]?.status === "online",
        { timeoutMs: 5000, intervalMs: 50, message: "the webhook's transition written" },
      );
      const dups = await Promise.all(
        alive.map((i) => metric(i, /^kickmon_webhook_deliveries_total\{outcome="duplicate"\}/)),
      );
      assert.equal(dups.reduce((a, b) => a + b, 0), 1, `one instance saw a duplicate: ${dups}`);
      const hookRows = await sql<{ source: string; event_type: string }[]>`
        SELECT event_type, details->>'source' AS source FROM status_events
        WHERE streamer_id = ${hookId}`;
      // A reconciliation pass may have seen the silent change first; either way, one row.
      assert.equal(hookRows.length, 1, JSON.stringify(hookRows));
      assert.equal(hookRows[0].event_type, "online");

      // 5. Every delivered frame is exactly one history row, in order.
      const truth = () =>
        sim.world.all().slice(0, N).map((s) => s.live ? "online" : "offline").join(",");
      await waitFor(async () => {
        const r = await sql<{ status: string }[]>`
          SELECT status FROM streamers WHERE kick_user_id::bigint < ${71_000 + N}
          ORDER BY kick_user_id`;
        return r.map((x) => x.status).join(",") === truth();
      }, { timeoutMs: 30_000, intervalMs: 200, message: "every status equals the truth" });
      let total = 0;
      for (const [channelId, rowId] of rows) {
        if (channelId >= 81_000 + N) continue;
        const expected = delivered.filter((d) => d.channel === `channel.${channelId}`)
          .map((d) => d.event.endsWith("StreamerIsLive") ? "online" : "offline");
        const got = await sql<{ event_type: string }[]>`
          SELECT event_type FROM status_events WHERE streamer_id = ${rowId} ORDER BY id`;
        total += got.length;
        assert.deepEqual(
          got.map((g) => g.event_type),
          expected,
          `streamer ${rowId}: each delivered transition once, in order`,
        );
      }
      console.log(
        `ha: ${delivered.length} frames delivered, ${total} history rows, max leaders at once ${maxLeaders}`,
      );
      assert.equal(total, delivered.length);
      sampling = false;
      await sampler;
      assert.equal(maxLeaders, 1, "never two leaders at once");
    } finally {
      running = false;
      sampling = false;
      await stream;
      await sampler;
      for (const i of instances) {
        if (!i.dead) {
          i.proc.kill("SIGKILL");
          await i.proc.status;
        }
        await Deno.remove(i.stateDir, { recursive: true }).catch(() => {});
      }
      await sql.end({ timeout: 1 });
      await sim.close();
      await cluster.stop();
    }
  },
});

Deno.test({
  name:
    "ha: a second instance on the same state directory exits 2 naming it; the first is unharmed",
  sanitizeResources: false,
  fn: async () => {
    const sim = await startSimulator();
    const db = await createTestDatabase();
    const state = await Deno.makeTempDir({ prefix: "kickmon-ha-shared-" });
    const port = freePort();
    const env = {
      ...sim.env(),
      DATABASE_URL: db.url,
      SYSTEM_STATE_DIRECTORY: state,
      HEALTH_CHECK_ENABLED: "true",
      HEALTH_CHECK_LISTEN: `127.0.0.1:${port}`,
      MONITORING_LEADER_TAKEOVER: String(TAKEOVER_S),
    };
    const first = spawnKickmon(["start"], env);
    try {
      await first.waitForLine(/kickmon started/, 60_000);
      const pidBefore = await Deno.readTextFile(`${state}/kickmon.pid`);
      // Another health port: only the state directory is shared.
      const second = spawnKickmon(["start"], {
        ...env,
        HEALTH_CHECK_LISTEN: `127.0.0.1:${freePort()}`,
      });
      const status = await second.status;
      assert.equal(status.code, EXIT.usage, second.lines.join("\n"));
      const said = second.lines.join("\n");
      assert.match(said, new RegExp(`state directory ${state} is already in use`));
      assert.match(said, new RegExp(`pid ${first.pid}`));
      // The first instance: same PID file, still healthy, still holding the lock.
      assert.equal(await Deno.readTextFile(`${state}/kickmon.pid`), pidBefore);
      const h = await fetch(`http://127.0.0.1:${port}/health`);
      const body = await h.json();
      assert.equal(h.status, 200, JSON.stringify(body));
      assert.equal(body.pid, first.pid);
      assert.equal(body.leadership.role, "leader");
      const again = spawnKickmon(["start"], {
        ...env,
        HEALTH_CHECK_LISTEN: `127.0.0.1:${freePort()}`,
      });
      assert.equal((await again.status).code, EXIT.usage);
      assert.equal(await first.stop(), 0);
      // Once the first is gone the directory is free again (the kernel dropped the lock).
      const after = spawnKickmon(["start"], env);
      await after.waitForLine(/kickmon started/, 60_000);
      assert.equal(await after.stop(), 0);
    } finally {
      first.kill("SIGKILL");
      await first.status;
      await db.drop();
      await sim.close();
      await Deno.remove(state, { recursive: true }).catch(() => {});
    }
  },
});
